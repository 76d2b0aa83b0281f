"""FID and KID with torch-fidelity's feature extractors, offline.

torch-fidelity downloads its Inception weights when it is given no path; here the weights come from a
path the user gives or from torch's hub cache where torch-fidelity keeps them, and are otherwise
unavailable (`inception_weights` says why), never downloaded. Images are uint8 at the working
resolution: the extractor resizes them itself, nothing is cropped to a square.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric, KEY_METRIC_FID
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric
from torch_fidelity.utils import create_feature_extractor

from data.errors import InputError

INCEPTION = "inception-v3-compat"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


def inception_weights(path: str) -> tuple[str | None, str]:
    """The Inception weights to use (a path) or None, and a sentence saying where they come from or why
    FID and KID are unavailable. A given path that does not exist is an error."""
    if path:
        if not Path(path).is_file():
            raise InputError(f"Inception weights not found at {path}; give torch-fidelity's {INCEPTION_FILE}, "
                             f"or an empty path to use torch's hub cache")
        return path, f"Inception weights from {path}"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return str(cached), f"Inception weights from torch-fidelity's cache ({cached})"
    return None, (f"FID and KID unavailable: no Inception weights (evaluate.inception_weights is empty and "
                  f"{cached} does not exist; nothing is downloaded)")


class ImageFeatures:
    """Features of uint8 N×3×H×W images from a registered torch-fidelity extractor (Inception's 2048-d
    pool features by default)."""

    def __init__(self, weights_path: str | None, *, extractor: str = INCEPTION, feature: str = "2048",
                 device="cpu", batch_size: int = 64):
        self.device, self.feature, self.batch_size = torch.device(device), feature, batch_size
        options = {"feature_extractor_weights_path": weights_path} if weights_path else {}
        self.extractor = create_feature_extractor(extractor, [feature], cuda=self.device.type == "cuda",
                                                  verbose=False, **options)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise ValueError("images must be uint8 N×3×H×W")
        features = [self.extractor(images[start:start + self.batch_size].to(self.device))[0].double().cpu()
                    for start in range(0, len(images), self.batch_size)]
        return torch.cat(features)


def fid(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    real, fake = fid_features_to_statistics(real_features), fid_features_to_statistics(fake_features)
    return float(fid_statistics_to_metric(real, fake, verbose=False)[KEY_METRIC_FID])


def kid(real_features: torch.Tensor, fake_features: torch.Tensor, subset_size: int, subsets: int = 100,
        seed: int = 0) -> float:
    """Mean KID (cubic polynomial kernel, torch-fidelity's default) over `subsets` random subsets of
    `subset_size` samples, or of the smaller set's size if that is less."""
    size = min(subset_size, len(real_features), len(fake_features))
    result = kid_features_to_metric(real_features, fake_features, kid_subsets=subsets, kid_subset_size=size,
                                    rng_seed=seed, verbose=False)
    return float(result[KEY_METRIC_KID_MEAN])


def to_uint8_chw(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """[-1, 1] float N×3×H×W or uint8 N×H×W×3 -> uint8 N×3×H×W."""
    if isinstance(images, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
