"""Cost of the layout synthesizer per level: forward GFLOP per sample of the generator and the critic,
and seconds per training iteration, for the toy networks of params.yaml and the authors' Cityscapes ones.

    python benchmarks/layout_speed.py [--config toy|authors|both] [--iterations N] [--budget SECONDS] [--device DEVICE]

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` (1 multiply-add = 2 FLOPs) on one
forward pass at batch 1: the generator's stabilise pass with its heads and assisted joints at every
lower scale, the critic on one layout. Iterations are real `train_level` steps (generator step, then
critic step with gradient penalty) of the stabilise phase on random label maps and Dirichlet palettes;
the median of `--iterations` is reported after one warm-up iteration at the same batch. The timed batch
is the largest of 1, 2, 4, ... (up to the schedule's) whose warm-up and iterations are projected to fit
`--budget` seconds per level; the last column scales its time linearly to the schedule's batch.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from layout.networks import level_height, level_of_height
from machine import cpu_description
from layout.train import LayoutModel, NetworkConfig, TrainConfig, train_level

CITYSCAPES_CLASSES = 35


@dataclass(frozen=True)
class Setup:
    name: str
    network: NetworkConfig
    batch_sizes: dict[int, int]  # height -> the schedule's batch
    reference: dict[int, tuple[float, float]] | None = None  # height -> the authors' (G, D) GFLOP per sample


def toy_setup(params: dict) -> Setup:
    layout, data = params["layout"], params["data"]
    heights = sorted(int(h) for h in layout["schedule"])
    network = NetworkConfig(num_classes=CITYSCAPES_CLASSES, latent_dim=layout["latent_dim"],
                            aspect=data["width"] // data["height"], num_levels=level_of_height(heights[-1]) + 1,
                            channel_base=layout["channel_base"], channel_max=layout["channel_max"],
                            pixel_norm=layout["pixel_norm"])
    return Setup("toy (params.yaml)", network, {h: layout["schedule"][str(h)]["batch_size"] for h in heights})


def authors_setup() -> Setup:
    network = NetworkConfig(num_classes=CITYSCAPES_CLASSES, latent_dim=512, aspect=2, num_levels=6,
                            channel_base=4096, channel_max=512, pixel_norm="authors")
    reference = {4: (0.17, 0.09), 8: (1.39, 1.30), 16: (6.28, 6.14), 32: (25.9, 25.5), 64: (55.7, 54.6), 128: (86.3, 83.7)}
    return Setup("authors (Cityscapes)", network, {4: 1024, 8: 512, 16: 256, 32: 64, 64: 16, 128: 8}, reference)


def train_config(params: dict, batch_size: int, steps: int) -> TrainConfig:
    layout = params["layout"]
    return TrainConfig(
        steps=steps, batch_size=batch_size, lr=layout["lr"], beta1=layout["beta1"], beta2=layout["beta2"],
        gp_weight=layout["gp_weight"], ema_decay=layout["ema_decay"], loss_terms=tuple(layout["loss_terms"]),
        loss_weights={"entropy": layout["entropy_weight"], "spread": layout["spread_weight"],
                      "recover": layout["recover_weight"]},
        soft_sigma=layout["soft_sigma"], soft_mix=layout["soft_mix"], flip=layout["flip"], seed=params["seed"],
        log_every=10**9, image_every=10**9, checkpoint_every=1,
    )


def forward_gflop(model: LayoutModel, level: int, device: torch.device, batch: int = 1) -> tuple[float, float]:
    """GFLOP per sample of one generator forward (stabilise pass) and one critic forward at `level`."""
    config = model.config
    z = torch.randn(batch, config.latent_dim, device=device)
    palette = torch.full((batch, config.num_classes), 1 / config.num_classes, device=device)
    height = level_height(level)
    layout = torch.rand(batch, config.num_classes, height, height * config.aspect, device=device)
    counts = []
    with torch.no_grad():
        for run in (lambda: model.generator(z, palette, level), lambda: model.discriminator(layout, level)):
            with FlopCounterMode(display=False) as counter:
                run()
            counts.append(counter.get_total_flops() / batch / 1e9)
    return counts[0], counts[1]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def iteration_seconds(model: LayoutModel, level: int, params: dict, batch: int, count: int,
                      device: torch.device) -> list[float]:
    """Wall-clock seconds of each of `count` stabilise-phase training iterations at `batch`."""
    num_classes, aspect = model.config.num_classes, model.config.aspect
    height = level_height(level)
    reals = np.random.default_rng(level).integers(0, num_classes, (64, height, height * aspect), dtype=np.uint8)
    concentration = np.full(num_classes, 0.5)

    def sample_palettes(n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.dirichlet(concentration, size=n).astype(np.float32)

    stamps = []

    def stamp(step: int, history: list[dict]) -> None:
        synchronize(device)
        stamps.append(time.perf_counter())

    synchronize(device)
    start = time.perf_counter()
    train_level(model, level, reals, sample_palettes, train_config(params, batch, count),
                start_step=0 if level == 0 else count, checkpoint=stamp, device=device)
    return list(np.diff([start, *stamps]))


def timed_batch(model: LayoutModel, level: int, params: dict, schedule_batch: int, iterations: int,
                budget: float, device: torch.device) -> int:
    """Doubles the batch from 1 while a warm-up and `iterations` at the doubled batch (projected linearly
    from the last warm-up) fit what is left of `budget`. Ends after a warm-up at the returned batch."""
    batch = 1
    spent = seconds = iteration_seconds(model, level, params, batch, 1, device)[0]
    while batch < schedule_batch:
        grown = min(2 * batch, schedule_batch)
        if spent + (iterations + 1) * seconds * grown / batch > budget:
            break
        batch = grown
        seconds = iteration_seconds(model, level, params, batch, 1, device)[0]
        spent += seconds
    return batch


@dataclass(frozen=True)
class Row:
    height: int
    g_gflop: float
    d_gflop: float
    batch: int
    schedule_batch: int
    seconds: float  # median per iteration at `batch`


def measure(setup: Setup, params: dict, iterations: int, budget: float, device: torch.device) -> tuple[LayoutModel, list[Row]]:
    torch.manual_seed(params["seed"])
    layout = params["layout"]
    model = LayoutModel.create(setup.network, layout["lr"], (layout["beta1"], layout["beta2"]), device)
    rows = []
    for height, schedule_batch in setup.batch_sizes.items():
        level = level_of_height(height)
        g_gflop, d_gflop = forward_gflop(model, level, device)
        batch = timed_batch(model, level, params, schedule_batch, iterations, budget, device)
        seconds = statistics.median(iteration_seconds(model, level, params, batch, iterations, device))
        rows.append(Row(height, g_gflop, d_gflop, batch, schedule_batch, seconds))
    return model, rows


def number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def table(setup: Setup, model: LayoutModel, rows: list[Row], iterations: int) -> str:
    config = model.config
    sizes = [sum(p.numel() for p in net.parameters()) / 1e6 for net in (model.generator, model.discriminator)]
    lines = [f"### {setup.name}",
             "",
             f"{config.num_classes} classes, aspect {config.aspect}, latent_dim {config.latent_dim}, "
             f"channel_base {config.channel_base}, channel_max {config.channel_max}, pixel_norm {config.pixel_norm}; "
             f"generator {sizes[0]:.2f} M, critic {sizes[1]:.2f} M parameters (all levels).",
             ""]
    reference = setup.reference is not None
    header = ["level", "G GFLOP/sample", "D GFLOP/sample"] + (["authors' G / D"] if reference else [])
    header += ["batch timed / schedule", f"s/iter (median of {iterations})", "samples/s", "s/iter at schedule batch"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        scaled = row.seconds * row.schedule_batch / row.batch
        cells = [f"{row.height}×{row.height * config.aspect}", number(row.g_gflop), number(row.d_gflop)]
        if reference:
            cells.append("{} / {}".format(*setup.reference[row.height]))
        cells += [f"{row.batch} / {row.schedule_batch}", number(row.seconds), number(row.batch / row.seconds),
                  number(scaled) if row.batch == row.schedule_batch else f"~{number(scaled)} (×{row.schedule_batch / row.batch:g})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine(device: torch.device) -> str:
    accelerator = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return (f"{cpu_description()}, torch {torch.__version__} with {torch.get_num_threads()} threads, "
            f"device {device} ({accelerator})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=("toy", "authors", "both"), default="both")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per level, after one warm-up")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds per level the timed batch is chosen to fit (inf: always the schedule's batch)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    device = torch.device(args.device)
    params = yaml.safe_load(open("params.yaml"))
    setups = ([toy_setup(params)] if args.config in ("toy", "both") else []) + \
             ([authors_setup()] if args.config in ("authors", "both") else [])

    start = time.perf_counter()
    sections = []
    for setup in setups:
        model, rows = measure(setup, params, args.iterations, args.budget, device)
        sections.append(table(setup, model, rows, args.iterations))
    print(f"Machine: {machine(device)}\n")
    print("\n\n".join(sections))
    print(f"\nGFLOP: one forward pass per sample (FlopCounterMode, 1 multiply-add = 2 FLOPs); G is the stabilise pass "
          f"with every lower scale's head and joint. s/iter: one stabilise-phase `train_level` iteration (G step, then "
          f"D step with gradient penalty), median after one warm-up, at the timed batch, the largest power of two up to "
          f"the schedule's fitting --budget {args.budget:g} s per level; the last column scales it linearly to the "
          f"schedule's batch (~ marks an extrapolation). Measured in {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
