"""Two steps of every trainer on tiny networks, run as one process (`python tests/distributed_steps.py OUT`)
or under `torchrun --nproc-per-node N`; each process saves every trained network's weights and buffers
to OUT/<trainer>_<rank>.pt. test_distributed.py compares the files."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from data.training import Distributed, start_processes, stop_processes
from image.finetune import FinetuneModel, FinetuneSettings, finetune_step
from image.train import ImageModel, ImageNetworkConfig, to_model_images, train_step
from layout.layouts import one_hot
from layout.train import CompletionTask, GenerationTask, LayoutModel, NetworkConfig, TrainConfig, sample_batch, train_level
from segment.data import RealPairs
from segment.model import build_segmenter
from segment.train import SegmentConfig, make_optimizer, train_segmenter

CLASSES, LATENT, BATCH, STEPS = 5, 8, 4, 2
LAYOUT_CONFIG = TrainConfig(steps=1, batch_size=BATCH, lr=1e-3, beta1=0.0, beta2=0.99, gp_weight=10.0, ema_decay=0.9,
                            loss_terms=("entropy", "spread", "inter"), loss_weights={"entropy": 1.0, "spread": 1.0},
                            soft_sigma=0.7, soft_mix=0.5, flip=True, seed=0, log_every=1, image_every=1,
                            checkpoint_every=1)


def data(height: int = 16, width: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, (8, height, width)).astype(np.uint8)
    labels[:, height // 2:] = 0
    return labels, rng.integers(0, 256, (8, height, width, 3)).astype(np.uint8)


def palettes(count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.dirichlet(np.ones(CLASSES), count).astype(np.float32)


def proportional_steps(*optimizers: torch.optim.Adam) -> None:
    """Adam's first steps are about lr·sign(gradient), which turns rounding noise in near-zero gradients
    into ±lr; a large epsilon makes the step proportional to the gradient, so weights compare closely."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["eps"] = 1.0


def tiny_layout_model(completor: bool) -> LayoutModel:
    torch.manual_seed(0)
    config = NetworkConfig(CLASSES, LATENT, 2, 3, 32, 8, "standard", completor=completor, spade_hidden=4)
    model = LayoutModel.create(config, 1e-3, (0.0, 0.99))
    proportional_steps(model.g_optimizer, model.d_optimizer)
    return model


def tiny_image_model(model: str = "spade") -> ImageModel:
    torch.manual_seed(0)
    model = ImageModel.create(ImageNetworkConfig(CLASSES, 16, 32, 4, 2, 4, critic_channels=4, model=model,
                                                 style_dim=16 if model == "sean" else 0))
    proportional_steps(model.g_optimizer, model.d_optimizer)
    return model


def layout(dist: Distributed, completor: bool, precision: str = "fp32") -> dict:
    model = tiny_layout_model(completor)
    dist.prepare(model.generator, model.discriminator)
    task = CompletionTask() if completor else GenerationTask()
    train_level(model, 2, data()[0], palettes, LAYOUT_CONFIG, task=task, dist=dist, precision=precision)  # fade, stabilise
    return {"generator": model.generator.state_dict(), "critic": model.discriminator.state_dict()}


def image(dist: Distributed, kind: str, precision: str = "fp32") -> dict:
    model = tiny_image_model(kind)
    for name, parameter in model.generator.named_parameters():
        if name.endswith("noise_scale"):  # zero at the start: SEAN's noise, drawn per process, stays out
            parameter.requires_grad_(False)
    dist.prepare(model.generator, model.discriminator)
    labels, images = data()
    for step in range(STEPS):
        rows = torch.from_numpy(np.random.default_rng(step).integers(0, len(labels), BATCH))
        batch_labels = one_hot(torch.from_numpy(labels).long()[rows], CLASSES)
        train_step(model, dist.shard(batch_labels), dist.shard(to_model_images(images)[rows]), dist=dist,
                   precision=precision)
    return {"generator": model.generator.state_dict(), "critic": model.discriminator.state_dict()}


def finetune(dist: Distributed, precision: str = "fp32") -> dict:
    torch.manual_seed(0)
    model = FinetuneModel.create(tiny_layout_model(False), tiny_image_model(), d_lr=4e-4, betas=(0.0, 0.9))
    proportional_steps(model.image_critic_optimizer)
    dist.prepare(model.layout.generator, model.layout.discriminator, model.image.generator,
                 model.image.discriminator, model.image_critic)
    labels, images = data()
    for step in range(STEPS):
        rng = np.random.default_rng(step)
        torch_rng = torch.Generator().manual_seed(step)
        _, batch, z, batch_images = sample_batch(torch.from_numpy(labels), palettes, GenerationTask(), LAYOUT_CONFIG,
                                                 CLASSES, LATENT, rng, torch_rng, "cpu",
                                                 images=to_model_images(images), dist=dist)
        finetune_step(model, 2, batch, z, batch_images, LAYOUT_CONFIG, FinetuneSettings(), torch_rng, dist=dist,
                      precision=precision)
    return {"layout": model.layout.generator.state_dict(), "image": model.image.generator.state_dict(),
            "image_critic": model.image_critic.state_dict()}


def segment(dist: Distributed, precision: str = "fp32") -> dict:
    torch.manual_seed(0)
    model = build_segmenter("mobilenet_v3_large", CLASSES)
    for layer in model.modules():  # each process draws its own dropout masks
        if isinstance(layer, torch.nn.Dropout):
            layer.p = 0.0
    config = SegmentConfig(steps=STEPS, batch_size=BATCH, lr=0.01, momentum=0.9, weight_decay=5e-4, poly_power=0.9,
                           aux_weight=0.4, seed=0, log_every=1, eval_every=100, checkpoint_every=100)
    optimizer = make_optimizer(model, config)
    dist.prepare(model)
    labels, images = data(32, 32)
    train_segmenter(model, optimizer, {"real": RealPairs(labels, images)}, config, evaluate=lambda step: None,
                    dist=dist, precision=precision)
    return {"segmenter": model.state_dict()}


TRAINERS = {  # name -> f(dist, precision="fp32") -> the trained networks' states
    "layout": lambda dist, precision="fp32": layout(dist, False, precision),
    "partial": lambda dist, precision="fp32": layout(dist, True, precision),
    "spade": lambda dist, precision="fp32": image(dist, "spade", precision),
    "sean": lambda dist, precision="fp32": image(dist, "sean", precision),
    "finetune": finetune,
    "segment": segment,
}


def main(out: Path, names: list[str]) -> None:
    torch.set_num_threads(1)
    dist, _ = start_processes(torch.device("cpu"))
    try:
        for name in names or TRAINERS:
            torch.save(TRAINERS[name](dist), out / f"{name}_{dist.rank}.pt")
    finally:
        stop_processes()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
