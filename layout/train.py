"""Training of one resolution level of the layout synthesizer (fade in, then stabilise).

Randomness is drawn from generators seeded by (seed, level, step), so a run resumed from a checkpoint
continues exactly as an uninterrupted one would.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid
from tqdm import tqdm

from data.io import load_checkpoint
from data.training import SINGLE, Distributed, autocast, full_precision, stop_if_diverged
from layout.layouts import discretize, one_hot, soften
from layout.losses import COMPLETION_LOSS_TERMS, LOSS_TERMS, check_loss_terms, gradient_penalty, regularization
from layout.masking import band_masks, class_masks, completion_inputs, region_proportions
from layout.networks import LayoutCompletor, LayoutDiscriminator, LayoutGenerator, level_height
from palette.metrics import proportion_errors


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild the networks; stored in every checkpoint."""

    num_classes: int
    latent_dim: int
    aspect: int
    num_levels: int
    channel_base: int
    channel_max: int
    pixel_norm: str
    completor: bool = False
    spade_hidden: int = 0  # the completor's SPADE hidden width
    # Reproducing the authors' networks (set by the import of their checkpoints, stages.import_authors):
    renormalize_palette: bool = True  # False: the palette is used as given (the authors)
    resize: str = "nearest-exact"  # the completor's input-layout resizing; `nearest`: the authors' legacy rule
    critic_score_gain: float = 1.0  # the critic's last layer's equalized-lr gain; the authors: sqrt(2)


@dataclass
class Batch:
    palette: torch.Tensor  # what the generator is asked for: B×C, or B×(C+1) for the completor
    real: torch.Tensor  # soft real layouts, for the critic
    requested: torch.Tensor  # the proportions the logged error compares with
    condition: torch.Tensor | None = None  # the completor's masked input
    source: torch.Tensor | None = None  # the completor's real layouts, one-hot
    region: torch.Tensor | None = None  # the pixels the completor redoes, B×H×W


@dataclass(frozen=True)
class GenerationTask:
    """Whole layouts for GMM palettes."""

    loss_terms = LOSS_TERMS

    def make_batch(self, labels: torch.Tensor, real: torch.Tensor, palette: torch.Tensor, rng) -> Batch:
        return Batch(palette=palette, real=real, requested=palette)

    def obtained(self, layouts: torch.Tensor, batch: Batch) -> torch.Tensor:
        return layouts.mean(dim=(2, 3))


@dataclass(frozen=True)
class CompletionTask:
    """A region of each real layout (a vertical band, or the pixels of some classes) redone with a palette:
    the region's real content (`real`) or what a GMM palette adds to the image (`add`)."""

    mask: str = "band"
    min_band_fraction: float = 0.5
    mask_class_ids: tuple[int, ...] = ()
    palette_mode: str = "real"
    loss_terms = COMPLETION_LOSS_TERMS

    def regions(self, labels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.mask == "band":
            count, height, width = labels.shape
            region = band_masks(count, height, width, self.min_band_fraction, rng)
        elif self.mask == "classes":
            region = class_masks(labels.cpu().numpy(), list(self.mask_class_ids))
        else:  # none: the whole layout is kept as input; the completor only adds content
            region = np.zeros(labels.shape, dtype=bool)
        return torch.from_numpy(region).to(labels.device)

    def make_batch(self, labels: torch.Tensor, real: torch.Tensor, palette: torch.Tensor, rng) -> Batch:
        region = self.regions(labels, rng)
        source = one_hot(labels, real.shape[1])
        condition, edit_palette = completion_inputs(source, real, region, self.palette_mode, palette)
        requested = region_proportions(source, region) if self.palette_mode == "real" else palette
        return Batch(edit_palette, real, requested, condition, source, region)

    def obtained(self, layouts: torch.Tensor, batch: Batch) -> torch.Tensor:
        return region_proportions(layouts, batch.region) if self.palette_mode == "real" else layouts.mean(dim=(2, 3))


@dataclass(frozen=True)
class TrainConfig:
    steps: int  # per phase: fade (levels above the first), then stabilise
    batch_size: int
    lr: float
    beta1: float
    beta2: float
    gp_weight: float
    ema_decay: float
    loss_terms: tuple[str, ...]
    loss_weights: dict  # regularizer name -> weight
    soft_sigma: float
    soft_mix: float
    flip: bool
    seed: int
    log_every: int
    image_every: int
    checkpoint_every: int


@dataclass
class LayoutModel:
    """Generator, critic, the generator's moving average and both optimizers."""

    config: NetworkConfig
    generator: LayoutGenerator
    discriminator: LayoutDiscriminator
    ema: LayoutGenerator
    g_optimizer: torch.optim.Adam
    d_optimizer: torch.optim.Adam

    @classmethod
    def create(cls, config: NetworkConfig, lr: float, betas: tuple[float, float], device="cpu") -> "LayoutModel":
        generator = build_generator(config).to(device)
        discriminator = build_critic(config).to(device)
        ema = copy.deepcopy(generator).eval().requires_grad_(False)
        # One optimizer per network for every level's parameters, kept across levels as the authors do.
        return cls(config, generator, discriminator, ema,
                   torch.optim.Adam(generator.parameters(), lr=lr, betas=betas),
                   torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas))

    def state_dict(self) -> dict:
        return {"config": dataclasses.asdict(self.config), "generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(), "ema": self.ema.state_dict(),
                "g_optimizer": self.g_optimizer.state_dict(), "d_optimizer": self.d_optimizer.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict, lr: float, betas: tuple[float, float], device="cpu", *,
                        optimizers: bool = True) -> "LayoutModel":
        """The networks a `state_dict()` saved; their optimizers' moments too (the next level goes on with
        them, as the authors), or fresh ones with `optimizers=False`. Either way at rate `lr`."""
        model = cls.create(NetworkConfig(**state["config"]), lr, betas, device)
        for name in ("generator", "discriminator", "ema") + (("g_optimizer", "d_optimizer") if optimizers else ()):
            getattr(model, name).load_state_dict(state[name])
        for optimizer in (model.g_optimizer, model.d_optimizer):
            for group in optimizer.param_groups:
                group["lr"], group["betas"] = lr, betas
        return model

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        for average, current in zip(self.ema.parameters(), self.generator.parameters()):
            average.lerp_(current, 1 - decay)
        # Normalisation statistics are not averaged: the moving average uses the generator's own.
        for average, current in zip(self.ema.buffers(), self.generator.buffers()):
            average.copy_(current)


def build_generator(config: NetworkConfig) -> LayoutGenerator:
    shape = dict(latent_dim=config.latent_dim, aspect=config.aspect, num_levels=config.num_levels,
                 channel_base=config.channel_base, channel_max=config.channel_max, pixel_norm=config.pixel_norm,
                 renormalize_palette=config.renormalize_palette)
    if config.completor:
        return LayoutCompletor(config.num_classes, spade_hidden=config.spade_hidden, resize=config.resize, **shape)
    return LayoutGenerator(config.num_classes, **shape)


def build_critic(config: NetworkConfig) -> LayoutDiscriminator:
    return LayoutDiscriminator(config.num_classes, aspect=config.aspect, num_levels=config.num_levels,
                               channel_base=config.channel_base, channel_max=config.channel_max,
                               score_gain=config.critic_score_gain)


def load_generator(path: str | Path, *, ema: bool = True, device="cpu") -> tuple[LayoutGenerator, int]:
    """The generator of a `layout@<height>` checkpoint (its moving average by default), ready to
    sample, and the level it was trained to."""
    state = load_checkpoint(Path(path), device)
    generator = build_generator(NetworkConfig(**state["model"]["config"])).to(device)
    generator.load_state_dict(state["model"]["ema" if ema else "generator"])
    return generator.eval().requires_grad_(False), state["level"]


def step_generators(seed: int, level: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    rng = np.random.default_rng([seed, level, step])
    return rng, torch.Generator().manual_seed(int(rng.integers(2**62)))


def sample_batch(reals: torch.Tensor, sample_palettes: Callable[[int, np.random.Generator], np.ndarray],
                 task: GenerationTask | CompletionTask, config: TrainConfig, num_classes: int, latent_dim: int,
                 rng: np.random.Generator, torch_rng: torch.Generator, device, images: torch.Tensor | None = None,
                 dist: Distributed = SINGLE) -> tuple[torch.Tensor, Batch, torch.Tensor, torch.Tensor | None]:
    """Fresh GMM palettes, random real layouts (mirrored half the time) and noise: the real label ids
    (B×h×w), the task's batch, z, and the real layouts' images (B×3×h×w) when `images` are given. The
    global batch is drawn, then this process's rows of it are kept."""
    palette = torch.from_numpy(sample_palettes(config.batch_size, rng)).to(device)
    chosen_rows = rng.integers(0, len(reals), config.batch_size)
    chosen = reals[chosen_rows]
    chosen_images = None if images is None else images[chosen_rows]
    if config.flip:
        mirror = torch.from_numpy(rng.random(config.batch_size) < 0.5)
        chosen = torch.where(mirror[:, None, None], chosen.flip(-1), chosen)
        if chosen_images is not None:
            chosen_images = torch.where(mirror[:, None, None, None], chosen_images.flip(-1), chosen_images)
    chosen = chosen.long().to(device)
    real = soften(one_hot(chosen, num_classes), config.soft_sigma, config.soft_mix)
    batch = task.make_batch(chosen, real, palette, rng)
    z = torch.randn(config.batch_size, latent_dim, generator=torch_rng).to(device)
    batch = Batch(**{field.name: dist.shard(getattr(batch, field.name)) for field in dataclasses.fields(batch)})
    chosen_images = None if chosen_images is None else chosen_images.to(device)
    return dist.shard(chosen), batch, dist.shard(z), dist.shard(chosen_images)


def generator_losses(model: LayoutModel, batch: Batch, z: torch.Tensor, level: int, alpha: float | None,
                     config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
    """The generator's soft layouts (B×C×h×w, with gradients), its Wasserstein term, its palette
    regularizers (weighted sum) and their unweighted values."""
    outputs = model.generator(z, batch.palette, level, alpha, condition=batch.condition)
    fake = outputs[-1].seg
    adversarial = -model.discriminator(fake, level, alpha).mean()
    regularizers, scales = regularization(outputs, batch.palette, list(config.loss_terms), config.loss_weights,
                                          batch.source, batch.region)
    return fake, adversarial, regularizers, scales


def critic_loss(model: LayoutModel, batch: Batch, fake: torch.Tensor, level: int, alpha: float | None,
                gp_weight: float, torch_rng: torch.Generator, dist: Distributed = SINGLE,
                precision: str = "fp32") -> tuple[torch.Tensor, ...]:
    """WGAN-GP: D(fake) - D(real) + gp_weight · penalty; returns the loss, D(real), D(fake), the penalty
    (computed in fp32: its double backward is the most sensitive to rounding)."""
    D, device = model.discriminator, fake.device
    with autocast(device, precision):
        d_real, d_fake = D(batch.real, level, alpha).float().mean(), D(fake, level, alpha).float().mean()
    with full_precision(device):
        penalty = gradient_penalty(lambda x: D(x, level, alpha), batch.real, fake, generator=torch_rng, dist=dist)
    return d_fake - d_real + gp_weight * penalty, d_real, d_fake, penalty


def train_level(
    model: LayoutModel,
    level: int,
    real_layouts: np.ndarray,
    sample_palettes: Callable[[int, np.random.Generator], np.ndarray],
    config: TrainConfig,
    *,
    task: GenerationTask | CompletionTask = GenerationTask(),
    start_step: int = 0,
    history: list[dict] | None = None,
    checkpoint: Callable[[int, list[dict]], None] | None = None,
    writer: SummaryWriter | None = None,
    colors: np.ndarray | None = None,
    device="cpu",
    dist: Distributed = SINGLE,
    precision: str = "fp32",
) -> list[dict]:
    """Trains `level` on `real_layouts` (N×h×w label ids at this level's size) for fade + stabilise
    phases, starting at `start_step`; `task` says what the generator is asked (whole layouts, or
    completions). Returns the logged rows (one dict every `log_every` steps). Under several processes
    (`dist`) each trains on its rows of every batch and only the main one logs and checkpoints."""
    check_loss_terms(list(config.loss_terms), task.loss_terms)
    D = model.discriminator
    num_classes = model.config.num_classes
    phases = ["stabilise"] if level == 0 else ["fade", "stabilise"]
    total_steps = len(phases) * config.steps
    history = list(history or [])
    reals = torch.from_numpy(np.ascontiguousarray(real_layouts))

    progress = tqdm(range(start_step, total_steps), initial=start_step, total=total_steps,
                    desc=f"layout {level_height(level)}px", unit="step", disable=not dist.main)
    last_checkpoint = start_step
    for step in progress:
        phase = phases[step // config.steps]
        alpha = (step % config.steps) / config.steps if phase == "fade" else None
        rng, torch_rng = step_generators(config.seed, level, step)

        chosen, batch, z, _ = sample_batch(reals, sample_palettes, task, config, num_classes, model.config.latent_dim,
                                           rng, torch_rng, device, dist=dist)

        # Generator step; the critic's weights need no gradients here.
        D.requires_grad_(False)
        with autocast(device, precision):
            fake, g_adversarial, g_regularization, scales = generator_losses(model, batch, z, level, alpha, config)
        with stop_if_diverged(step + 1, last_checkpoint):
            dist.check_finite({"g_adversarial": g_adversarial, "g_regularization": g_regularization})
        model.g_optimizer.zero_grad(set_to_none=True)
        (g_adversarial + g_regularization).backward()
        dist.average_gradients(model.generator)
        model.g_optimizer.step()
        model.update_ema(config.ema_decay)

        # Critic step, on the fake batch made before the generator's update (as the authors).
        D.requires_grad_(True)
        fake = fake.detach().float()
        d_loss, d_real, d_fake, penalty = critic_loss(model, batch, fake, level, alpha, config.gp_weight, torch_rng,
                                                      dist, precision)
        with stop_if_diverged(step + 1, last_checkpoint):
            dist.check_finite({"d_loss": d_loss})
        model.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        dist.average_gradients(D)
        model.d_optimizer.step()

        if (step + 1) % config.log_every == 0 or step + 1 == total_steps:
            requested = batch.requested.cpu().numpy()
            obtained = task.obtained(one_hot(fake.argmax(1), num_classes), batch).detach().cpu().numpy()
            row = {"step": step + 1, "phase": phase, "alpha": 1.0 if alpha is None else alpha,
                   **dist.mean({"g_adversarial": g_adversarial.item(), "g_regularization": g_regularization.item(),
                                "d_loss": d_loss.item(), "wasserstein": (d_real - d_fake).item(),
                                "gradient_penalty": penalty.item(), **scales,
                                "batch_tmae": proportion_errors(requested, obtained)["tmae"]})}
            history.append(row)
            progress.set_postfix(d=f"{row['d_loss']:.2f}", tmae=f"{row['batch_tmae']:.4f}")
            if writer is not None:
                for key, value in row.items():
                    if key not in ("step", "phase"):
                        writer.add_scalar(f"layout/{key}", value, step + 1)
        if writer is not None and colors is not None and ((step + 1) % config.image_every == 0 or step + 1 == total_steps):
            writer.add_image("layout/generated", layout_grid(fake.argmax(1), colors), step + 1)
            writer.add_image("layout/real", layout_grid(chosen, colors), step + 1)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == total_steps:
            if checkpoint is not None and dist.main:
                checkpoint(step + 1, history)
            last_checkpoint = step + 1
    return history


def layout_grid(layouts: torch.Tensor, colors: np.ndarray, count: int = 16) -> torch.Tensor:
    """The first `count` label maps coloured with the label space's colours, as one image grid."""
    coloured = torch.from_numpy(colors)[layouts[:count].cpu().long()].permute(0, 3, 1, 2)
    return make_grid(coloured, nrow=4, padding=1)


@torch.no_grad()
def generate(generator: LayoutGenerator, palettes: np.ndarray, level: int, seed: int,
             discretization: str = "max", temperature: float = 1.0, batch_size: int = 64, device="cpu") -> torch.Tensor:
    """Layouts (B×C×H×W) for the given palettes, with noise drawn from `seed`."""
    torch_rng = torch.Generator().manual_seed(seed)
    layouts = []
    for start in range(0, len(palettes), batch_size):
        palette = torch.from_numpy(np.asarray(palettes[start:start + batch_size], np.float32)).to(device)
        z = torch.randn(len(palette), generator.latent_dim, generator=torch_rng).to(device)
        seg = generator(z, palette, level)[-1].seg
        layouts.append(discretize(seg, discretization, temperature, generator=torch_rng).cpu())
    return torch.cat(layouts)


def evaluate_proportions(generators: dict[str, LayoutGenerator], level: int, palettes: np.ndarray,
                         reference_layouts: np.ndarray, seed: int, device="cpu") -> dict[str, float]:
    """Proportion errors of argmax layouts against the requested palettes, for each generator, and for
    real layouts paired with the same palettes (what a model ignoring its palette would score)."""
    metrics = {}
    for name, generator in generators.items():
        layouts = generate(generator, palettes, level, seed, "max", device=device)
        for key, value in proportion_errors(palettes, layouts.mean(dim=(2, 3)).numpy()).items():
            metrics[f"{name}_{key}"] = value
    num_classes = palettes.shape[1]
    reference = one_hot(torch.from_numpy(np.asarray(reference_layouts)), num_classes).mean(dim=(2, 3)).numpy()
    for key, value in proportion_errors(palettes, reference).items():
        metrics[f"reference_{key}"] = value
    return metrics


@torch.no_grad()
def evaluate_completion(generators: dict[str, LayoutGenerator], level: int, labels: np.ndarray, task: CompletionTask,
                        *, soft_sigma: float, soft_mix: float, seed: int, batch_size: int = 64, device="cpu") -> dict[str, float]:
    """Completions of real layouts in the task's regions: the share of pixels outside the region whose
    class is unchanged, and the proportion errors of what was asked (`band_*`).

    `real` palettes: the errors of the region's content (relative to its area) against the region's
    real content; the reference fills the region with another image's content, i.e. what ignoring the
    palette would score. `add` palettes: each layout is asked for what another val layout has in excess
    of its own palette (a real composition as the target, as GMM palettes are in training); the errors
    are those of the added content (the argmax of the completor's C + 1 distribution, as image shares)
    against the requested additions, the reference is another layout's request, and `<name>_kept` (the
    share of pixels the completor keeps) compares with `requested_kept`."""
    rng, torch_rng = np.random.default_rng([seed, 2**31 - 2]), torch.Generator().manual_seed(seed)
    labels = torch.from_numpy(np.asarray(labels)).long()
    num_classes = next(iter(generators.values())).num_classes
    source = one_hot(labels, num_classes)
    metrics = {}
    if task.palette_mode == "add":
        region = task.regions(labels, rng)
        targets = source.roll(1, dims=0).mean(dim=(2, 3))
        _, palette = completion_inputs(source, source, region, "add", targets)
        requested = palette[:, :num_classes]
        for name, generator in generators.items():
            predicted, added = complete(generator, level, source, region, soft_sigma=soft_sigma, soft_mix=soft_mix,
                                        torch_rng=torch_rng, batch_size=batch_size, device=device,
                                        palette_mode="add", targets=targets, with_added=True)
            metrics[f"{name}_outside_unchanged"] = (predicted == labels)[~region].float().mean().item()
            metrics[f"{name}_kept"] = (added == num_classes).float().mean().item()
            obtained = one_hot(added, num_classes + 1)[:, :num_classes].mean(dim=(2, 3))
            metrics.update({f"{name}_band_{k}": v for k, v in proportion_errors(requested.numpy(), obtained.numpy()).items()})
        reference = requested.roll(1, dims=0)
        metrics["requested_kept"] = palette[:, num_classes].mean().item()
        metrics.update({f"reference_band_{k}": v for k, v in proportion_errors(requested.numpy(), reference.numpy()).items()})
        return metrics
    task = dataclasses.replace(task, palette_mode="real")
    region = task.regions(labels, rng)
    requested = region_proportions(source, region)
    reference = region_proportions(source.roll(1, dims=0), region)
    for name, generator in generators.items():
        predicted = complete(generator, level, source, region, soft_sigma=soft_sigma, soft_mix=soft_mix,
                             torch_rng=torch_rng, batch_size=batch_size, device=device)
        metrics[f"{name}_outside_unchanged"] = (predicted == labels)[~region].float().mean().item()
        obtained = region_proportions(one_hot(predicted, num_classes), region)
        metrics.update({f"{name}_band_{k}": v for k, v in proportion_errors(requested.numpy(), obtained.numpy()).items()})
    metrics.update({f"reference_band_{k}": v for k, v in proportion_errors(requested.numpy(), reference.numpy()).items()})
    return metrics


@torch.no_grad()
def complete(generator: LayoutGenerator, level: int, source: torch.Tensor, region: torch.Tensor, *, soft_sigma: float,
             soft_mix: float, torch_rng: torch.Generator, batch_size: int = 64, device="cpu", palette_mode: str = "real",
             targets: torch.Tensor | None = None, noise: torch.Tensor | None = None,
             with_added: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Label ids (B×H×W) of one-hot real layouts `source` with `region` redone, in eval mode: to its own
    content's proportions (`palette_mode` real), or adding what the `targets` palettes (B×C) have in
    excess of each layout's own (add). `noise` (B×latent_dim) replaces the draws from `torch_rng`, e.g.
    one noise for every frame of an edit. With `with_added`, also the argmax of the completor's C + 1
    distribution: the class of the new content at each pixel, C where the input is kept."""
    training = generator.training
    generator.eval()
    predictions, added = [], []
    for start in range(0, len(source), batch_size):
        part = slice(start, start + batch_size)
        condition, palette = completion_inputs(source[part], soften(source[part], soft_sigma, soft_mix), region[part],
                                               palette_mode, None if targets is None else targets[part])
        z = torch.randn(len(palette), generator.latent_dim, generator=torch_rng) if noise is None else noise[part]
        out = generator(z.to(device), palette.to(device), level, condition=condition.to(device))[-1]
        predictions.append(out.seg.argmax(1).cpu())
        added.append(out.raw.argmax(1).cpu())
    generator.train(training)
    return (torch.cat(predictions), torch.cat(added)) if with_added else torch.cat(predictions)
