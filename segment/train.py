"""One trainer for every data mix: each step takes one batch from each stream (real, synthetic, ...),
sums their losses with equal weights, and takes one SGD step with the poly learning rate."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from data.training import SINGLE, Distributed, autocast, stop_if_diverged
from image.train import to_model_images
from segment.metrics import confusion_matrix, iou_scores
from segment.model import predict, segmenter_loss


class PairStream(Protocol):
    def batch(self, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class SegmentConfig:
    steps: int
    batch_size: int  # per stream
    lr: float
    momentum: float
    weight_decay: float
    poly_power: float
    aux_weight: float
    seed: int
    log_every: int
    eval_every: int
    checkpoint_every: int


def make_optimizer(model: nn.Module, config: SegmentConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def poly_learning_rate(config: SegmentConfig, step: int) -> float:
    """The rate of 0-based `step`: lr · (1 - step/steps)^power, floored at 1e-6 as the authors."""
    return max(config.lr * (1 - step / config.steps) ** config.poly_power, 1e-6)


@torch.no_grad()
def evaluate_segmenter(model: nn.Module, labels: np.ndarray, images: np.ndarray, num_classes: int,
                       eval_ids: tuple[int, ...], *, batch_size: int = 32, device="cpu") -> dict:
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for start in range(0, len(labels), batch_size):
        truth = torch.from_numpy(np.asarray(labels[start:start + batch_size])).long()
        predicted = predict(model, to_model_images(images[start:start + batch_size]).to(device))
        confusion += confusion_matrix(truth, predicted.cpu(), num_classes)
    return iou_scores(confusion, eval_ids)


def train_segmenter(model: nn.Module, optimizer: torch.optim.Optimizer, streams: dict[str, PairStream],
                    config: SegmentConfig, *, evaluate: Callable[[int], None], start_step: int = 0,
                    history: list[dict] | None = None, checkpoint: Callable[[int, list[dict]], None] | None = None,
                    device="cpu", description: str = "segment", dist: Distributed = SINGLE,
                    precision: str = "fp32") -> list[dict]:
    """Trains from `start_step` to `config.steps`; `evaluate(step)` is called every `eval_every` steps and
    at the end. Randomness comes from (seed, step), so a resumed run draws the batches it would have.
    Under several processes every one draws the global batches and trains on its rows; only the main
    one evaluates and checkpoints."""
    history = list(history or [])
    model.train()
    progress = tqdm(range(start_step, config.steps), initial=start_step, total=config.steps, desc=description,
                    unit="step", disable=not dist.main)
    last_checkpoint = start_step
    for step in progress:
        rng = np.random.default_rng([config.seed, step])
        for group in optimizer.param_groups:
            group["lr"] = poly_learning_rate(config, step)
        optimizer.zero_grad(set_to_none=True)
        losses = {}
        for name, stream in streams.items():
            images, labels = stream.batch(config.batch_size, rng)
            with autocast(device, precision):
                loss = segmenter_loss(model, dist.shard(images).to(device), dist.shard(labels).to(device),
                                      config.aux_weight)
            with stop_if_diverged(step + 1, last_checkpoint):
                dist.check_finite({name: loss})
            loss.backward()  # the streams' gradients add up: equal weights, as the authors
            losses[f"{name}_loss"] = loss.item()
        dist.average_gradients(model)
        optimizer.step()
        losses = dist.mean(losses)

        done = step + 1
        if done % config.checkpoint_every == 0 or done == config.steps:
            last_checkpoint = done
        if not dist.main:
            continue
        if done % config.log_every == 0 or done == config.steps:
            history.append({"step": done, "lr": poly_learning_rate(config, step), **losses})
            progress.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        if done % config.eval_every == 0 or done == config.steps:
            evaluate(done)
        if checkpoint is not None and done == last_checkpoint:
            checkpoint(done, history)
    return history
