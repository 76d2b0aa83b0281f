"""How well layouts obey their palettes (the authors' tester definitions)."""
from __future__ import annotations

import numpy as np


def proportion_errors(requested: np.ndarray, obtained: np.ndarray, threshold: float = 0.01) -> dict[str, float]:
    """`mae`: mean |p_c - q_c| over samples and all classes. `tmae`: for each class, the mean error
    over the samples that request more than `threshold` of it (0 for a class no sample requests),
    averaged over classes."""
    requested, obtained = np.asarray(requested, np.float64), np.asarray(obtained, np.float64)
    errors = np.abs(requested - obtained)
    asked = requested > threshold
    per_class = np.where(asked.any(0), (errors * asked).sum(0) / np.maximum(asked.sum(0), 1), 0.0)
    return {"mae": float(errors.mean()), "tmae": float(per_class.mean())}
