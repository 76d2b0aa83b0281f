"""`finetune` and `finetune_partial` stages: end-to-end fine-tuning of the top level of the layout
synthesizer (full generator, or completor) together with the image synthesizer.

    python -m stages.finetune layout     -> outputs/finetune/checkpoint.pt, metrics/finetune.json
    python -m stages.finetune partial    -> outputs/finetune_partial/checkpoint.pt, metrics/finetune_partial.json

Both start from the networks in the folders `chain.<kind>` and `chain.image` (the `<kind>@<final_level>` and
`image` stages' by default; the authors' after `import-authors`, README "Use the authors' checkpoints", whose
image-only critic `image_critic.pt` then starts fine-tuning too, as theirs), and
evaluate every `finetune.eval_every` steps (and before the first), writing `metrics/<stage>_eval.tsv`.
A run killed mid-way resumes from `outputs/<stage>_resume.pt`.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from data.errors import InputError
from data.training import stop_if_diverged
from data.io import atomic_output_dir, atomic_write_json, load_checkpoint, save_checkpoint
from data.prepared import open_prepared_split
from image.fidelity import ImageFeatures, inception_weights, to_uint8_chw
from image.finetune import DISCRETIZATIONS, FinetuneModel, FinetuneSettings, evaluate_finetune, finetune_step
from image.losses import load_vgg_loss
from image.train import to_model_images
from layout.networks import level_of_height
from layout.train import sample_batch, step_generators
from palette.gmm import PaletteGMM
from stages.common import ResumeFile, chain_checkpoints, run_stage, start_training, write_tsv
from stages.image import sample_grid
from stages.layout import GMM, PREPARED, check_params as check_layout_params, layouts_at, make_task, section, train_config
from stages.params import Params

STAGES = {"layout": "finetune", "partial": "finetune_partial"}


def check_params(params: Params, kind: str) -> None:
    check_layout_params(params, kind)
    finetune = params.finetune
    if finetune.discretization not in DISCRETIZATIONS:
        raise InputError(f"finetune.discretization = {finetune.discretization!r}; use one of {', '.join(DISCRETIZATIONS)}")
    for key in ("steps", "batch_size", "log_every", "eval_every", "image_every", "checkpoint_every", "eval_samples"):
        if getattr(finetune, key) < 1:
            raise InputError(f"finetune.{key} = {getattr(finetune, key)}; it must be at least 1")
    if finetune.d2_weight < 0 or finetune.layout_lr <= 0:
        raise InputError("finetune.d2_weight must be >= 0 and finetune.layout_lr > 0")


def main(params: Params) -> None:
    kind = (sys.argv[1:] or [""])[0]
    if kind not in STAGES:
        raise InputError(f"usage: python -m stages.finetune layout|partial (got {kind!r})")
    check_params(params, kind)
    stage, finetune, layout_params, image_params = STAGES[kind], params.finetune, section(params, kind), params.image
    dist, device, precision = start_training(params, finetune.batch_size)
    height = layout_params.final_level
    level, aspect = level_of_height(height), params.data.width // params.data.height
    layout_checkpoint, image_checkpoint = chain_checkpoints(params, kind, finetuned=False)
    image_critic = image_checkpoint.with_name("image_critic.pt")  # the authors' image-only critic, once imported
    starts = [layout_checkpoint, image_checkpoint] + ([image_critic] if image_critic.is_file() else [])

    layout_config = dataclasses.replace(train_config(params, kind, height), batch_size=finetune.batch_size,
                                        lr=finetune.layout_lr, seed=params.seed)
    settings = FinetuneSettings(d2_weight=finetune.d2_weight, freeze_layout=finetune.freeze_layout,
                                discretization=finetune.discretization,
                                feature_matching_weight=image_params.feature_matching_weight,
                                perceptual_weight=image_params.perceptual_weight)
    perceptual = load_vgg_loss(image_params.vgg_weights)
    if perceptual is not None:
        perceptual = perceptual.to(device)
    elif dist.main:
        print(f"{stage}: perceptual loss off (image.vgg_weights is empty; nothing is downloaded)")
    betas = (layout_params.beta1, layout_params.beta2)

    resume_file = ResumeFile(Path(f"outputs/{stage}_resume.pt"),
                             {"finetune": dataclasses.asdict(finetune), "layout": dataclasses.asdict(layout_config),
                              "settings": dataclasses.asdict(settings)},
                             starts,
                             [p for package in ("layout", "image") for p in Path(__file__).resolve().parents[1].glob(f"{package}/*.py")])
    state = resume_file.load(device)
    if state is not None:
        model = FinetuneModel.from_state_dict(state["model"], layout_lr=finetune.layout_lr, layout_betas=betas, device=device)
        start, history, evaluations = state["step"], state["history"], state["evaluations"]
        if dist.main:
            print(f"{stage}: resuming at step {start}")
    else:
        torch.manual_seed(params.seed)
        model = FinetuneModel.from_trained(load_checkpoint(layout_checkpoint, device)["model"],
                                           load_checkpoint(image_checkpoint, device)["model"],
                                           layout_lr=finetune.layout_lr, layout_betas=betas, g_lr=image_params.g_lr,
                                           d_lr=image_params.d_lr, image_betas=(image_params.beta1, image_params.beta2),
                                           device=device)
        if image_critic.is_file():
            model.image_critic.load_state_dict(load_checkpoint(image_critic, device)["image_critic"])
        start, history, evaluations = 0, [], []
    dist.prepare(model.layout.generator, model.layout.discriminator, model.image.generator, model.image.discriminator,
                 model.image_critic)

    train, val = open_prepared_split(PREPARED / "train"), open_prepared_split(PREPARED / "val")
    space, gmm = train.label_space, PaletteGMM.load(GMM)
    task = make_task(params, kind, space)
    count = min(finetune.eval_samples, len(val))
    val_labels, val_images = np.array(val.layouts[:count]), np.array(val.images[:count])
    eval_palettes = gmm.sample(count, np.random.default_rng([params.seed, 2**31 - 1]))[0]

    weights, source = inception_weights(params.evaluate.inception_weights)
    features = real_features = None
    if weights is not None and dist.main:
        features = ImageFeatures(weights, device=device)
        real_features = features(to_uint8_chw(val_images))
    if dist.main:
        print(f"{stage}: {source}")

    def evaluate(step: int) -> None:
        row = evaluate_finetune(model, task, level, val_labels, val_images, eval_palettes,
                                soft_sigma=layout_params.soft_sigma, soft_mix=layout_params.soft_mix, seed=params.seed,
                                features=features, real_features=real_features, device=device)
        evaluations.append({"step": step, **row})
        for key, value in row.items():
            writer.add_scalar(f"{stage}/eval/{key}", value, step)

    reals = torch.from_numpy(layouts_at("train", height, aspect))
    images = to_model_images(np.array(train.images))
    colors = np.asarray(space.colors, dtype=np.uint8)
    writer = SummaryWriter(f"logs/{stage}", purge_step=start or None) if dist.main else None
    if start == 0 and dist.main:
        evaluate(0)
    progress = tqdm(range(start, finetune.steps), initial=start, total=finetune.steps, desc=stage, unit="step",
                    disable=not dist.main)
    last_checkpoint = start
    for step in progress:
        # Streams apart from the layout stage's (seeded by level and step): other batches than its own.
        rng, torch_rng = step_generators(params.seed, 1000 + level, step)
        _, batch, z, batch_images = sample_batch(reals, lambda n, r: gmm.sample(n, r)[0], task, layout_config,
                                                 space.num_classes, model.layout.config.latent_dim, rng, torch_rng,
                                                 device, images=images, dist=dist)
        with stop_if_diverged(step + 1, last_checkpoint):
            losses = finetune_step(model, level, batch, z, batch_images, layout_config, settings, torch_rng, perceptual,
                                   dist=dist, precision=precision)

        done = step + 1
        if done % finetune.checkpoint_every == 0 or done == finetune.steps:
            last_checkpoint = done
        if not dist.main:
            continue
        if done % finetune.log_every == 0 or done == finetune.steps:
            history.append({"step": done, **losses})
            progress.set_postfix(d2=f"{losses['d2_hinge']:.2f}", d=f"{losses['d_hinge']:.2f}")
            for name, value in losses.items():
                writer.add_scalar(f"{stage}/{name}", value, done)
        if done % finetune.eval_every == 0 or done == finetune.steps:
            evaluate(done)
        if done % finetune.image_every == 0 and done < finetune.steps:
            writer.add_image(f"{stage}/layout_real_generated", sample_grid(model.image, val_labels[:8], val_images[:8], colors),
                             done, dataformats="HWC")
        if done == last_checkpoint:
            resume_file.save({"model": model.state_dict(), "step": done, "history": history, "evaluations": evaluations})
    if not dist.main:
        return
    writer.close()

    first, last = evaluations[0], evaluations[-1]
    metrics = {**{f"start_{k}": v for k, v in first.items() if k != "step"},
               **{f"end_{k}": v for k, v in last.items() if k != "step"}}
    with atomic_output_dir(Path(f"outputs/{stage}")) as folder:
        save_checkpoint(folder / "checkpoint.pt", {"model": model.state_dict(), "level": level, "label_space": space.name})
    atomic_write_json(Path(f"metrics/{stage}.json"), metrics)
    write_tsv(Path(f"metrics/{stage}.tsv"), history)
    write_tsv(Path(f"metrics/{stage}_eval.tsv"), evaluations)
    resume_file.complete()
    error = "band tmae" if kind == "partial" else "tmae"
    print(f"{stage}: layout {error} {first['layout_tmae']:.4f} -> {last['layout_tmae']:.4f}; class colour error from "
          f"real layouts {first['real_layout_colour_error']:.1f} -> {last['real_layout_colour_error']:.1f}; from generated "
          f"layouts, distance to class colours {first['generated_layout_colour_distance']:.1f} -> "
          f"{last['generated_layout_colour_distance']:.1f} (real images: {last['real_colour_distance']:.1f})")


if __name__ == "__main__":
    run_stage(main)
