"""Palettes (per-class pixel proportions) and projections onto the probability simplex."""
from __future__ import annotations

import numpy as np


def palettes_from_layouts(layouts: np.ndarray, num_classes: int, chunk: int = 1024) -> np.ndarray:
    """N×H×W label ids -> N×C float32 class proportions (each row sums to 1)."""
    count = len(layouts)
    palettes = np.empty((count, num_classes), dtype=np.float32)
    for start in range(0, count, chunk):
        block = np.asarray(layouts[start:start + chunk], dtype=np.int64).reshape(-1, *layouts.shape[1:])
        block = block.reshape(len(block), -1)
        if block.size and block.max() >= num_classes:
            raise ValueError(f"label id {block.max()} >= num_classes {num_classes}")
        offsets = np.arange(len(block))[:, None] * num_classes
        counts = np.bincount((block + offsets).ravel(), minlength=len(block) * num_classes)
        palettes[start:start + len(block)] = counts.reshape(len(block), num_classes) / block.shape[1]
    return palettes


def project_euclidean(x: np.ndarray) -> np.ndarray:
    """Exact Euclidean projection of each row onto the simplex (sort-based, Held et al. 1974)."""
    x = np.asarray(x, dtype=np.float64)
    sorted_desc = -np.sort(-x, axis=1)
    cumulative = np.cumsum(sorted_desc, axis=1) - 1.0
    ranks = np.arange(1, x.shape[1] + 1)
    support = np.count_nonzero(sorted_desc - cumulative / ranks > 0, axis=1)
    threshold = cumulative[np.arange(len(x)), support - 1] / support
    return np.maximum(x - threshold[:, None], 0.0)


def apply_class_constraints(palettes: np.ndarray, min_proportions: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Removes classes and raises classes to a minimum proportion, keeping rows on the simplex.

    Rows must be on the simplex. Removed classes are zeroed and the rows renormalised. Then classes
    below their minimum are pinned to it and the unpinned classes are rescaled to share the remaining
    mass, repeated until no unpinned class falls below its minimum. Unlike the authors' clip-then-
    renormalise, the minimum therefore holds in the result. Needs sum(min_proportions) < 1 and no
    minimum on a removed class; the pinned set only grows, so this ends within C rounds.
    """
    kept = np.where(removed, 0.0, palettes)
    kept = kept / np.maximum(kept.sum(axis=1, keepdims=True), 1e-12)
    pinned = np.zeros(kept.shape, dtype=bool)
    result = kept
    for _ in range(kept.shape[1]):
        newly_pinned = (result < min_proportions) & ~pinned
        if not newly_pinned.any():
            break
        pinned |= newly_pinned
        free = np.where(pinned, 0.0, kept)
        free_mass = 1.0 - np.where(pinned, min_proportions, 0.0).sum(axis=1, keepdims=True)
        result = np.where(pinned, min_proportions, free * free_mass / np.maximum(free.sum(axis=1, keepdims=True), 1e-12))
    return result
