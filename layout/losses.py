"""Generator regularizers and the WGAN-GP objective.

Regularizers are named terms; `inter` applies them at every scale instead of the output alone,
summed over scales as the authors do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from data.training import SINGLE, Distributed
from layout.networks import LayoutOutput

REGULARIZERS = ("entropy", "spread", "recover")
COMPLETION_REGULARIZERS = ("merged_entropy", "novelty")
LOSS_TERMS = REGULARIZERS + ("inter",)
COMPLETION_LOSS_TERMS = LOSS_TERMS + COMPLETION_REGULARIZERS


def check_loss_terms(terms: list[str], known: tuple[str, ...] = LOSS_TERMS) -> None:
    for term in terms:
        if term not in known:
            raise ValueError(f"unknown loss term {term!r}; known terms: {', '.join(known)}")


def _entropy(distribution: torch.Tensor) -> torch.Tensor:
    return -(distribution * torch.log(distribution + 1e-5)).sum(dim=1).mean()


def entropy(out: LayoutOutput) -> torch.Tensor:
    """Mean per-pixel entropy of the class distribution (the completor's: over classes + keep), which
    pushes layouts towards one class per pixel."""
    return _entropy(out.seg if out.raw is None else out.raw)


def merged_entropy(out: LayoutOutput) -> torch.Tensor:
    """The completor's entropy after merging with its input."""
    return _entropy(out.seg)


def novelty(out: LayoutOutput, source: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean overlap, inside the edited region, between the output and the one-hot source layout: in
    [0, 1], lower when the edit differs from what was there (the authors' 1/MSE was unbounded and
    counted pixels outside the edit).

    A layout with no masked pixel (mask `none`: the completor sees the whole layout and adds content) is
    edited where the completor puts new content, i.e. where the argmax of its (C+1) distribution is not
    "keep" (the authors' `--s_scalnovelty`): new hair painted over old hair changes nothing."""
    size = out.seg.shape[-2:]
    source = F.interpolate(source, size=size, mode="nearest-exact")
    inside = F.interpolate(region[:, None].float(), size=size, mode="nearest-exact")[:, 0]
    unmasked = ~region.flatten(1).any(dim=1)
    if unmasked.any():
        added = (out.raw.argmax(dim=1) != out.raw.shape[1] - 1).to(inside.dtype)
        inside = torch.where(unmasked[:, None, None], added, inside)
    overlap = (out.seg * source).sum(dim=1)
    return (overlap * inside).sum() / inside.sum().clamp(min=1)


def spread(out: LayoutOutput) -> torch.Tensor:
    """Spatial variance of the summed class masks: 0 when the masks tile the image, where the layout's
    proportions equal the palette exactly."""
    return (out.masks.sum(dim=1) - 1).pow(2).mean()


def recover(out: LayoutOutput, palette: torch.Tensor) -> torch.Tensor:
    """KL(palette || proportions of the soft layout)."""
    proportions = (out.seg if out.raw is None else out.raw).mean(dim=(2, 3))
    return F.kl_div(torch.log(proportions + 1e-5), palette, reduction="batchmean")


def regularization(outputs: list[LayoutOutput], palette: torch.Tensor, terms: list[str], weights: dict[str, float],
                   source: torch.Tensor | None = None, region: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the active regularizers, and each one's value per scale for logging. The
    completor's `novelty` needs the `source` layout (one-hot) and the edited `region` (B×H×W)."""
    scales = outputs if "inter" in terms else outputs[-1:]
    total = outputs[-1].seg.new_zeros(())
    logged = {}
    for name in REGULARIZERS + COMPLETION_REGULARIZERS:
        if name not in terms:
            continue
        for out in scales:
            if name == "recover":
                value = recover(out, palette)
            elif name == "novelty":
                value = novelty(out, source, region)
            else:
                value = {"entropy": entropy, "spread": spread, "merged_entropy": merged_entropy}[name](out)
            total = total + weights[name] * value
            logged[f"{name}_{out.seg.shape[-2]}"] = value.item()
    return total, logged


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None,
                     dist: Distributed = SINGLE) -> torch.Tensor:
    """Mean of (‖∇D(x̂)‖ - 1)² at random interpolates of real and fake (WGAN-GP). Under several processes
    the weights are drawn for the global batch and each process keeps its rows."""
    u = dist.shard(torch.rand(len(real) * dist.world_size, 1, 1, 1, generator=generator)).to(real.device)
    mixed = (u * real + (1 - u) * fake).requires_grad_(True)
    (gradients,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (gradients.flatten(1).norm(dim=1) - 1).pow(2).mean()
