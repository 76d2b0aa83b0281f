"""Layout synthesizer stages, for the full generator (`layout`) and the completor (`partial`).

    python -m stages.layout KIND init       `KIND_init`: the untrained networks, seeded
    python -m stages.layout KIND <height>   `KIND@<height>`: trains one level from the previous level's output
    python -m stages.layout KIND evaluate   `KIND_eval`: scores `KIND.final_level` -> metrics/KIND.json

KIND is `layout` or `partial`; each reads its own params section. A level stage killed mid-way resumes
from `outputs/KIND_resume/<height>.pt` when re-run, provided its params, starting checkpoint and code
are unchanged; its outputs appear only when it completes.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from data.errors import InputError
from data.io import atomic_output_dir, atomic_write_json, load_checkpoint, save_checkpoint
from data.labels import LabelSpace
from data.prepared import open_prepared_split
from layout.layouts import resize_labels
from layout.losses import COMPLETION_LOSS_TERMS, LOSS_TERMS
from layout.masking import MASKS, PALETTE_MODES
from layout.networks import level_of_height
from layout.train import (CompletionTask, GenerationTask, LayoutModel, NetworkConfig, TrainConfig,
                          evaluate_completion, evaluate_proportions, train_level)
from palette.gmm import PaletteGMM
from stages.common import ResumeFile, class_id, resolve_device, run_stage, start_training, write_tsv
from stages.params import LayoutParams, Params

KINDS = ("layout", "partial")
PREPARED = Path("outputs/prepared")
GMM = Path("outputs/palette/gmm.npz")


def section(params: Params, kind: str) -> LayoutParams:
    return getattr(params, kind)


def check_params(params: Params, kind: str = "layout") -> int:
    """Validates a layout section (its levels and the resolution are checked with the params, by
    `stages.params.check_resolution`); returns the aspect ratio."""
    data, layout = params.data, section(params, kind)
    for height, level in layout.schedule.items():
        if level.steps < 1 or level.batch_size < 1:
            raise InputError(f"{kind}.schedule.{height}: steps and batch_size must be at least 1")
    known = COMPLETION_LOSS_TERMS if kind == "partial" else LOSS_TERMS
    unknown = [t for t in layout.loss_terms if t not in known]
    if unknown:
        raise InputError(f"{kind}.loss_terms: unknown term {unknown[0]!r}; known terms: {', '.join(known)}")
    if not 0 <= layout.ema_decay < 1:
        raise InputError(f"{kind}.ema_decay = {layout.ema_decay}; use a value in [0, 1), e.g. 0.995")
    for key in ("log_every", "image_every", "checkpoint_every", "eval_samples", "latent_dim", "channel_base", "channel_max"):
        if getattr(layout, key) < 1:
            raise InputError(f"{kind}.{key} = {getattr(layout, key)}; it must be at least 1")
    if kind == "partial":
        if not 0 < layout.min_band_fraction <= 1:
            raise InputError(f"partial.min_band_fraction = {layout.min_band_fraction}; use a fraction in (0, 1]")
        if layout.mask not in MASKS or layout.palette_mode not in PALETTE_MODES:
            raise InputError(f"partial.mask must be one of {MASKS} and partial.palette_mode one of {PALETTE_MODES}")
        if layout.mask == "classes" and not layout.mask_classes:
            raise InputError("partial.mask = classes needs partial.mask_classes (class names)")
        if layout.mask == "none" and (layout.mask_classes or layout.palette_mode != "add"):
            raise InputError("partial.mask = none masks no pixel, so it needs partial.palette_mode: add (the "
                             "completor only adds content) and partial.mask_classes: []")
        if layout.spade_hidden < 1:
            raise InputError(f"partial.spade_hidden = {layout.spade_hidden}; it must be at least 1")
    return data.width // data.height


def network_config(params: Params, kind: str, num_classes: int, aspect: int) -> NetworkConfig:
    layout = section(params, kind)
    return NetworkConfig(num_classes=num_classes, latent_dim=layout.latent_dim, aspect=aspect,
                         num_levels=level_of_height(layout.final_level) + 1, channel_base=layout.channel_base,
                         channel_max=layout.channel_max, pixel_norm=layout.pixel_norm, completor=kind == "partial",
                         spade_hidden=layout.spade_hidden if kind == "partial" else 0)


def train_config(params: Params, kind: str, height: int) -> TrainConfig:
    layout = section(params, kind)
    level = layout.schedule[str(height)]
    weights = {"entropy": layout.entropy_weight, "spread": layout.spread_weight, "recover": layout.recover_weight}
    if kind == "partial":
        weights.update(merged_entropy=layout.merged_entropy_weight, novelty=layout.novelty_weight)
    return TrainConfig(
        steps=level.steps, batch_size=level.batch_size, lr=layout.lr, beta1=layout.beta1, beta2=layout.beta2,
        gp_weight=layout.gp_weight, ema_decay=layout.ema_decay, loss_terms=tuple(layout.loss_terms),
        loss_weights=weights, soft_sigma=layout.soft_sigma, soft_mix=layout.soft_mix, flip=layout.flip,
        seed=params.seed, log_every=layout.log_every, image_every=layout.image_every,
        checkpoint_every=layout.checkpoint_every,
    )


def make_task(params: Params, kind: str, space: LabelSpace) -> GenerationTask | CompletionTask:
    if kind == "layout":
        return GenerationTask()
    partial = params.partial
    return CompletionTask(mask=partial.mask, min_band_fraction=partial.min_band_fraction,
                          mask_class_ids=tuple(class_id(space, n, "partial.mask_classes") for n in partial.mask_classes),
                          palette_mode=partial.palette_mode)


def layouts_at(split: str, height: int, aspect: int) -> np.ndarray:
    layouts = torch.from_numpy(np.array(open_prepared_split(PREPARED / split).layouts))
    return resize_labels(layouts, height, height * aspect).numpy()


def evaluate(params: Params, kind: str, model: LayoutModel, height: int, aspect: int, task, device) -> dict:
    layout, level = section(params, kind), level_of_height(height)
    generators = {"ema": model.ema, "raw": model.generator}
    val = layouts_at("val", height, aspect)
    if kind == "partial":
        labels = val[np.arange(layout.eval_samples) % len(val)]
        metrics = evaluate_completion(generators, level, labels, task, soft_sigma=layout.soft_sigma,
                                      soft_mix=layout.soft_mix, seed=params.seed, device=device)
    else:
        # The same GMM palettes at every level; real val layouts paired with them are the reference.
        palettes = PaletteGMM.load(GMM).sample(layout.eval_samples, np.random.default_rng([params.seed, 2**31 - 1]))[0]
        reference = val[np.arange(len(palettes)) % len(val)]
        metrics = evaluate_proportions(generators, level, palettes, reference, params.seed, device=device)
    return {"level": height, **metrics}


def summary(kind: str, metrics: dict) -> str:
    if kind == "partial":
        return (f"band tmae {metrics['ema_band_tmae']:.4f} (EMA) vs {metrics['reference_band_tmae']:.4f} for another "
                f"image's band; {100 * metrics['ema_outside_unchanged']:.1f}% of pixels outside the band unchanged")
    return (f"argmax tmae {metrics['ema_tmae']:.4f} (EMA), {metrics['raw_tmae']:.4f} (raw), "
            f"{metrics['reference_tmae']:.4f} (real layouts with the same palettes)")


def init(params: Params, kind: str) -> None:
    aspect = check_params(params, kind)
    layout = section(params, kind)
    space = open_prepared_split(PREPARED / "train").label_space
    torch.manual_seed(params.seed)
    model = LayoutModel.create(network_config(params, kind, space.num_classes, aspect), layout.lr,
                               (layout.beta1, layout.beta2))
    with atomic_output_dir(Path(f"outputs/{kind}/init")) as folder:
        save_checkpoint(folder / "checkpoint.pt", {"model": model.state_dict(), "level": -1, "label_space": space.name})
    sizes = [sum(p.numel() for p in net.parameters()) for net in (model.generator, model.discriminator)]
    print(f"{kind}_init: generator {sizes[0]:,} and discriminator {sizes[1]:,} parameters, "
          f"{model.config.num_levels} levels up to {layout.final_level}px")


def train(params: Params, kind: str, height: int) -> None:
    aspect = check_params(params, kind)
    layout = section(params, kind)
    if str(height) not in layout.schedule:
        raise InputError(f"level {height} is not in {kind}.schedule ({', '.join(layout.schedule)})")
    level, config = level_of_height(height), train_config(params, kind, height)
    dist, device, precision = start_training(params, config.batch_size)
    betas = (layout.beta1, layout.beta2)
    previous = Path(f"outputs/{kind}") / layout.schedule[str(height)].previous / "checkpoint.pt"
    if not previous.is_file():
        raise InputError(f"{previous} not found; run `dvc repro {kind}@{height}`, which trains the levels below first")
    space = open_prepared_split(PREPARED / "train").label_space
    task = make_task(params, kind, space)

    resume_file = ResumeFile(Path(f"outputs/{kind}_resume/{height}.pt"),
                             {"train": dataclasses.asdict(config), "task": repr(task)}, [previous],
                             list(Path(__file__).resolve().parents[1].glob("layout/*.py")))
    resume = resume_file.load(device)
    if resume is not None:
        model = LayoutModel.from_state_dict(resume["model"], layout.lr, betas, device)
        start_step, history = resume["step"], resume["history"]
        if dist.main:
            print(f"{kind}@{height}: resuming at step {start_step}")
    else:
        model = LayoutModel.from_state_dict(load_checkpoint(previous, device)["model"], layout.lr, betas, device)
        start_step, history = 0, []

    def checkpoint(step: int, rows: list[dict]) -> None:
        resume_file.save({"model": model.state_dict(), "step": step, "history": rows})

    dist.prepare(model.generator, model.discriminator)
    gmm = PaletteGMM.load(GMM)
    writer = SummaryWriter(f"logs/{kind}/{height}", purge_step=start_step or None) if dist.main else None
    history = train_level(
        model, level, layouts_at("train", height, aspect), lambda n, rng: gmm.sample(n, rng)[0], config, task=task,
        start_step=start_step, history=history, checkpoint=checkpoint, writer=writer,
        colors=np.asarray(space.colors, dtype=np.uint8), device=device, dist=dist, precision=precision,
    )
    if not dist.main:
        return
    writer.close()

    metrics = evaluate(params, kind, model, height, aspect, task, device)
    with atomic_output_dir(Path(f"outputs/{kind}/{height}")) as folder:
        save_checkpoint(folder / "checkpoint.pt", {"model": model.state_dict(), "level": level, "label_space": space.name})
    atomic_write_json(Path(f"metrics/{kind}/{height}.json"), metrics)
    write_tsv(Path(f"metrics/{kind}/{height}.tsv"), history)
    resume_file.complete()
    print(f"{kind}@{height}: {summary(kind, metrics)}")


def evaluate_final(params: Params, kind: str) -> None:
    aspect = check_params(params, kind)
    layout = section(params, kind)
    height = layout.final_level
    device = resolve_device(params.device)
    state = load_checkpoint(Path(f"outputs/{kind}/{height}/checkpoint.pt"), device)
    model = LayoutModel.from_state_dict(state["model"], layout.lr, (layout.beta1, layout.beta2), device)
    task = make_task(params, kind, open_prepared_split(PREPARED / "train").label_space)
    metrics = evaluate(params, kind, model, height, aspect, task, device)
    error = "ema_band_tmae" if kind == "partial" else "ema_tmae"
    reference = metrics[error.replace("ema_", "reference_")]
    if reference > 0:  # undefined when every val layout is the same
        metrics[f"{error}_over_reference"] = metrics[error] / reference
    atomic_write_json(Path(f"metrics/{kind}.json"), metrics)
    print(f"{kind}_eval at {height}px: {summary(kind, metrics)}")


def main(params: Params) -> None:
    kind, command = (sys.argv[1:3] + ["", ""])[:2]
    if kind not in KINDS:
        raise InputError(f"usage: python -m stages.layout layout|partial init|<level height>|evaluate (got {kind!r})")
    if command == "init":
        init(params, kind)
    elif command == "evaluate":
        evaluate_final(params, kind)
    elif command.isdigit():
        train(params, kind, int(command))
    else:
        raise InputError(f"usage: python -m stages.layout {kind} init|<level height>|evaluate (got {command!r})")


if __name__ == "__main__":
    run_stage(main)
