"""Layout synthesizer stages.

    python -m stages.layout init       `layout_init`: the untrained networks, seeded
    python -m stages.layout <height>   `layout@<height>`: trains one level from the previous level's output
    python -m stages.layout evaluate   `layout_eval`: proportion errors of `layout.final_level` -> metrics/layout.json

A level stage killed mid-way resumes from `outputs/layout_resume/<height>.pt` when re-run, provided
its params and starting checkpoint are unchanged; its outputs appear only when it completes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from data.errors import InputError
from data.io import atomic_output_dir, atomic_write_bytes, atomic_write_json
from data.prepared import open_prepared_split
from layout.layouts import resize_labels
from layout.losses import LOSS_TERMS
from layout.networks import level_of_height
from layout.train import (LayoutModel, NetworkConfig, TrainConfig, evaluate_proportions, load_checkpoint,
                          save_checkpoint, train_level)
from palette.gmm import PaletteGMM
from stages.common import resolve_device, run_stage
from stages.params import Params

OUT = Path("outputs/layout")
RESUME = Path("outputs/layout_resume")
PREPARED = Path("outputs/prepared")
GMM = Path("outputs/palette/gmm.npz")
METRICS = Path("metrics/layout")


def check_params(params: Params) -> int:
    """Validates the layout section against the data; returns the aspect ratio."""
    data, layout = params.data, params.layout
    if data.width % data.height:
        raise InputError(f"data.width / data.height = {data.width}/{data.height}; the layout synthesizer needs an "
                         f"integer aspect ratio (e.g. 64x128 or 64x64)")
    try:
        level_of_height(layout.final_level)
    except ValueError:
        raise InputError(f"layout.final_level = {layout.final_level}; use a power of two from 4 (4, 8, 16, ...)") from None
    if layout.final_level > data.height:
        raise InputError(f"layout.final_level = {layout.final_level} exceeds data.height = {data.height}; "
                         f"lower it or prepare the data at a higher resolution")
    expected = [str(4 * 2**k) for k in range(level_of_height(layout.final_level) + 1)]
    if sorted(layout.schedule, key=lambda h: (len(h), h)) != expected:
        raise InputError(f"layout.schedule has levels {list(layout.schedule)}; it must have exactly "
                         f"{expected} to end at layout.final_level = {layout.final_level}")
    for height, level in layout.schedule.items():
        previous = "init" if height == "4" else str(int(height) // 2)
        if level.previous != previous:
            raise InputError(f"layout.schedule.{height}.previous = {level.previous!r}; it must be {previous!r}")
        if level.steps < 1 or level.batch_size < 1:
            raise InputError(f"layout.schedule.{height}: steps and batch_size must be at least 1")
    unknown = [t for t in layout.loss_terms if t not in LOSS_TERMS]
    if unknown:
        raise InputError(f"layout.loss_terms: unknown term {unknown[0]!r}; known terms: {', '.join(LOSS_TERMS)}")
    if not 0 <= layout.ema_decay < 1:
        raise InputError(f"layout.ema_decay = {layout.ema_decay}; use a value in [0, 1), e.g. 0.995")
    for key in ("log_every", "image_every", "checkpoint_every", "eval_palettes", "latent_dim", "channel_base", "channel_max"):
        if getattr(layout, key) < 1:
            raise InputError(f"layout.{key} = {getattr(layout, key)}; it must be at least 1")
    return data.width // data.height


def network_config(params: Params, num_classes: int, aspect: int) -> NetworkConfig:
    layout = params.layout
    return NetworkConfig(num_classes=num_classes, latent_dim=layout.latent_dim, aspect=aspect,
                         num_levels=level_of_height(layout.final_level) + 1, channel_base=layout.channel_base,
                         channel_max=layout.channel_max, pixel_norm=layout.pixel_norm)


def train_config(params: Params, height: int) -> TrainConfig:
    layout, level = params.layout, params.layout.schedule[str(height)]
    return TrainConfig(
        steps=level.steps, batch_size=level.batch_size, lr=layout.lr, beta1=layout.beta1, beta2=layout.beta2,
        gp_weight=layout.gp_weight, ema_decay=layout.ema_decay, loss_terms=tuple(layout.loss_terms),
        loss_weights={"entropy": layout.entropy_weight, "spread": layout.spread_weight, "recover": layout.recover_weight},
        soft_sigma=layout.soft_sigma, soft_mix=layout.soft_mix, flip=layout.flip, seed=params.seed,
        log_every=layout.log_every, image_every=layout.image_every, checkpoint_every=layout.checkpoint_every,
    )


def layouts_at(split: str, height: int, aspect: int) -> np.ndarray:
    layouts = torch.from_numpy(np.array(open_prepared_split(PREPARED / split).layouts))
    return resize_labels(layouts, height, height * aspect).numpy()


def eval_palettes(params: Params, gmm: PaletteGMM) -> np.ndarray:
    """The fixed palettes every level is evaluated on."""
    return gmm.sample(params.layout.eval_palettes, np.random.default_rng([params.seed, 2**31 - 1]))[0]


def evaluate(params: Params, model: LayoutModel, height: int, aspect: int, device) -> dict:
    gmm = PaletteGMM.load(GMM)
    palettes = eval_palettes(params, gmm)
    val = layouts_at("val", height, aspect)
    reference = val[np.arange(len(palettes)) % len(val)]
    metrics = evaluate_proportions({"ema": model.ema, "raw": model.generator}, level_of_height(height), palettes,
                                   reference, params.seed, device=device)
    return {"level": height, **metrics}


def init(params: Params) -> None:
    aspect = check_params(params)
    space = open_prepared_split(PREPARED / "train").label_space
    torch.manual_seed(params.seed)
    model = LayoutModel.create(network_config(params, space.num_classes, aspect), params.layout.lr,
                               (params.layout.beta1, params.layout.beta2))
    with atomic_output_dir(OUT / "init") as folder:
        save_checkpoint(folder / "checkpoint.pt", {"model": model.state_dict(), "level": -1, "label_space": space.name})
    sizes = [sum(p.numel() for p in net.parameters()) for net in (model.generator, model.discriminator)]
    print(f"layout_init: generator {sizes[0]:,} and discriminator {sizes[1]:,} parameters, "
          f"{model.config.num_levels} levels up to {params.layout.final_level}px")


def fingerprint(config: TrainConfig, previous: Path) -> str:
    """What a saved state must match to be resumed: the settings, the starting checkpoint and the code."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    digest.update(previous.read_bytes())
    for source in sorted(Path(__file__).resolve().parents[1].glob("layout/*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def train(params: Params, height: int) -> None:
    aspect = check_params(params)
    if str(height) not in params.layout.schedule:
        raise InputError(f"level {height} is not in layout.schedule ({', '.join(params.layout.schedule)})")
    device = resolve_device(params.device)
    level, config = level_of_height(height), train_config(params, height)
    lr, betas = params.layout.lr, (params.layout.beta1, params.layout.beta2)
    previous = OUT / params.layout.schedule[str(height)].previous / "checkpoint.pt"
    if not previous.is_file():
        raise InputError(f"{previous} not found; run `dvc repro layout@{height}`, which trains the levels below first")
    start = load_checkpoint(previous, device)
    space = open_prepared_split(PREPARED / "train").label_space

    resume_path, stamp = RESUME / f"{height}.pt", fingerprint(config, previous)
    resume = load_checkpoint(resume_path, device) if resume_path.is_file() else None
    if resume is not None and resume.get("fingerprint") == stamp:
        model = LayoutModel.from_state_dict(resume["model"], lr, betas, device)
        start_step, history = resume["step"], resume["history"]
        print(f"layout@{height}: resuming at step {start_step}")
    else:
        model = LayoutModel.from_state_dict(start["model"], lr, betas, device)
        start_step, history = 0, []

    def checkpoint(step: int, rows: list[dict]) -> None:
        save_checkpoint(resume_path, {"model": model.state_dict(), "step": step, "history": rows, "fingerprint": stamp})

    gmm = PaletteGMM.load(GMM)
    writer = SummaryWriter(f"logs/layout/{height}", purge_step=start_step or None)
    history = train_level(
        model, level, layouts_at("train", height, aspect), lambda n, rng: gmm.sample(n, rng)[0], config,
        start_step=start_step, history=history, checkpoint=checkpoint, writer=writer,
        colors=np.asarray(space.colors, dtype=np.uint8), device=device,
    )
    writer.close()

    metrics = evaluate(params, model, height, aspect, device)
    with atomic_output_dir(OUT / str(height)) as folder:
        save_checkpoint(folder / "checkpoint.pt", {"model": model.state_dict(), "level": level, "label_space": space.name})
    atomic_write_json(METRICS / f"{height}.json", metrics)
    write_tsv(METRICS / f"{height}.tsv", history)
    # The level is done: a later run (forced, or after a code change) must train again, not resume.
    save_checkpoint(resume_path, {"completed": stamp})
    print(f"layout@{height}: argmax tmae {metrics['ema_tmae']:.4f} (EMA), {metrics['raw_tmae']:.4f} (raw), "
          f"{metrics['reference_tmae']:.4f} (real layouts with the same palettes)")


def write_tsv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["\t".join(columns)]
    lines += ["\t".join(_cell(row.get(c, "")) for c in columns) for row in rows]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def _cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def evaluate_final(params: Params) -> None:
    aspect = check_params(params)
    height = params.layout.final_level
    device = resolve_device(params.device)
    state = load_checkpoint(OUT / str(height) / "checkpoint.pt", device)
    model = LayoutModel.from_state_dict(state["model"], params.layout.lr, (params.layout.beta1, params.layout.beta2), device)
    metrics = evaluate(params, model, height, aspect, device)
    metrics["ema_tmae_over_reference"] = metrics["ema_tmae"] / metrics["reference_tmae"]
    atomic_write_json(Path("metrics/layout.json"), metrics)
    print(f"layout_eval at {height}px: tmae {metrics['ema_tmae']:.4f} vs {metrics['reference_tmae']:.4f} for real "
          f"layouts with the same palettes ({metrics['ema_tmae_over_reference']:.2f}x)")


def main(params: Params) -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "init":
        init(params)
    elif command == "evaluate":
        evaluate_final(params)
    elif command.isdigit():
        train(params, int(command))
    else:
        raise InputError(f"usage: python -m stages.layout init | <level height> | evaluate (got {command!r})")


if __name__ == "__main__":
    run_stage(main)
