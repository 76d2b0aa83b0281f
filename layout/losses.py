"""Generator regularizers and the WGAN-GP objective.

Regularizers are named terms; `inter` applies them at every scale instead of the output alone,
summed over scales as the authors do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from layout.networks import LayoutOutput

REGULARIZERS = ("entropy", "spread", "recover")
LOSS_TERMS = REGULARIZERS + ("inter",)


def check_loss_terms(terms: list[str]) -> None:
    for term in terms:
        if term not in LOSS_TERMS:
            raise ValueError(f"unknown loss term {term!r}; known terms: {', '.join(LOSS_TERMS)}")


def entropy(out: LayoutOutput) -> torch.Tensor:
    """Mean per-pixel entropy of the class distribution: pushes layouts towards one class per pixel."""
    return -(out.seg * torch.log(out.seg + 1e-5)).sum(dim=1).mean()


def spread(out: LayoutOutput) -> torch.Tensor:
    """Spatial variance of the summed class masks: 0 when the masks tile the image, where the layout's
    proportions equal the palette exactly."""
    return (out.masks.sum(dim=1) - 1).pow(2).mean()


def recover(out: LayoutOutput, palette: torch.Tensor) -> torch.Tensor:
    """KL(palette || proportions of the soft layout)."""
    proportions = out.seg.mean(dim=(2, 3))
    return F.kl_div(torch.log(proportions + 1e-5), palette, reduction="batchmean")


def regularization(outputs: list[LayoutOutput], palette: torch.Tensor, terms: list[str],
                   weights: dict[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the active regularizers, and each one's value per scale for logging."""
    scales = outputs if "inter" in terms else outputs[-1:]
    total = outputs[-1].seg.new_zeros(())
    logged = {}
    for name in REGULARIZERS:
        if name not in terms:
            continue
        for out in scales:
            value = recover(out, palette) if name == "recover" else globals()[name](out)
            total = total + weights[name] * value
            logged[f"{name}_{out.seg.shape[-2]}"] = value.item()
    return total, logged


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean of (‖∇D(x̂)‖ - 1)² at random interpolates of real and fake (WGAN-GP)."""
    u = torch.rand(len(real), 1, 1, 1, generator=generator).to(real.device)
    mixed = (u * real + (1 - u) * fake).requires_grad_(True)
    (gradients,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (gradients.flatten(1).norm(dim=1) - 1).pow(2).mean()
