"""Speed of every training stage's iteration: seconds per iteration, images per second, and the training
step's GFLOP and achieved GFLOP/s as a fraction of this machine's measured dense matmul GFLOP/s, for the
toy default (params.yaml) and the 128×256 Cityscapes configuration (params.yaml with
presets/cityscapes-128x256.yaml merged in, as `python -m stages.preset` would write it).

    python benchmarks/training_speed.py [--config toy|cityscapes|both] [--rows layout,partial,image,finetune,segment]
        [--budget SECONDS] [--iterations N] [--device cpu|cuda] [--precision fp32|bf16] [--matmul-size N]

Rows (each the stage's own training function on random label maps and images of the configuration's
size, 35 classes; nothing is read from disk besides the params):
  layout            `train_level`, stabilise phase of the final level: generator step, critic step with gradient penalty
  partial           the same for the completor (`CompletionTask`, band masks)
  image             `train_step`: generator step (hinge, feature matching; perceptual loss when image.vgg_weights is set),
                    critic step
  finetune          the `finetune` stage's iteration: `sample_batch` + `finetune_step` (layout and image generators,
                    then the image critic, the image-only critic and the layout critic with gradient penalty)
  finetune_partial  the same with the completor (not in the default rows)
  segment           `train_segmenter` on one real-pair stream (`segment@real`): DeepLabV3 forward, backward, SGD

Timing: one iteration at batch 1 (2 for the segmenter, whose batch norm needs it) inside FlopCounterMode,
then one plain iteration at that batch (both warm up); the timed batch is the largest of 1, 2, 4, ... and
the stage's own batch whose warm-up and `--iterations` iterations are projected (linearly in the batch,
from the last measured iteration) to fit what is left of `--budget` seconds for the row; each growth is
re-measured with a warm-up iteration. Reported: the median of `--iterations` iterations after the warm-up.

GFLOP/iter counts the whole iteration (forwards and backwards of every network, the gradient penalty's
double backward included) with torch.utils.flop_counter.FlopCounterMode: convolutions and matrix
products, one multiply-add = 2 FLOPs; element-wise work is not counted. Where torch's formula counts a
grouped convolution's weight gradient as if ungrouped (torch 2.15 does), a corrected formula replaces it:
MobileNet's depthwise convolutions would otherwise triple the segmenter's count. The count is taken at
the timed batch when the budget leaves room for one more iteration, else at batch 1 (2) and scaled
linearly (marked ~). The reference is torch.mm of two N×N float32 (bf16 with --precision bf16)
matrices, median of 7 runs with all of torch's threads, measured before and after the rows (the larger
is used).

`--precision bf16` (CUDA) goes to the trainers' own `precision` argument.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode, conv_backward_flop

from layout_speed import CITYSCAPES_CLASSES, machine, number, synchronize

from data.labels import label_space
from image.finetune import FinetuneModel, FinetuneSettings, finetune_step
from image.losses import load_vgg_loss
from image.train import ImageModel, train_step
from layout.layouts import one_hot
from layout.networks import level_of_height
from layout.train import LayoutModel, sample_batch, step_generators, train_level
from segment.data import RealPairs
from segment.model import build_segmenter
from segment.train import SegmentConfig, make_optimizer, train_segmenter
from stages.finetune import check_params as check_finetune_params
from stages.image import check_params as check_image_params, image_config
from stages.layout import check_params as check_layout_params, make_task, network_config, section, train_config
from stages.params import Params, load_params
from stages.preset import merge

PRESET = Path("presets/cityscapes-128x256.yaml")
ROWS = ("layout", "partial", "image", "finetune", "finetune_partial", "segment")
DEFAULT_ROWS = ("layout", "partial", "image", "finetune", "segment")
POOL = 32  # random pairs each row draws its batches from
NEVER = 10**9


def configurations(which: str) -> dict[str, Params]:
    """The toy params, and params.yaml with the Cityscapes preset merged in as the preset tool would
    (typed and checked by the stages' own loaders and checks)."""
    result = {}
    if which in ("toy", "both"):
        result["toy (params.yaml)"] = load_params("params.yaml")
    if which in ("cityscapes", "both"):
        raw = yaml.safe_load(open("params.yaml"))
        merge(raw, yaml.safe_load(PRESET.read_text()))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "params.yaml"
            path.write_text(yaml.safe_dump(raw))
            result[f"Cityscapes 128×256 ({PRESET})"] = load_params(path)
    return result


def random_labels(count: int, height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CITYSCAPES_CLASSES, (count, height, width), dtype=np.uint8)


def random_images(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 N×H×W×3, the prepared splits' format."""
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def dirichlet_palettes(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.dirichlet(np.full(CITYSCAPES_CLASSES, 0.5), size=n).astype(np.float32)


class Bench:
    """One row: `run(batch, count)` runs `count` training iterations at `batch` with the stage's own
    training function and returns each one's wall-clock seconds."""

    name: str
    what: str
    stage_batch: int
    networks: str
    min_batch = 1

    def __init__(self, device: torch.device, precision: str):
        self.device, self.precision = device, precision

    def iterations(self, batch: int, count: int) -> None:
        raise NotImplementedError

    def train(self, function: Callable, *args, **kwargs):
        """Calls a trainer with this row's precision (bf16 autocast inside it, the gradient penalty in fp32)."""
        return function(*args, precision=self.precision, **kwargs)

    def run(self, batch: int, count: int) -> list[float]:
        self.stamps = []
        synchronize(self.device)
        start = time.perf_counter()
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):  # the trainers' progress bars
            self.iterations(batch, count)
        return list(np.diff([start, *self.stamps]))

    def stamp(self, *_) -> None:
        synchronize(self.device)
        self.stamps.append(time.perf_counter())


def parameters(*networks: torch.nn.Module) -> float:
    return sum(p.numel() for net in networks for p in net.parameters()) / 1e6


class LayoutBench(Bench):
    """`train_level` at the final level, stabilise phase (steps `count` .. 2·count of a fade + stabilise run)."""

    def __init__(self, params: Params, kind: str, device, precision):
        super().__init__(device, precision)
        layout = section(params, kind)
        aspect = check_layout_params(params, kind)
        height = layout.final_level
        self.level = level_of_height(height)
        torch.manual_seed(params.seed)
        self.model = LayoutModel.create(network_config(params, kind, CITYSCAPES_CLASSES, aspect), layout.lr,
                                        (layout.beta1, layout.beta2), device)
        self.config = train_config(params, kind, height)
        self.task = make_task(params, kind, label_space("cityscapes"))
        self.reals = random_labels(POOL, height, height * aspect, params.seed)
        self.name, self.stage_batch = f"{kind}@{height}", self.config.batch_size
        self.what = ("G step + critic step with GP" if kind == "layout" else
                     "completor step + critic step with GP") + ", stabilise"
        self.networks = (f"{height}×{height * aspect}, channel_base {layout.channel_base}, channel_max "
                         f"{layout.channel_max}, latent {layout.latent_dim}"
                         + (f", SPADE hidden {layout.spade_hidden}" if kind == "partial" else "")
                         + f"; G {parameters(self.model.generator):.1f} M, D {parameters(self.model.discriminator):.1f} M")

    def iterations(self, batch: int, count: int) -> None:
        config = dataclasses.replace(self.config, steps=count, batch_size=batch, log_every=NEVER, image_every=NEVER,
                                     checkpoint_every=1)
        self.train(train_level, self.model, self.level, self.reals, dirichlet_palettes, config, task=self.task,
                   start_step=0 if self.level == 0 else count, checkpoint=self.stamp, device=self.device)


class ImageBench(Bench):
    """The `image` stage's iteration: a batch of pairs, one-hot layouts, `train_step`."""

    def __init__(self, params: Params, device, precision):
        super().__init__(device, precision)
        check_image_params(params)
        image, data = params.image, params.data
        config = image_config(params, CITYSCAPES_CLASSES)
        torch.manual_seed(params.seed)
        self.model = ImageModel.create(config, g_lr=image.g_lr, d_lr=image.d_lr, betas=(image.beta1, image.beta2),
                                       device=device)
        self.perceptual = load_vgg_loss(image.vgg_weights)
        if self.perceptual is not None:
            self.perceptual = self.perceptual.to(device)
        self.losses = dict(feature_matching_weight=image.feature_matching_weight, perceptual=self.perceptual,
                           perceptual_weight=image.perceptual_weight)
        self.labels = torch.from_numpy(random_labels(POOL, data.height, data.width, params.seed)).long()
        self.images = torch.from_numpy(random_images(POOL, data.height, data.width, params.seed)).permute(0, 3, 1, 2) \
            .float() / 127.5 - 1
        self.seed, self.name, self.stage_batch = params.seed, "image", image.batch_size
        self.what = "G step (hinge, feature matching" + (", perceptual" if self.perceptual else "") + ") + critic step"
        self.networks = (f"{image.model.upper()} {data.height}×{data.width}, base {image.base_channels}, "
                         f"{image.num_upsamplings} upsamplings, SPADE hidden {image.spade_hidden}, critic "
                         f"{image.critic_channels}×{image.critic_scales} scales; G {parameters(self.model.generator):.1f} M, "
                         f"D {parameters(self.model.discriminator):.1f} M")

    def iterations(self, batch: int, count: int) -> None:
        for step in range(count):
            rows = torch.from_numpy(np.random.default_rng([self.seed, step]).integers(0, POOL, batch))
            self.train(train_step, self.model, one_hot(self.labels[rows], CITYSCAPES_CLASSES).to(self.device),
                       self.images[rows].to(self.device), **self.losses)
            self.stamp()


class FinetuneBench(Bench):
    """The `finetune` (or `finetune_partial`) stage's iteration: `sample_batch`, then `finetune_step`."""

    def __init__(self, params: Params, kind: str, device, precision):
        super().__init__(device, precision)
        check_finetune_params(params, kind)
        finetune, layout, image, data = params.finetune, section(params, kind), params.image, params.data
        aspect, height = data.width // data.height, layout.final_level
        self.level = level_of_height(height)
        self.layout_config = dataclasses.replace(train_config(params, kind, height), batch_size=finetune.batch_size,
                                                 lr=finetune.layout_lr, seed=params.seed)
        self.settings = FinetuneSettings(d2_weight=finetune.d2_weight, freeze_layout=finetune.freeze_layout,
                                         discretization=finetune.discretization,
                                         feature_matching_weight=image.feature_matching_weight,
                                         perceptual_weight=image.perceptual_weight)
        self.perceptual = load_vgg_loss(image.vgg_weights)
        if self.perceptual is not None:
            self.perceptual = self.perceptual.to(device)
        torch.manual_seed(params.seed)
        layout_model = LayoutModel.create(network_config(params, kind, CITYSCAPES_CLASSES, aspect), finetune.layout_lr,
                                          (layout.beta1, layout.beta2), device)
        image_model = ImageModel.create(image_config(params, CITYSCAPES_CLASSES), g_lr=image.g_lr, d_lr=image.d_lr,
                                        betas=(image.beta1, image.beta2), device=device)
        self.model = FinetuneModel.create(layout_model, image_model, d_lr=image.d_lr, betas=(image.beta1, image.beta2),
                                          device=device)
        self.task = make_task(params, kind, label_space("cityscapes"))
        self.reals = torch.from_numpy(random_labels(POOL, height, height * aspect, params.seed))
        self.images = torch.from_numpy(random_images(POOL, data.height, data.width, params.seed)).permute(0, 3, 1, 2) \
            .float() / 127.5 - 1
        self.seed, self.stage_batch = params.seed, finetune.batch_size
        self.name = "finetune" if kind == "layout" else "finetune_partial"
        self.what = (("layout" if kind == "layout" else "completor") + " G + image G step, then image critic, "
                     "image-only critic, layout critic with GP")
        self.networks = (f"layout G {parameters(layout_model.generator):.1f} M + D {parameters(layout_model.discriminator):.1f} M, "
                         f"image G {parameters(image_model.generator):.1f} M + D {parameters(image_model.discriminator):.1f} M "
                         f"+ D2 {parameters(self.model.image_critic):.1f} M")

    def iterations(self, batch: int, count: int) -> None:
        config = dataclasses.replace(self.layout_config, batch_size=batch)
        latent = self.model.layout.config.latent_dim
        for step in range(count):
            rng, torch_rng = step_generators(self.seed, 1000 + self.level, step)
            _, layouts, z, images = sample_batch(self.reals, dirichlet_palettes, self.task, config, CITYSCAPES_CLASSES,
                                                 latent, rng, torch_rng, self.device, images=self.images)
            self.train(finetune_step, self.model, self.level, layouts, z, images, config, self.settings, torch_rng,
                       self.perceptual)
            self.stamp()


class SegmentBench(Bench):
    """`train_segmenter` on one stream of random real pairs (`segment@real`; the synthetic mixes add the
    chain's generation and a second batch)."""

    def __init__(self, params: Params, device, precision):
        super().__init__(device, precision)
        segment, data = params.segment, params.data
        self.config = SegmentConfig(steps=1, batch_size=segment.batch_size, lr=segment.lr, momentum=segment.momentum,
                                    weight_decay=segment.weight_decay, poly_power=segment.poly_power,
                                    aux_weight=segment.aux_weight, seed=params.seed, log_every=NEVER, eval_every=NEVER,
                                    checkpoint_every=1)
        torch.manual_seed(params.seed)
        self.model = build_segmenter(segment.backbone, CITYSCAPES_CLASSES, segment.backbone_weights).to(device)
        self.optimizer = make_optimizer(self.model, self.config)
        self.stream = RealPairs(random_labels(POOL, data.height, data.width, params.seed),
                                random_images(POOL, data.height, data.width, params.seed), flip=True)
        self.name, self.stage_batch = "segment@real", segment.batch_size
        self.min_batch = min(2, segment.batch_size)  # the ASPP pooling branch's batch norm needs 2 in training
        self.what = "DeepLabV3 forward + backward (main and aux heads), SGD step"
        self.networks = f"DeepLabV3-{segment.backbone} {data.height}×{data.width}, {parameters(self.model):.1f} M"

    def iterations(self, batch: int, count: int) -> None:
        config = dataclasses.replace(self.config, steps=count, batch_size=batch)
        self.train(train_segmenter, self.model, self.optimizer, {"real": self.stream}, config,
                   evaluate=lambda step: None, checkpoint=self.stamp, device=self.device)


def make_bench(row: str, params: Params, device: torch.device, precision: str) -> Bench:
    if row in ("layout", "partial"):
        return LayoutBench(params, row, device, precision)
    if row == "image":
        return ImageBench(params, device, precision)
    if row in ("finetune", "finetune_partial"):
        return FinetuneBench(params, "layout" if row == "finetune" else "partial", device, precision)
    return SegmentBench(params, device, precision)


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker: everything is counted under "Global" only."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        pass


def _grad_weight_flop(groups: int, out_shape=None, **shapes) -> int:
    """torch's count of a convolution's weight gradient (`shapes`: convolution_backward's arguments)."""
    return conv_backward_flop(**shapes, _groups=groups, output_mask=[False, True, False], out_val=out_shape)


def _torch_counts_groups() -> bool:
    """Whether torch's formula already divides a grouped convolution's weight gradient by its groups: a
    1×1 convolution of 2 channels in 2 groups, one pixel, is 2 multiply-adds (4 FLOPs); torch 2.15 says 8."""
    shapes = dict(grad_out_shape=[1, 2, 1, 1], x_shape=[1, 2, 1, 1], w_shape=[2, 1, 1, 1], _bias=None, _stride=[1, 1],
                  _padding=[0, 0], _dilation=[1, 1], transposed=False, _output_padding=[0, 0])
    return _grad_weight_flop(2, out_shape=[None, [2, 1, 1, 1], None], **shapes) == 4


def _grouped_conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                                _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """torch's convolution_backward formula with the weight gradient of a grouped convolution divided by
    its groups (torch counts it as if every output channel saw every input channel; the depthwise
    convolutions of MobileNet made the segmenter's count ~3× too high)."""
    shapes = dict(grad_out_shape=grad_out_shape, x_shape=x_shape, w_shape=w_shape, _bias=_bias, _stride=_stride,
                  _padding=_padding, _dilation=_dilation, transposed=transposed, _output_padding=_output_padding)
    grad_input = conv_backward_flop(**shapes, _groups=_groups, output_mask=[output_mask[0], False, False],
                                    out_val=out_shape)
    grad_weight = _grad_weight_flop(_groups, out_shape=out_shape, **shapes) if output_mask[1] else 0
    return grad_input + grad_weight // _groups


class StepFlopCounter(FlopCounterMode):
    """FlopCounterMode counting the total only. Its module tracker's backward hooks make
    `torch.autograd.grad` on a leaf fail ("A leaf node was passed to _will_engine_execute_node",
    pytorch/pytorch#131753), which the gradient penalty does; the per-module table is not needed here.
    Where torch's convolution_backward formula ignores groups, a corrected one replaces it."""

    def __init__(self):
        fixed = {} if _torch_counts_groups() else {torch.ops.aten.convolution_backward: _grouped_conv_backward_flop}
        super().__init__(display=False, custom_mapping=fixed)
        self.mod_tracker = _GlobalOnly()


def counted(bench: Bench, batch: int) -> tuple[float, float]:
    """GFLOP and wall-clock seconds of one iteration at `batch`, run inside FlopCounterMode."""
    with StepFlopCounter() as counter:
        (seconds,) = bench.run(batch, 1)
    return counter.get_total_flops() / 1e9, seconds


def candidates(first: int, stage_batch: int) -> list[int]:
    """first, 2·first, 4·first, ... below the stage's batch, then the stage's batch."""
    sizes = [first]
    while 2 * sizes[-1] < stage_batch:
        sizes.append(2 * sizes[-1])
    return sizes + ([stage_batch] if stage_batch > first else [])


@dataclass(frozen=True)
class Row:
    config: str
    name: str  # the stage
    what: str  # its iteration
    stage_batch: int
    batch: int
    seconds: float  # median per iteration at `batch`
    gflop: float  # per iteration at `batch`
    gflop_scaled: bool  # counted at the smallest batch and scaled linearly
    spent: float


def measure(config: str, bench: Bench, iterations: int, budget: float) -> Row:
    start = time.perf_counter()
    first = batch = bench.min_batch
    gflop_first, counted_seconds = counted(bench, first)  # the first iteration: also a warm-up
    (seconds,) = bench.run(first, 1)  # a plain one at the same batch
    overhead = max(1.0, counted_seconds / seconds)  # FlopCounterMode's (and the first iteration's) extra time

    def fits(size: int) -> bool:  # a warm-up and the timed iterations at `size`, from the last measurement
        return time.perf_counter() - start + (iterations + 1) * seconds * size / batch <= budget

    while True:
        grown = max((size for size in candidates(first, bench.stage_batch) if size > batch and fits(size)),
                    default=None)
        if grown is None:
            break
        batch = grown
        (seconds,) = bench.run(batch, 1)  # warm-up at the new batch
    seconds = statistics.median(bench.run(batch, iterations))
    gflop, scaled = gflop_first, False
    if batch > first:
        if time.perf_counter() - start + overhead * seconds <= budget:
            gflop, _ = counted(bench, batch)
            print(f"  {bench.name}: {gflop:.4g} GFLOP at batch {batch}, {gflop_first * batch / first:.4g} scaled "
                  f"from batch {first}", file=sys.stderr)
        else:
            gflop, scaled = gflop_first * batch / first, True
    return Row(config, bench.name, bench.what, bench.stage_batch, batch, seconds, gflop, scaled,
               time.perf_counter() - start)


def matmul_gflops(device: torch.device, size: int, dtype: torch.dtype, repeats: int = 7) -> float:
    """Dense matmul GFLOP/s: torch.mm of two size×size matrices, median of `repeats` after a warm-up."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device, dtype) for _ in range(2))
    out = torch.mm(a, b)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def table(rows: list[Row], peak: float, iterations: int) -> str:
    header = ["configuration", "stage: one iteration", "batch timed / stage's", f"s/iter (median of {iterations})",
              "images/s", "GFLOP/iter", "GFLOP/s", "of matmul peak", "s/iter at stage's batch"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        achieved = row.gflop / row.seconds
        scale = row.stage_batch / row.batch
        at_stage = number(row.seconds) if row.batch == row.stage_batch else f"~{number(row.seconds * scale)} (×{scale:g})"
        cells = [row.config.split(" (")[0], f"`{row.name}`: {row.what}", f"{row.batch} / {row.stage_batch}",
                 number(row.seconds), number(row.batch / row.seconds),
                 ("~" if row.gflop_scaled else "") + number(row.gflop), number(achieved), f"{100 * achieved / peak:.1f}%",
                 at_stage]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=("toy", "cityscapes", "both"), default="both")
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                        help=f"comma-separated stages, of {', '.join(ROWS)} (default: {','.join(DEFAULT_ROWS)})")
    parser.add_argument("--budget", type=float, default=100.0,
                        help="seconds per row the timed batch is chosen to fit (inf: always the stage's batch)")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per row, after a warm-up")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: the trainers' bf16 autocast; CUDA only")
    parser.add_argument("--matmul-size", type=int, default=None,
                        help="side of the reference matmul (default 4096 on CPU, 8192 on CUDA)")
    args = parser.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        parser.error(f"--rows: unknown stage {unknown[0] if unknown else '(none)'!r}; use {', '.join(ROWS)}")
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    device = torch.device(args.device)
    if args.precision == "bf16" and device.type != "cuda":
        parser.error("--precision bf16 is for CUDA devices (mixed precision is off on CPU)")
    size = args.matmul_size or (8192 if device.type == "cuda" else 4096)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32

    start = time.perf_counter()
    peaks = [matmul_gflops(device, size, dtype)]
    print(f"matmul {size}×{size} {args.precision}: {peaks[0]:.1f} GFLOP/s", file=sys.stderr)
    measured, networks = [], []
    for config, params in configurations(args.config).items():
        for name in rows:
            bench = make_bench(name, params, device, args.precision)
            row = measure(config, bench, args.iterations, args.budget)
            measured.append(row)
            networks.append(f"- {config}, `{bench.name}`: {bench.networks}")
            print(f"{config} {bench.name}: batch {row.batch}, {row.seconds:.3g} s/iter, {row.gflop:.3g} GFLOP "
                  f"({row.spent:.0f} s)", file=sys.stderr)
            del bench  # its networks and optimizer states
            if device.type == "cuda":
                torch.cuda.empty_cache()
    peaks.append(matmul_gflops(device, size, dtype))
    peak = max(peaks)

    print(f"Machine: {machine(device)}; precision {args.precision}. Dense matmul ({size}×{size} torch.mm, "
          f"{args.precision}): {peaks[0]:.1f} GFLOP/s before the rows, {peaks[1]:.1f} after; the fractions use "
          f"{peak:.1f}.\n")
    print(table(measured, peak, args.iterations))
    print("\nNetworks (35 classes, random label maps and images of the configuration's size):")
    print("\n".join(networks))
    scaled = any(r.gflop_scaled for r in measured)
    if args.precision != "fp32":
        print("\nbf16: the trainers' autocast (networks in bf16; gradient penalty and loss reductions in fp32).")
    shrunk = any(r.batch < r.stage_batch for r in measured)
    grouped = "" if _torch_counts_groups() else "; grouped convolutions' weight gradients divided by their groups"
    print(f"\nOne iteration is the stage's own training function (see the script's docstring). s/iter: median after a "
          f"warm-up at the timed batch, the largest of 1, 2, 4, ... and the stage's batch fitting --budget "
          f"{args.budget:g} s per row"
          + ("; the last column scales it linearly to the stage's batch (~ marks an extrapolation)" if shrunk else "")
          + ". GFLOP/iter: the whole iteration at the timed batch under FlopCounterMode (convolutions and matrix "
          + f"products of every forward and backward, gradient penalty included; 1 multiply-add = 2 FLOPs{grouped})"
          + ("; ~ marks a count at batch 1 (segmenter: 2) scaled linearly to the timed batch" if scaled else "")
          + f". GFLOP/s = GFLOP/iter ÷ s/iter. Measured in {time.perf_counter() - start:.0f} s.")

if __name__ == "__main__":
    main()
