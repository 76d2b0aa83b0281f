"""Layout tensors: one-hot encoding, softening, resizing and discretisation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DISCRETIZATIONS = ("none", "max", "gumbel")


def one_hot(layouts: torch.Tensor, num_classes: int) -> torch.Tensor:
    """B×H×W label ids -> B×C×H×W float one-hot."""
    return F.one_hot(layouts.long(), num_classes).permute(0, 3, 1, 2).float()


def resize_labels(layouts: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Label ids resized by sampling pixel centres (PIL's nearest, as in `prepare`)."""
    resized = F.interpolate(layouts[:, None].float(), size=(height, width), mode="nearest-exact")
    return resized[:, 0].to(layouts.dtype)


def soften(layouts: torch.Tensor, sigma: float, mix: float) -> torch.Tensor:
    """(1 - mix)·layout + mix·(layout blurred by a centred Gaussian of std `sigma` pixels).

    The authors' kernel was off-centre by one pixel and ignored sigma (std 0.71 px whatever the
    setting); this one is centred and uses it. Each pixel still sums to 1.
    """
    if sigma <= 0 or mix <= 0:
        return layouts
    height, width = layouts.shape[-2:]
    radius = min(math.ceil(3 * sigma), height - 1, width - 1)
    if radius < 1:
        return layouts
    offsets = torch.arange(-radius, radius + 1, dtype=layouts.dtype, device=layouts.device)
    kernel = torch.exp(-offsets**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = layouts.shape[1]
    blurred = F.pad(layouts, (radius, radius, radius, radius), mode="reflect")
    blurred = F.conv2d(blurred, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return (1 - mix) * layouts + mix * blurred


def discretize(seg: torch.Tensor, mode: str, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """`none`: the soft distribution; `max`: one-hot of the argmax with the soft gradient
    (straight-through); `gumbel`: the same after Gumbel noise at `temperature`."""
    if mode == "none":
        return seg
    if mode == "gumbel":
        uniform = torch.rand(seg.shape, generator=generator, device=seg.device).clamp_(1e-10, 1 - 1e-10)
        seg = torch.softmax((torch.log(seg + 1e-5) - torch.log(-torch.log(uniform))) / temperature, dim=1)
    elif mode != "max":
        raise ValueError(f"discretization must be one of {DISCRETIZATIONS}, got {mode!r}")
    hard = one_hot(seg.argmax(dim=1), seg.shape[1])
    return hard + seg - seg.detach()
