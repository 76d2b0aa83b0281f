"""What the completor is asked to redo: a masked region of a real layout and the palette to fill it."""
from __future__ import annotations

import numpy as np
import torch


# band: a vertical band; classes: the pixels of some classes; none: no pixel is masked, the completor
# sees the whole real layout and only adds content (the authors' CelebA `--s_switch_cond`, with `add`).
MASKS = ("band", "classes", "none")
PALETTE_MODES = ("real", "add")


def band_masks(count: int, height: int, width: int, min_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Vertical bands (B×H×W bool) of random width in [min_fraction, 1]·width at a random position."""
    widths = np.clip(np.round((min_fraction + (1 - min_fraction) * rng.random(count)) * width), 1, width).astype(int)
    starts = np.round((width - widths) * rng.random(count)).astype(int)
    columns = np.arange(width)
    inside = (columns >= starts[:, None]) & (columns < (starts + widths)[:, None])
    return np.repeat(inside[:, None, :], height, axis=1)


def class_masks(labels: np.ndarray, class_ids: list[int]) -> np.ndarray:
    """The pixels of the given classes."""
    return np.isin(labels, class_ids)


def completion_inputs(source: torch.Tensor, real: torch.Tensor, region: torch.Tensor, mode: str,
                      target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The completor's input layout and palette for `region` (B×H×W bool) of the one-hot real layouts
    `source` (B×C×H×W).

    The input is `real` (the real layouts as class distributions) with the region set to the uniform
    distribution. The palette has C + 1 entries summing to 1: in `real` mode, each class's pixels inside
    the region as a share of the whole image (the authors' band palette), and "keep" for the rest; in
    `add` mode, only what `target` has in excess of the image's own palette (differences under 0.001
    dropped, as the authors), and "keep" for the rest. `region` mode (editing only, not a training mode)
    asks for other content than the region had: its area shared out as `target` (proportions of the
    region, B×C) says.
    """
    num_classes = real.shape[1]
    inside = region[:, None].to(real.dtype)
    condition = real * (1 - inside) + inside / num_classes
    if mode == "real":
        classes = (source * inside).mean(dim=(2, 3))
    elif mode == "region":
        classes = target * inside.mean(dim=(2, 3))
    elif mode == "add":
        classes = (target - source.mean(dim=(2, 3))).clamp(min=0)
        classes = torch.where(classes < 1e-3, torch.zeros_like(classes), classes)
        classes = classes / classes.sum(dim=1, keepdim=True).clamp(min=1.0)
    else:
        raise ValueError(f"palette mode must be one of {PALETTE_MODES}, got {mode!r}")
    keep = (1 - classes.sum(dim=1, keepdim=True)).clamp(min=0)
    palette = torch.cat([classes, keep], dim=1)
    return condition, palette / palette.sum(dim=1, keepdim=True)


def region_proportions(layouts: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Class proportions (B×C) of one-hot `layouts` inside `region` (B×H×W bool), relative to its area."""
    inside = region[:, None].to(layouts.dtype)
    return (layouts * inside).sum(dim=(2, 3)) / inside.sum(dim=(2, 3)).clamp(min=1)
