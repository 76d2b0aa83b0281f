"""Image generators (SPADE/GauGAN for scenes, SEAN for faces) and the multi-scale patch discriminator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from layout.layouts import one_hot
from layout.networks import SPADE, SPADEResBlock, check_resize, lrelu, resize_to


def initialize(module: nn.Module, gain: float = 0.02) -> None:
    """The authors' initialisation: Xavier-normal weights with gain 0.02, zero biases; spectral-norm
    layers are initialised through their original weight."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = (layer.parametrizations.weight.original if parametrize.is_parametrized(layer, "weight")
                      else layer.weight)
            nn.init.xavier_normal_(weight, gain=gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class SPADEGenerator(nn.Module):
    """Layout (B×C×H×W class distribution or one-hot) -> image (B×3×H×W in [-1, 1]).

    The layout is resized to a latent grid of (H, W) / 2^num_upsamplings and mapped to 16·base
    channels, then each of `num_upsamplings` stages doubles the resolution and applies a SPADE residual
    block conditioned on the layout; `middle_blocks` more blocks follow the first stage at its
    resolution. Stage widths fall to `base` at the last stage, halving from 16·base. With base 64, 6
    upsamplings and no middle block this is the authors' Cityscapes generator at 128×256 (`more`); with
    5 upsamplings and one middle block, their `normal` topology (CelebA at 256×256). `resize` is how the
    layout is resized to the latent grid and to each block (`nearest`, the legacy rule, for the authors'
    networks).
    """

    def __init__(self, num_classes: int, *, height: int, width: int, base_channels: int, num_upsamplings: int,
                 spade_hidden: int, middle_blocks: int = 0, resize: str = "nearest-exact"):
        super().__init__()
        self.resize = check_resize(resize)
        scale = 2**num_upsamplings
        if height % scale or width % scale:
            raise ValueError(f"{height}x{width} is not divisible by 2^{num_upsamplings}; "
                             f"use fewer upsamplings or another working resolution")
        self.num_classes, self.spade_hidden = num_classes, spade_hidden
        self.latent_size = (height // scale, width // scale)
        widths = [min(16, 2 ** (num_upsamplings - 1 - i)) * base_channels for i in range(num_upsamplings)]
        widths[1:1] = [widths[0]] * middle_blocks
        self.upsample_before = [True] + [False] * middle_blocks + [True] * (num_upsamplings - 1)
        top = 16 * base_channels
        self.fc = nn.Conv2d(num_classes, top, 3, padding=1)
        self.head = self.make_block(top, top, final=False)
        self.stages = nn.ModuleList(
            self.make_block(in_channels, out_channels, final=i == len(widths) - 1)
            for i, (in_channels, out_channels) in enumerate(zip([top] + widths[:-1], widths))
        )
        self.to_image = nn.Conv2d(widths[-1], 3, 3, padding=1)
        initialize(self)

    def make_block(self, in_channels: int, out_channels: int, *, final: bool) -> nn.Module:
        return SPADEResBlock(in_channels, out_channels, self.num_classes, self.spade_hidden, resize=self.resize)

    def render(self, layout: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor:
        x = self.fc(F.interpolate(layout, size=self.latent_size, mode=self.resize))
        x = self.head(x, *condition)
        for upsample, stage in zip(self.upsample_before, self.stages):
            if upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = stage(x, *condition)
        return torch.tanh(self.to_image(lrelu(x)))

    def forward(self, layout: torch.Tensor) -> torch.Tensor:
        return self.render(layout, layout)


# Which pixels make a class's region in SEAN. `argmax`: the layout's most likely class (ours: regions
# never overlap, even on soft layouts). `authors`: every class non-zero at the pixel, as the authors'
# `seg.bool()`; their encoder pools each class over all of its non-zero pixels, and their style painting
# (a `masked_scatter_` per class in class order) leaves the last non-zero class at each pixel.
REGION_RULES = ("argmax", "authors")


def region_masks(layout: torch.Tensor, like: torch.Tensor, rule: str = "argmax", resize: str = "nearest-exact",
                 *, pooling: bool = False) -> torch.Tensor:
    """B×C masks of each class's region at the resolution of `like`, by `rule` (REGION_RULES); with
    `pooling`, the regions the encoder averages over, else the regions style codes are painted on."""
    classes = layout.shape[1]
    if rule == "argmax":
        return resize_to(one_hot(layout.argmax(dim=1), classes).to(layout.dtype), like, resize)
    nonzero = resize_to(layout, like, resize) != 0
    if pooling:
        return nonzero.to(layout.dtype)
    last = classes - 1 - nonzero.flip(1).int().argmax(dim=1)
    return one_hot(last, classes).to(layout.dtype) * nonzero.any(dim=1, keepdim=True)


def check_regions(rule: str) -> str:
    if rule not in REGION_RULES:
        raise ValueError(f"regions = {rule!r}; use one of: {', '.join(REGION_RULES)}")
    return rule


class RegionStyleEncoder(nn.Module):
    """SEAN's region encoder: a conv net maps the image to a style_dim-channel map at half its
    resolution (widths style_dim/16 ... style_dim/2, tanh output), which is averaged inside each class
    region of the layout. Returns B×C×style_dim codes, zero for absent classes. `channels` sets the
    first width instead (the authors fix it at 32 whatever the style length; 32 = 512 / 16 as released)."""

    def __init__(self, style_dim: int, channels: int = 0, regions: str = "argmax", resize: str = "nearest-exact"):
        super().__init__()
        if style_dim < 16 or style_dim % 16:
            raise ValueError(f"style_dim = {style_dim}; it must be a positive multiple of 16")
        self.regions, self.resize = check_regions(regions), check_resize(resize)
        base = channels or style_dim // 16
        w = [base, 2 * base, 4 * base, 8 * base]
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.features = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(3, w[0], 3), nn.InstanceNorm2d(w[0]), act(),
            nn.Conv2d(w[0], w[1], 3, stride=2, padding=1), nn.InstanceNorm2d(w[1]), act(),
            nn.Conv2d(w[1], w[2], 3, stride=2, padding=1), nn.InstanceNorm2d(w[2]), act(),
            nn.ConvTranspose2d(w[2], w[3], 3, stride=2, padding=1, output_padding=1), nn.InstanceNorm2d(w[3]), act(),
            nn.ReflectionPad2d(1), nn.Conv2d(w[3], style_dim, 3), nn.Tanh(),
        )

    def forward(self, image: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        features = self.features(image)
        masks = region_masks(layout, features, self.regions, self.resize, pooling=True)
        sums = torch.einsum("bshw,bchw->bcs", features, masks)
        return sums / masks.sum(dim=(2, 3)).clamp(min=1)[..., None]


class ACE(nn.Module):
    """SEAN's normalisation: noise is added, the activation is batch-normalised without affine terms,
    then modulated by a blend of SPADE's layout modulation and a style modulation. The style modulation
    paints each class region with its own code, passed through the class's own linear layer and a ReLU,
    and convolves that map; learned scalars (through a sigmoid) set the blend. With `use_style` off
    (the authors' last block) only the layout modulation is used."""

    def __init__(self, channels: int, num_classes: int, hidden: int, style_dim: int, *, use_style: bool,
                 regions: str = "argmax", resize: str = "nearest-exact"):
        super().__init__()
        self.regions, self.resize = check_regions(regions), resize
        self.spade = SPADE(channels, num_classes, hidden, resize)
        self.noise_scale = nn.Parameter(torch.zeros(channels))
        self.use_style = use_style
        if use_style:
            self.class_weight = nn.Parameter(torch.randn(num_classes, style_dim, style_dim) * 0.02 / style_dim**0.5)
            self.class_bias = nn.Parameter(torch.zeros(num_classes, style_dim))
            self.style_gamma = nn.Conv2d(style_dim, channels, 3, padding=1)
            self.style_beta = nn.Conv2d(style_dim, channels, 3, padding=1)
            self.blend_gamma = nn.Parameter(torch.zeros(()))
            self.blend_beta = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, layout: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        normalized = self.spade.norm(x + noise * self.noise_scale[:, None, None])
        gamma, beta = self.spade.modulation(layout, x)
        if self.use_style:
            codes = F.relu(torch.einsum("bcs,cst->bct", styles, self.class_weight) + self.class_bias)
            style_map = torch.einsum("bct,bchw->bthw", codes, region_masks(layout, x, self.regions, self.resize))
            blend_gamma, blend_beta = torch.sigmoid(self.blend_gamma), torch.sigmoid(self.blend_beta)
            gamma = blend_gamma * self.style_gamma(style_map) + (1 - blend_gamma) * gamma
            beta = blend_beta * self.style_beta(style_map) + (1 - blend_beta) * beta
        return normalized * (1 + gamma) + beta


class SEANGenerator(SPADEGenerator):
    """SEAN: the SPADE generator with ACE normalisation, so that each class region takes the style of a
    per-class code. `forward(layout, styles)` renders with B×C×style_dim codes, which `encode` pools from
    a real image over a layout (or which come from a style bank). The last block is layout-only, as the
    authors'. Unlike theirs, this one trains: the encoder is part of the generator. `encoder_channels`
    and `regions` "authors" (with `resize` "nearest") reproduce the authors' networks, see
    RegionStyleEncoder and REGION_RULES."""

    def __init__(self, num_classes: int, *, style_dim: int, encoder_channels: int = 0, regions: str = "argmax",
                 **kwargs):
        self.style_dim, self.regions = style_dim, check_regions(regions)
        super().__init__(num_classes, **kwargs)
        self.encoder = RegionStyleEncoder(style_dim, encoder_channels, regions, self.resize)
        initialize(self.encoder)

    def make_block(self, in_channels: int, out_channels: int, *, final: bool) -> nn.Module:
        norm = lambda channels: ACE(channels, self.num_classes, self.spade_hidden, self.style_dim,  # noqa: E731
                                    use_style=not final, regions=self.regions, resize=self.resize)
        return SPADEResBlock(in_channels, out_channels, self.num_classes, self.spade_hidden, norm=norm)

    def encode(self, image: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        return self.encoder(image, layout)

    def forward(self, layout: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        return self.render(layout, layout, styles)


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
