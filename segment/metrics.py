"""Confusion-matrix IoU over a label space's evaluation classes (the Cityscapes protocol)."""
from __future__ import annotations

import numpy as np
import torch


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """C×C counts: [g, p] = pixels whose true class is g and predicted class is p."""
    index = truth.reshape(-1).long() * num_classes + predicted.reshape(-1).long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes).cpu()


def iou_scores(confusion: np.ndarray | torch.Tensor, eval_ids: list[int] | tuple[int, ...]) -> dict:
    """Per-class IoU of the evaluation classes and their mean.

    Predictions on pixels whose true class is not evaluated (void) are ignored; predicting a void class
    on an evaluated pixel is a miss. A class absent from both the truth and the predictions has no IoU:
    it is left out of the mean and listed in `absent`.
    """
    eval_ids = list(eval_ids)
    m = np.asarray(confusion, dtype=np.float64)[np.ix_(eval_ids, eval_ids)]
    full = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(m)
    in_truth = full[eval_ids].sum(axis=1)  # every prediction on the class's pixels, void ones included
    in_prediction = m.sum(axis=0)  # predictions of the class on evaluated pixels only
    union = in_truth + in_prediction - true_positive
    present = union > 0
    iou = np.where(present, true_positive / np.maximum(union, 1), np.nan)
    return {"miou": float(np.nanmean(iou)) if present.any() else float("nan"),
            "iou": {int(c): float(v) for c, v in zip(eval_ids, iou) if not np.isnan(v)},
            "absent": [int(c) for c, here in zip(eval_ids, present) if not here]}
