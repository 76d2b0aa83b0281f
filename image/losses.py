"""Image-synthesis losses: hinge GAN terms, discriminator feature matching, VGG19 perceptual loss."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg19

from data.errors import InputError


def hinge_real(scores: list[list[torch.Tensor]]) -> torch.Tensor:
    """mean(relu(1 - D(real))), averaged over the scales."""
    return sum(F.relu(1 - scale[-1]).mean() for scale in scores) / len(scores)


def hinge_fake(scores: list[list[torch.Tensor]]) -> torch.Tensor:
    """mean(relu(1 + D(fake))), averaged over the scales."""
    return sum(F.relu(1 + scale[-1]).mean() for scale in scores) / len(scores)


def critic_hinge(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    return hinge_real(real) + hinge_fake(fake)


def generator_hinge(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    return -sum(scale[-1].mean() for scale in fake) / len(fake)


def feature_matching(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the critics' intermediate features on fake and (fixed) real pairs, averaged over scales."""
    total = 0.0
    for fake_scale, real_scale in zip(fake, real):
        for fake_feature, real_feature in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + F.l1_loss(fake_feature, real_feature.detach())
    return total / len(fake)


class VGGPerceptualLoss(nn.Module):
    """Σ w_i · L1(φ_i(fake), φ_i(real)) over VGG19's relu1_1 … relu5_1 with weights 1/32 … 1, on images in
    [-1, 1] as the authors feed them. The network is frozen."""

    SLICES = (2, 7, 12, 21, 30)  # ends of the `features` slices up to relu1_1, relu2_1, ..., relu5_1
    WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, features: nn.Sequential):
        super().__init__()
        starts = (0,) + self.SLICES[:-1]
        self.slices = nn.ModuleList(features[start:end] for start, end in zip(starts, self.SLICES))
        self.requires_grad_(False).eval()

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        total, x, y = 0.0, fake, real
        for weight, block in zip(self.WEIGHTS, self.slices):
            x, y = block(x), block(y)
            total = total + weight * F.l1_loss(x, y.detach())
        return total


def load_vgg_loss(weights_path: str) -> VGGPerceptualLoss | None:
    """The perceptual loss from a local VGG19 state dict (torchvision's `vgg19` keys, the whole network
    or just `features.*`), or None when no path is given: nothing is downloaded."""
    if not weights_path:
        return None
    path = Path(weights_path)
    if not path.is_file():
        raise InputError(f"VGG19 weights not found at {path}; give the path of torchvision's vgg19 state dict "
                         f"(e.g. vgg19-dcbb9e9d.pth), or an empty path to turn the perceptual loss off")
    state = torch.load(path, map_location="cpu", weights_only=True)
    features = {key[len("features."):]: value for key, value in state.items() if key.startswith("features.")}
    network = vgg19(weights=None).features[:30]
    try:
        network.load_state_dict({k: v for k, v in features.items() if int(k.split(".")[0]) < 30})
    except RuntimeError as error:
        raise InputError(f"{path} is not a torchvision VGG19 state dict ({str(error).splitlines()[0]})") from None
    return VGGPerceptualLoss(network)
