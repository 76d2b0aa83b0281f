"""What every trainer shares: data parallelism across processes, mixed precision and the guard against
non-finite losses.

Data parallelism follows DistributedDataParallel's semantics with torch.distributed's collectives: every
process draws the same global batch from the step's seeded generators and trains on its own rows of it,
and after each backward pass the gradients are averaged across processes (one flat all-reduce per
network), so every process takes the same optimizer step as one process on the whole batch would.
Batch norm statistics are taken over the global batch (`synchronise_batch_norm`). The gradients are
averaged here rather than by wrapping the networks in `DistributedDataParallel` because the GAN steps
call a network outside its `forward` (the critic frozen inside the generator step, the gradient
penalty's double backward, progressive levels that leave whole blocks unused), which DDP's reducer
cannot follow without per-step wrappers and `find_unused_parameters`.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce

PRECISIONS = ("fp32", "bf16")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run stops before the step that would have stored it."""


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes; a single process is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process logs and writes files."""
        return self.rank == 0

    def shard(self, batch: torch.Tensor | None) -> torch.Tensor | None:
        """This process's rows of a global batch (split in equal, contiguous parts)."""
        if batch is None or self.world_size == 1:
            return batch
        if len(batch) % self.world_size:
            raise ValueError(f"a batch of {len(batch)} does not split over {self.world_size} processes; "
                             f"use a batch size divisible by the process count")
        size = len(batch) // self.world_size
        return batch[self.rank * size:(self.rank + 1) * size]

    def prepare(self, *modules: nn.Module) -> None:
        """Makes the networks' batch norms use global-batch statistics and copies the main process's
        weights to the others, so all start equal (as DDP does when it wraps a network)."""
        if self.world_size == 1:
            return
        for module in modules:
            synchronise_batch_norm(module)
            for tensor in list(module.parameters()) + list(module.buffers()):
                torch_dist.broadcast(tensor.data, src=0)

    def average_gradients(self, *modules: nn.Module) -> None:
        """Replaces each gradient by its mean over the processes (what DDP does during backward). Every
        process runs the same code path, so the same parameters have gradients on all of them."""
        if self.world_size == 1:
            return
        gradients = [p.grad for module in modules for p in module.parameters() if p.grad is not None]
        if not gradients:
            return
        flat = torch.cat([g.flatten() for g in gradients])
        torch_dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for gradient in gradients:
            gradient.copy_(flat[offset:offset + gradient.numel()].view_as(gradient))
            offset += gradient.numel()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Logged values averaged over the processes (each process measured its own rows)."""
        if self.world_size == 1 or not values:
            return values
        stacked = torch.tensor(list(values.values()), dtype=torch.float64)
        torch_dist.all_reduce(stacked)
        return dict(zip(values, (stacked / self.world_size).tolist()))

    def check_finite(self, losses: dict[str, torch.Tensor]) -> None:
        """Raises `TrainingDiverged` on every process when any process has a non-finite loss, so that all
        of them stop together before the optimizer step."""
        values = torch.stack([value.detach().double().cpu() for value in losses.values()])
        flags = (~torch.isfinite(values)).double()
        if self.world_size > 1:
            torch_dist.all_reduce(flags)
        bad = [name for name, flag in zip(losses, flags.tolist()) if flag > 0]
        if bad:
            raise TrainingDiverged(f"non-finite {', '.join(bad)} loss")

    def barrier(self) -> None:
        if self.world_size > 1:
            torch_dist.barrier()


SINGLE = Distributed()


@contextlib.contextmanager
def stop_if_diverged(step: int, last_checkpoint: int):
    """Adds to a `TrainingDiverged` raised inside the block which step diverged and what is kept: the step
    never reaches the optimizer, so the last checkpoint holds the last good weights."""
    try:
        yield
    except TrainingDiverged as error:
        kept = f"the checkpoint of step {last_checkpoint} is kept" if last_checkpoint else "no checkpoint was written"
        raise TrainingDiverged(f"{error} at step {step}; training stopped before that step and {kept} "
                               f"(lower the learning rate or check the data, then re-run)") from None


def start_processes(device: torch.device) -> tuple[Distributed, torch.device]:
    """Joins the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on GPUs, one GPU per
    process (LOCAL_RANK), gloo on CPU. A plain launch is a single process on `device`."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        die_with_launcher()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return SINGLE, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(torch_dist.get_rank(), torch_dist.get_world_size()), device


def die_with_launcher() -> None:
    """torchrun starts its workers in sessions of their own, so killing `dvc repro` (and torchrun with it)
    would leave them training and writing outputs; on Linux the kernel kills them with their launcher."""
    if not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the launcher died before the request took effect
        os._exit(1)


def stop_processes() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose training statistics are those of the global batch: the per-process sums are
    all-reduced with gradients, so the backward pass matches one process on the whole batch. (torch's
    SyncBatchNorm does the same on GPUs only; this one also runs on CPU with gloo.)"""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch_dist.is_initialized() and torch_dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        # Two reductions (mean, then squared deviations) rather than E[x²] - E[x]², which loses precision.
        count = torch.tensor([x.numel() / channels], dtype=x.dtype, device=x.device)
        sums = differentiable_all_reduce(torch.cat([x.sum(dim=(0, 2, 3)), count]))
        total = sums[-1]
        mean = sums[:channels] / total
        deviations = differentiable_all_reduce((x - mean.view(1, channels, 1, 1)).pow(2).sum(dim=(0, 2, 3)))
        variance = deviations / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                unbiased = variance * total / (total - 1).clamp(min=1)
                weight = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked.item()
                self.running_mean.lerp_(mean.detach(), weight)
                self.running_var.lerp_(unbiased.detach(), weight)
        shape = (1, channels, 1, 1)
        out = (x - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def synchronise_batch_norm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm2d taking global-batch statistics. The layers change class in place,
    so optimizers already holding their parameters, and state dict keys, stay valid."""
    for layer in module.modules():
        if type(layer) is nn.BatchNorm2d:
            layer.__class__ = GlobalBatchNorm2d
    return module


def autocast(device: torch.device | str, precision: str):
    """bf16 autocast when `precision` is bf16, on CUDA or on CPU (torch supports both); fp32 otherwise.
    Stages ask for bf16 on GPUs only (`stages.common.start_training`): on CPU it is slower than fp32 for
    these convolutions, but the path is the same and is tested there."""
    device = torch.device(device)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_precision(device: torch.device | str):
    """A region computed in fp32 inside `autocast` (the gradient penalty, the loss reductions)."""
    return torch.autocast(torch.device(device).type, enabled=False)
