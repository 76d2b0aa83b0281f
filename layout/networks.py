"""The progressive layout generator and its critic.

Levels are indexed from 0 (4 × 4·aspect) upwards, each doubling the resolution; level k is
4·2^k pixels high. Both networks hold every level's blocks from the start and run the first k + 1.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def level_height(level: int) -> int:
    return 4 * 2**level


def level_of_height(height: int) -> int:
    level = int(math.log2(height)) - 2
    if height < 4 or level_height(level) != height:
        raise ValueError(f"layout level heights are 4·2^k (4, 8, 16, ...); got {height}")
    return level


def channels_at(level: int, channel_base: int, channel_max: int) -> int:
    """Feature width at a level: the authors use base 4096 and max 512 (512 up to 32 px, then halving)."""
    return max(1, min(channel_max, channel_base >> level))


class EqualizedConv2d(nn.Module):
    """Convolution whose weights are N(0, 1) and rescaled at run time by gain / sqrt(fan_in)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, gain=math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.stride, self.padding = stride, padding

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class EqualizedLinear(nn.Module):
    def __init__(self, in_features, out_features, gain=math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias)


class PixelNorm(nn.Module):
    """Normalises each position's feature vector. The authors divide by the mean square itself (no
    square root), which inverts the scale instead of removing it; `standard` is ProGAN's."""

    def __init__(self, mode: str):
        super().__init__()
        if mode not in ("standard", "authors"):
            raise ValueError(f"pixel_norm must be 'standard' or 'authors', got {mode!r}")
        self.power = 0.5 if mode == "standard" else 1.0

    def forward(self, x):
        return x / (x.pow(2).mean(dim=1, keepdim=True) + 1e-8).pow(self.power)


def lrelu(x):
    return F.leaky_relu(x, 0.2)


def palette_masks(logits: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Each class's logits get a softmax over all positions, scaled by its palette entry × H·W, so that
    mean_x mask_c = palette_c exactly."""
    batch, classes, height, width = logits.shape
    spatial = torch.softmax(logits.reshape(batch, classes, -1), dim=2).reshape_as(logits)
    return spatial * palette[:, :, None, None] * (height * width)


def palette_activation(logits: torch.Tensor, palette: torch.Tensor, eps: float = 1e-6):
    """The palette-assisted activation: class masks whose spatial mean is the palette, by construction,
    and the per-pixel class distribution they give when normalised at each pixel.
    Returns (distribution B×C×H×W, masks B×C×H×W).
    """
    masks = palette_masks(logits, palette)
    distribution = (masks + eps) / (masks + eps).sum(dim=1, keepdim=True)
    return distribution, masks


class LayoutOutput(NamedTuple):
    seg: torch.Tensor  # per-pixel class distribution, B×C×H×W
    masks: torch.Tensor  # class masks, spatial mean = palette
    logits: torch.Tensor
    # The completor's distribution over C classes + "keep the input", before merging with the input.
    raw: torch.Tensor | None = None

    def blend(self, other: "LayoutOutput", alpha: float) -> "LayoutOutput":
        return LayoutOutput(*(None if a is None else (1 - alpha) * a + alpha * b for a, b in zip(self, other)))


class LayoutGenerator(nn.Module):
    """(z, palette) -> layouts at every scale up to the requested level.

    Every block has a 1×1 head giving class logits, turned into a palette-constrained layout; below
    the output level, an "assisted joint" feeds that layout back into the features
    (x <- x/2 + lrelu(conv(layout)), the authors' `bias` joint).
    """

    palette_extra = 0  # palette entries beyond the C classes

    def __init__(self, num_classes: int, *, latent_dim: int, aspect: int, num_levels: int,
                 channel_base: int, channel_max: int, pixel_norm: str = "standard", renormalize_palette: bool = True):
        """`pixel_norm` "authors" and `renormalize_palette` False reproduce the authors' networks exactly
        (their PixelNorm has no square root; they use the palette as given, never divided by its sum)."""
        super().__init__()
        self.num_classes, self.latent_dim, self.aspect, self.num_levels = num_classes, latent_dim, aspect, num_levels
        self.renormalize_palette = renormalize_palette
        self.widths = widths = [channels_at(i, channel_base, channel_max) for i in range(num_levels)]
        palette_size = num_classes + self.palette_extra
        self.norm = PixelNorm(pixel_norm)
        self.input_fc = EqualizedLinear(latent_dim + palette_size, widths[0] * 4 * 4 * aspect, gain=math.sqrt(2) / 4)
        self.blocks = nn.ModuleList(self.make_block(i, widths[max(i - 1, 0)], widths[i]) for i in range(num_levels))
        self.heads = nn.ModuleList(EqualizedConv2d(w, palette_size, 1, gain=1.0) for w in widths)
        self.joints = nn.ModuleList(EqualizedConv2d(num_classes, w, 3, padding=1, gain=1.0) for w in widths[:-1])

    def make_block(self, level: int, in_channels: int, out_channels: int) -> nn.Module:
        # The first block has a single 3×3 conv after the input layer; the others upsample, then two.
        convs = [] if level == 0 else [EqualizedConv2d(in_channels, out_channels, 3, padding=1)]
        return nn.ModuleList(convs + [EqualizedConv2d(out_channels, out_channels, 3, padding=1)])

    def start(self, z_and_palette: torch.Tensor) -> torch.Tensor:
        x = self.input_fc(self.norm(z_and_palette)).view(len(z_and_palette), self.widths[0], 4, 4 * self.aspect)
        return self.norm(lrelu(x))

    def block(self, level: int, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if level > 0:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        for conv in self.blocks[level]:
            x = self.norm(lrelu(conv(x)))
        return x

    def head(self, level: int, x: torch.Tensor, palette: torch.Tensor, condition: torch.Tensor | None) -> LayoutOutput:
        logits = self.heads[level](x)
        return LayoutOutput(*palette_activation(logits, palette), logits)

    def joint(self, level, x, palette, condition) -> tuple[torch.Tensor, LayoutOutput]:
        out = self.head(level, x, palette, condition)
        return 0.5 * x + lrelu(self.joints[level](out.seg)), out

    def forward(self, z: torch.Tensor, palette: torch.Tensor, level: int, alpha: float | None = None,
                condition: torch.Tensor | None = None) -> list[LayoutOutput]:
        """Layouts at levels 0..level (the last one is the output). With `alpha`, the output fades from
        the previous level's head (on upsampled features, alpha = 0) to this level's (alpha = 1).
        `condition` is the completor's masked input layout."""
        if self.renormalize_palette:  # a palette that does not sum to 1 would skew the spread target
            palette = palette / palette.sum(dim=1, keepdim=True)
        fading = alpha is not None and level > 0
        outputs, x = [], self.start(torch.cat([z, palette], dim=1))
        for i in range(level + 1):
            x = self.block(i, x, condition)
            if i == level:
                final = self.head(i, x, palette, condition)
                if fading:
                    final = coarse.blend(final, alpha)
                outputs.append(final)
            else:
                if fading and i == level - 1:
                    coarse = self.head(i, F.interpolate(x, scale_factor=2, mode="nearest"), palette, condition)
                x, out = self.joint(i, x, palette, condition)
                outputs.append(out)
        return outputs


# How layouts are resized to a feature map: `nearest-exact` samples pixel centres (ours); `nearest` is
# torch's legacy rule src = floor(dst · in / out), which the authors' networks were trained with.
RESIZE_MODES = ("nearest-exact", "nearest")


def check_resize(mode: str) -> str:
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize = {mode!r}; use one of: {', '.join(RESIZE_MODES)}")
    return mode


def resize_to(layout: torch.Tensor, like: torch.Tensor, mode: str = "nearest-exact") -> torch.Tensor:
    return F.interpolate(layout, size=like.shape[-2:], mode=mode)


class SPADE(nn.Module):
    """Parameter-free batch normalisation modulated per pixel by convolutions of a layout."""

    def __init__(self, channels: int, layout_channels: int, hidden: int, resize: str = "nearest-exact"):
        super().__init__()
        self.resize = check_resize(resize)
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(layout_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def modulation(self, layout: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(resize_to(layout, like, self.resize))
        return self.gamma(h), self.beta(h)

    def forward(self, x: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.modulation(layout, x)
        return self.norm(x) * (1 + gamma) + beta


class SPADEResBlock(nn.Module):
    """GauGAN's residual block: two spectral-normalised 3×3 convs, each after SPADE and a leaky ReLU,
    with a learned 1×1 shortcut when the width changes.

    `norm` builds the normalisation for a width (SPADE on the layout by default; SEAN passes its
    style-aware ACE); whatever follows `x` in `forward` is handed to every normalisation.
    """

    def __init__(self, in_channels: int, out_channels: int, layout_channels: int, hidden: int,
                 norm: Callable[[int], nn.Module] | None = None, resize: str = "nearest-exact"):
        super().__init__()
        norm = norm or (lambda channels: SPADE(channels, layout_channels, hidden, resize))
        middle = min(in_channels, out_channels)
        sn = nn.utils.parametrizations.spectral_norm
        self.norm_0 = norm(in_channels)
        self.conv_0 = sn(nn.Conv2d(in_channels, middle, 3, padding=1))
        self.norm_1 = norm(middle)
        self.conv_1 = sn(nn.Conv2d(middle, out_channels, 3, padding=1))
        self.shortcut = None
        if in_channels != out_channels:
            self.norm_s = norm(in_channels)
            self.shortcut = sn(nn.Conv2d(in_channels, out_channels, 1, bias=False))

    def forward(self, x: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(self.norm_s(x, *condition))
        dx = self.conv_0(lrelu(self.norm_0(x, *condition)))
        return skip + self.conv_1(lrelu(self.norm_1(dx, *condition)))


def completion_activation(logits: torch.Tensor, palette: torch.Tensor, condition: torch.Tensor, eps: float = 1e-6,
                          resize: str = "nearest-exact"):
    """The completor's activation: the palette-assisted activation over C classes + "keep", then the keep
    mass takes the input layout: merged = dist[:C] + dist[C] · input. Palette entries under 0.002 are
    dropped (on a copy; the authors changed the caller's tensor). Returns (merged, masks, distribution)."""
    palette = torch.where(palette < 0.002, torch.zeros_like(palette), palette)
    masks = palette_masks(logits, palette)
    present = (palette > 0).to(masks.dtype)[:, :, None, None]
    distribution = (masks + eps * present) / (masks + eps * present).sum(dim=1, keepdim=True)
    merged = distribution[:, :-1] + distribution[:, -1:] * resize_to(condition, logits, resize)
    return merged, masks, distribution


class LayoutCompletor(LayoutGenerator):
    """Regenerates the masked part of a layout: the generator's levels, heads and joints, with SPADE
    residual blocks conditioned on the masked input layout, and a palette over C classes + "keep the
    input", whose share of each pixel copies the input there. `resize` is how the input layout is
    resized to each level (`nearest` for the authors' networks)."""

    palette_extra = 1

    def __init__(self, num_classes: int, *, spade_hidden: int, resize: str = "nearest-exact", **kwargs):
        self.spade_hidden, self.resize = spade_hidden, check_resize(resize)
        super().__init__(num_classes, **kwargs)

    def make_block(self, level: int, in_channels: int, out_channels: int) -> nn.Module:
        return SPADEResBlock(in_channels, out_channels, self.num_classes, self.spade_hidden, resize=self.resize)

    def start(self, z_and_palette: torch.Tensor) -> torch.Tensor:
        return self.input_fc(self.norm(z_and_palette)).view(len(z_and_palette), self.widths[0], 4, 4 * self.aspect)

    def block(self, level, x, condition):
        if level > 0:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.blocks[level](x, condition)

    def head(self, level, x, palette, condition) -> LayoutOutput:
        logits = self.heads[level](x)
        merged, masks, distribution = completion_activation(logits, palette, condition, resize=self.resize)
        return LayoutOutput(merged, masks, logits, distribution)


class LayoutDiscriminator(nn.Module):
    """Unconditional progressive critic on C-channel layouts; one score per sample. `score_gain` is the
    equalized-lr gain of the final linear layer (the authors' is sqrt(2), as for every layer but `from_mask`)."""

    def __init__(self, num_classes: int, *, aspect: int, num_levels: int, channel_base: int, channel_max: int,
                 score_gain: float = 1.0):
        super().__init__()
        self.num_levels = num_levels
        widths = [channels_at(i, channel_base, channel_max) for i in range(num_levels)]
        self.from_layout = nn.ModuleList(EqualizedConv2d(num_classes, w, 1, gain=1.0) for w in widths)
        self.convs = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(widths[i], widths[i], 3, padding=1),
                           EqualizedConv2d(widths[i], widths[i - 1], 3, padding=1)])
            for i in range(1, num_levels)
        )
        # The last block absorbs the aspect ratio with a (1, aspect) stride: 4×4a -> 4×4 -> 1×1.
        self.final_conv1 = EqualizedConv2d(widths[0], widths[0], 3, stride=(1, aspect), padding=1)
        self.final_conv2 = EqualizedConv2d(widths[0], widths[0], 4)
        self.score = EqualizedLinear(widths[0], 1, gain=score_gain)

    def block(self, level: int, h: torch.Tensor) -> torch.Tensor:
        if level == 0:
            h = lrelu(self.final_conv2(lrelu(self.final_conv1(h))))
            return self.score(h.flatten(1))
        conv1, conv2 = self.convs[level - 1]
        return F.avg_pool2d(lrelu(conv2(lrelu(conv1(h)))), 2)

    def forward(self, layout: torch.Tensor, level: int, alpha: float | None = None) -> torch.Tensor:
        h = self.block(level, lrelu(self.from_layout[level](layout))) if level > 0 else lrelu(self.from_layout[0](layout))
        if alpha is not None and level > 0:
            coarse = lrelu(self.from_layout[level - 1](F.avg_pool2d(layout, 2)))
            h = (1 - alpha) * coarse + alpha * h
        for i in range(level - 1 if level > 0 else 0, -1, -1):
            h = self.block(i, h)
        return h
