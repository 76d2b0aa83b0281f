"""`image` stage: trains the SPADE image synthesizer on the prepared (layout, image) pairs.

Writes `outputs/image/checkpoint.pt`, `outputs/image/samples.png` (layout | real | generated for val
pairs), `metrics/image.json` and the training log `metrics/image.tsv`. A run killed mid-way resumes
from `outputs/image_resume.pt`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid
from tqdm import tqdm

from data.errors import InputError
from data.io import atomic_output_dir, atomic_write_json, save_checkpoint
from data.prepared import open_prepared_split
from data.training import stop_if_diverged
from image.losses import load_vgg_loss
from image.train import ImageModel, ImageNetworkConfig, evaluate_images, to_model_images, to_uint8, train_step
from layout.layouts import one_hot
from stages.common import ResumeFile, run_stage, start_training, write_tsv
from stages.params import Params

PREPARED = Path("outputs/prepared")
OUT = Path("outputs/image")
SAMPLES_SHOWN = 8


def check_params(params: Params) -> None:
    image = params.image
    if image.model not in ("spade", "sean"):
        raise InputError(f"image.model = {image.model!r}; use spade (scenes) or sean (faces, per-region styles)")
    if image.model == "sean" and (image.style_dim < 16 or image.style_dim % 16):
        raise InputError(f"image.style_dim = {image.style_dim}; SEAN needs a positive multiple of 16")
    if image.middle_blocks < 0:
        raise InputError(f"image.middle_blocks = {image.middle_blocks}; it must be 0 or more")
    for key in ("base_channels", "spade_hidden", "critic_channels", "critic_scales", "steps", "batch_size",
                "log_every", "image_every", "checkpoint_every", "eval_samples"):
        if getattr(image, key) < 1:
            raise InputError(f"image.{key} = {getattr(image, key)}; it must be at least 1")
    if not 0 <= image.decay_start <= image.steps:
        raise InputError(f"image.decay_start = {image.decay_start}; use a step between 0 and image.steps = {image.steps}")


def image_config(params: Params, num_classes: int) -> ImageNetworkConfig:
    image = params.image
    return ImageNetworkConfig(num_classes, params.data.height, params.data.width, image.base_channels,
                              image.num_upsamplings, image.spade_hidden, image.critic_channels, image.critic_scales,
                              model=image.model, style_dim=image.style_dim, middle_blocks=image.middle_blocks)


def sample_grid(model: ImageModel, labels: np.ndarray, images: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Rows of layout | real | generated (SEAN: in the real image's styles), as one uint8 image."""
    device = next(model.generator.parameters()).device
    with torch.no_grad():
        model.generator.eval()
        layouts = one_hot(torch.as_tensor(labels).long(), model.config.num_classes).to(device)
        generated = to_uint8(model.generate(layouts, to_model_images(images).to(device)))
        model.generator.train()
    rows = [np.concatenate([colors[label], real, fake], axis=1) for label, real, fake in zip(labels, images, generated)]
    grid = make_grid(torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2), nrow=1, padding=2, pad_value=255)
    return grid.permute(1, 2, 0).numpy()


def main(params: Params) -> None:
    check_params(params)
    image_params = params.image
    dist, device, precision = start_training(params, image_params.batch_size)
    train, val = open_prepared_split(PREPARED / "train"), open_prepared_split(PREPARED / "val")
    space = train.label_space
    colors = np.asarray(space.colors, dtype=np.uint8)
    config = image_config(params, space.num_classes)
    perceptual = load_vgg_loss(image_params.vgg_weights)
    if perceptual is not None:
        perceptual = perceptual.to(device)
    elif dist.main:
        print("image: perceptual loss off (image.vgg_weights is empty; nothing is downloaded)")

    torch.manual_seed(params.seed)
    betas = (image_params.beta1, image_params.beta2)
    model = ImageModel.create(config, g_lr=image_params.g_lr, d_lr=image_params.d_lr, betas=betas, device=device)
    resume_file = ResumeFile(Path("outputs/image_resume.pt"),
                             {"image": dataclasses.asdict(image_params), "seed": params.seed, "data": dataclasses.asdict(params.data)},
                             [PREPARED / "train/manifest.json"], list(Path(__file__).resolve().parents[1].glob("image/*.py")))
    state = resume_file.load(device)
    start, history = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        start, history = state["step"], state["history"]
        if dist.main:
            print(f"image: resuming at step {start}")
    dist.prepare(model.generator, model.discriminator)

    shown_labels, shown_images = np.array(val.layouts[:SAMPLES_SHOWN]), np.array(val.images[:SAMPLES_SHOWN])
    labels = torch.from_numpy(np.array(train.layouts)).long()
    images = to_model_images(np.array(train.images))
    writer = SummaryWriter("logs/image", purge_step=start or None) if dist.main else None
    progress = tqdm(range(start, image_params.steps), initial=start, total=image_params.steps, desc="image", unit="step",
                    disable=not dist.main)
    last_checkpoint = start
    for step in progress:
        rng = np.random.default_rng([params.seed, step])
        chosen = torch.from_numpy(rng.integers(0, len(labels), image_params.batch_size))
        batch_labels, batch_images = labels[chosen], images[chosen]
        if image_params.flip:
            mirror = torch.from_numpy(rng.random(image_params.batch_size) < 0.5)
            batch_labels = torch.where(mirror[:, None, None], batch_labels.flip(-1), batch_labels)
            batch_images = torch.where(mirror[:, None, None, None], batch_images.flip(-1), batch_images)
        decay = min(1.0, (image_params.steps - step) / max(image_params.steps - image_params.decay_start, 1))
        model.set_learning_rate_scale(decay, image_params.g_lr, image_params.d_lr)
        with stop_if_diverged(step + 1, last_checkpoint):
            losses = train_step(model, one_hot(dist.shard(batch_labels), space.num_classes).to(device),
                                dist.shard(batch_images).to(device), dist=dist, precision=precision,
                                feature_matching_weight=image_params.feature_matching_weight, perceptual=perceptual,
                                perceptual_weight=image_params.perceptual_weight)

        done = step + 1
        if done % image_params.checkpoint_every == 0 or done == image_params.steps:
            last_checkpoint = done
        if not dist.main:
            continue
        if done % image_params.log_every == 0 or done == image_params.steps:
            history.append({"step": done, **losses})
            progress.set_postfix(d=f"{losses['d_hinge']:.2f}", g=f"{losses['g_hinge']:.2f}")
            for name, value in losses.items():
                writer.add_scalar(f"image/{name}", value, done)
        if done % image_params.image_every == 0 and done < image_params.steps:
            writer.add_image("image/layout_real_generated", sample_grid(model, shown_labels, shown_images, colors),
                             done, dataformats="HWC")
        if done == last_checkpoint:
            resume_file.save({"model": model.state_dict(), "step": done, "history": history})
    if not dist.main:
        return
    grid = sample_grid(model, shown_labels, shown_images, colors)
    writer.add_image("image/layout_real_generated", grid, image_params.steps, dataformats="HWC")
    writer.close()

    count = min(image_params.eval_samples, len(val))
    metrics = evaluate_images(model, np.array(val.layouts[:count]), np.array(val.images[:count]), device=device)
    with atomic_output_dir(OUT) as folder:
        save_checkpoint(folder / "checkpoint.pt", {"model": model.state_dict(), "label_space": space.name})
        Image.fromarray(grid).save(folder / "samples.png")
    atomic_write_json(Path("metrics/image.json"), metrics)
    write_tsv(Path("metrics/image.tsv"), history)
    resume_file.complete()
    styles = " (SEAN: each image in its own styles)" if model.styled else ""
    print(f"image: class colour error {metrics['class_colour_error']:.1f} vs {metrics['shuffled_class_colour_error']:.1f} "
          f"from shuffled layouts (RGB distance of class-region means on {count} val pairs){styles}")


if __name__ == "__main__":
    run_stage(main)
