"""The SPADE (GauGAN) image generator and the multi-scale patch discriminator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from layout.networks import SPADEResBlock, lrelu, resize_to


def initialize(module: nn.Module, gain: float = 0.02) -> None:
    """The authors' initialisation: Xavier-normal weights with gain 0.02, zero biases; spectral-norm
    layers are initialised through their original weight."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            weight = (layer.parametrizations.weight.original if parametrize.is_parametrized(layer, "weight")
                      else layer.weight)
            nn.init.xavier_normal_(weight, gain=gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class SPADEGenerator(nn.Module):
    """Layout (B×C×H×W class distribution or one-hot) -> image (B×3×H×W in [-1, 1]).

    The layout is resized to a latent grid of (H, W) / 2^num_upsamplings and mapped to 16·base
    channels, then each of `num_upsamplings` stages doubles the resolution and applies a SPADE residual
    block conditioned on the layout. Stage widths fall to `base` at the last stage, halving from 16·base:
    with 6 upsamplings and base 64 this is the authors' Cityscapes generator at 128×256.
    """

    def __init__(self, num_classes: int, *, height: int, width: int, base_channels: int, num_upsamplings: int,
                 spade_hidden: int):
        super().__init__()
        scale = 2**num_upsamplings
        if height % scale or width % scale:
            raise ValueError(f"{height}x{width} is not divisible by 2^{num_upsamplings}; "
                             f"use fewer upsamplings or another working resolution")
        self.num_classes, self.latent_size = num_classes, (height // scale, width // scale)
        widths = [min(16, 2 ** (num_upsamplings - 1 - i)) * base_channels for i in range(num_upsamplings)]
        top = 16 * base_channels
        self.fc = nn.Conv2d(num_classes, top, 3, padding=1)
        self.head = SPADEResBlock(top, top, num_classes, spade_hidden)
        self.stages = nn.ModuleList(
            SPADEResBlock(in_channels, out_channels, num_classes, spade_hidden)
            for in_channels, out_channels in zip([top] + widths[:-1], widths)
        )
        self.to_image = nn.Conv2d(widths[-1], 3, 3, padding=1)
        initialize(self)

    def forward(self, layout: torch.Tensor) -> torch.Tensor:
        x = self.fc(F.interpolate(layout, size=self.latent_size, mode="nearest-exact"))
        x = self.head(x, layout)
        for stage in self.stages:
            x = stage(F.interpolate(x, scale_factor=2, mode="nearest"), layout)
        return torch.tanh(self.to_image(lrelu(x)))


class PatchDiscriminator(nn.Module):
    """pix2pixHD's patch critic: 4×4 convs (stride 2, then 1 for the logits), spectral norm and
    instance norm in the middle layers. Returns every layer's output; the last is the logit map."""

    def __init__(self, in_channels: int, base_channels: int = 64, layers: int = 3, max_channels: int = 512):
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=2), nn.LeakyReLU(0.2))]
        channels = base_channels
        for _ in range(1, layers):
            wider = min(channels * 2, max_channels)
            blocks.append(nn.Sequential(spectral_norm(nn.Conv2d(channels, wider, 4, stride=2, padding=2, bias=False)),
                                        nn.InstanceNorm2d(wider), nn.LeakyReLU(0.2)))
            channels = wider
        blocks.append(nn.Conv2d(channels, 1, 4, stride=1, padding=2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """Patch critics on the input and on successively 2× average-pooled copies of it. Conditional on
    the layout when `num_classes` > 0 (input: layout and image); image-only when 0 (the unconditional
    critic of end-to-end fine-tuning)."""

    def __init__(self, num_classes: int, *, scales: int = 2, base_channels: int = 64, layers: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.critics = nn.ModuleList(PatchDiscriminator(num_classes + 3, base_channels, layers) for _ in range(scales))
        initialize(self)

    def forward(self, image: torch.Tensor, layout: torch.Tensor | None = None) -> list[list[torch.Tensor]]:
        x = image if self.num_classes == 0 else torch.cat([resize_to(layout, image), image], dim=1)
        outputs = []
        for i, critic in enumerate(self.critics):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(critic(x))
        return outputs
