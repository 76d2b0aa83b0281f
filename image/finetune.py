"""End-to-end fine-tuning of a layout synthesizer (full generator or completor) with the image synthesizer.

Soft generated layouts flow into the image generator with gradients; an unconditional image critic
(D2) judges the images made from them against real images, and that term, weighted by `d2_weight`
(0.01 as the authors), is the layout generator's only signal from the images. Images from real layouts
keep the conditional critic, feature matching and the perceptual loss. Unlike the authors', D2's own
loss is not scaled by `d2_weight` (their scaling only slowed D2 until Adam cancelled it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data.training import SINGLE, Distributed, autocast
from image.fidelity import ImageFeatures, fid, to_uint8_chw
from image.losses import VGGPerceptualLoss, critic_hinge, generator_hinge
from image.networks import MultiscaleDiscriminator
from image.train import (ImageModel, class_mean_colours, evaluate_images,
                         generator_losses as image_generator_losses, to_model_images)
from layout.layouts import discretize, one_hot
from layout.train import (Batch, CompletionTask, GenerationTask, LayoutModel, TrainConfig, complete,
                          critic_loss as layout_critic_loss, evaluate_completion, evaluate_proportions, generate,
                          generator_losses as layout_generator_losses)

DISCRETIZATIONS = ("none", "max")


@dataclass(frozen=True)
class FinetuneSettings:
    d2_weight: float = 0.01
    freeze_layout: bool = False  # the layout generator only feeds the image generator (an ablation)
    discretization: str = "none"  # none: soft layouts (the authors); max: straight-through one-hot
    feature_matching_weight: float = 10.0
    perceptual_weight: float = 10.0

    def __post_init__(self):
        if self.discretization not in DISCRETIZATIONS:
            raise ValueError(f"discretization = {self.discretization!r}; use one of {DISCRETIZATIONS}")


@dataclass
class FinetuneModel:
    layout: LayoutModel
    image: ImageModel
    image_critic: MultiscaleDiscriminator  # D2: images only
    image_critic_optimizer: torch.optim.Adam

    @classmethod
    def create(cls, layout: LayoutModel, image: ImageModel, *, d_lr: float, betas: tuple[float, float],
               device="cpu") -> "FinetuneModel":
        config = image.config
        critic = MultiscaleDiscriminator(0, scales=config.critic_scales, base_channels=config.critic_channels).to(device)
        return cls(layout, image, critic, torch.optim.Adam(critic.parameters(), lr=d_lr, betas=betas))

    @classmethod
    def from_trained(cls, layout_state: dict, image_state: dict, *, layout_lr: float,
                     layout_betas: tuple[float, float], g_lr: float, d_lr: float, image_betas: tuple[float, float],
                     device="cpu") -> "FinetuneModel":
        """The networks of a layout level and of the image stage, with every optimizer fresh at its
        configured rate, as the authors (no optimizer state is carried over: the image stage's decayed
        rates and moments would make fine-tuning start where that schedule ended)."""
        layout = LayoutModel.from_state_dict(layout_state, layout_lr, layout_betas, device, optimizers=False)
        image = ImageModel.from_state_dict(image_state, device, g_lr=g_lr, d_lr=d_lr, betas=image_betas)
        return cls.create(layout, image, d_lr=d_lr, betas=image_betas, device=device)

    def state_dict(self) -> dict:
        return {"layout": self.layout.state_dict(), "image": self.image.state_dict(),
                "image_critic": self.image_critic.state_dict(),
                "image_critic_optimizer": self.image_critic_optimizer.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict, *, layout_lr: float, layout_betas: tuple[float, float],
                        device="cpu") -> "FinetuneModel":
        """A saved fine-tuning state; the layout optimizers take `layout_lr`, the others keep theirs."""
        layout = LayoutModel.from_state_dict(state["layout"], layout_lr, layout_betas, device)
        image = ImageModel.from_state_dict(state["image"], device)
        model = cls.create(layout, image, d_lr=0.0, betas=(0.0, 0.0), device=device)
        model.image_critic.load_state_dict(state["image_critic"])
        model.image_critic_optimizer.load_state_dict(state["image_critic_optimizer"])
        return model


def finetune_step(model: FinetuneModel, level: int, batch: Batch, z: torch.Tensor, images: torch.Tensor,
                  layout_config: TrainConfig, settings: FinetuneSettings, torch_rng: torch.Generator,
                  perceptual: VGGPerceptualLoss | None = None, *, dist: Distributed = SINGLE,
                  precision: str = "fp32") -> dict[str, float]:
    """One step of both generators, then one of the three critics, on a batch of real layouts (`batch`)
    and their images (B×3×H×W in [-1, 1]), this process's rows under several processes; the critics
    judge the fakes made before the update."""
    layout, image, d2 = model.layout, model.image, model.image_critic
    critics = (layout.discriminator, image.discriminator, d2)
    train_layout = not settings.freeze_layout
    layout.generator.train(train_layout)

    for critic in critics:
        critic.requires_grad_(False)
    losses = {}
    with autocast(images.device, precision):
        with torch.set_grad_enabled(train_layout):
            fake_layouts, adversarial, regularizers, _ = layout_generator_losses(layout, batch, z, level, None, layout_config)
        if train_layout:
            losses.update(layout_adversarial=adversarial, layout_regularization=regularizers)
        images_from_fake = image.generate(discretize(fake_layouts.float(), settings.discretization), images)
        losses["d2_g_hinge"] = settings.d2_weight * generator_hinge(d2(images_from_fake))
        images_from_real, image_losses = image_generator_losses(
            image, batch.real, images, feature_matching_weight=settings.feature_matching_weight, perceptual=perceptual,
            perceptual_weight=settings.perceptual_weight)
        losses.update(image_losses)
    dist.check_finite(losses)
    optimizers = [image.g_optimizer] + ([layout.g_optimizer] if train_layout else [])
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    sum(losses.values()).backward()
    dist.average_gradients(image.generator, layout.generator)
    for optimizer in optimizers:
        optimizer.step()
    if train_layout:
        layout.update_ema(layout_config.ema_decay)

    for critic in critics:
        critic.requires_grad_(True)
    with autocast(images.device, precision):
        critic_losses = {
            "d_hinge": critic_hinge(image.discriminator(images, batch.real),
                                    image.discriminator(images_from_real.detach(), batch.real)),
            "d2_hinge": critic_hinge(d2(images), d2(images_from_fake.detach())),
        }
    optimizers = [image.d_optimizer, model.image_critic_optimizer]
    if train_layout:
        critic_losses["layout_critic"] = layout_critic_loss(layout, batch, fake_layouts.detach().float(), level, None,
                                                            layout_config.gp_weight, torch_rng, dist, precision)[0]
        optimizers.append(layout.d_optimizer)
    dist.check_finite(critic_losses)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    sum(critic_losses.values()).backward()
    dist.average_gradients(*critics)
    for optimizer in optimizers:
        optimizer.step()
    return dist.mean({name: value.item() for name, value in {**losses, **critic_losses}.items()})


def dataset_class_colours(labels: np.ndarray, images: np.ndarray, num_classes: int) -> torch.Tensor:
    """C×3: the mean RGB (0-255) of every class's pixels over a set of real pairs."""
    layouts = one_hot(torch.from_numpy(np.asarray(labels)), num_classes)
    sums = torch.einsum("bchw,bkhw->ck", layouts, (to_model_images(images) + 1) * 127.5)
    return sums / layouts.sum(dim=(0, 2, 3)).clamp(min=1)[:, None]


def class_colour_distance(labels: torch.Tensor, images: torch.Tensor, class_colours: torch.Tensor) -> float:
    """Mean RGB distance between each class region's mean colour and that class's dataset colour."""
    colours, present = class_mean_colours(one_hot(labels, len(class_colours)), (images + 1) * 127.5)
    return (colours - class_colours.to(colours)).norm(dim=2)[present].mean().item()


@torch.no_grad()
def evaluate_finetune(model: FinetuneModel, task: GenerationTask | CompletionTask, level: int, labels: np.ndarray,
                      images: np.ndarray, palettes: np.ndarray, *, soft_sigma: float, soft_mix: float, seed: int,
                      features: ImageFeatures | None = None, real_features: torch.Tensor | None = None,
                      device="cpu") -> dict[str, float]:
    """On real val pairs: the layout proportion error (full generator: argmax layouts for GMM `palettes`;
    completor: bands of the val layouts redone to their own content), and the offline image figures:
    the class colour error of images from real layouts, and for images from generated layouts, how far
    each class region's mean colour lies from the class's val colour, next to the same for real images.
    With an Inception feature extractor and the real images' features, also the FID of images from
    generated layouts and of images from the real layouts."""
    ema, image = model.layout.ema, model.image
    num_classes = model.layout.config.num_classes
    labels_t = torch.from_numpy(np.asarray(labels)).long()
    if isinstance(task, CompletionTask):
        layout_metrics = evaluate_completion({"ema": ema}, level, labels, task, soft_sigma=soft_sigma,
                                             soft_mix=soft_mix, seed=seed, device=device)
        proportion_error = layout_metrics["ema_band_tmae"]
        region = task.regions(labels_t, np.random.default_rng([seed, 2**31 - 3]))
        generated = complete(ema, level, one_hot(labels_t, num_classes), region, soft_sigma=soft_sigma,
                             soft_mix=soft_mix, torch_rng=torch.Generator().manual_seed(seed), device=device)
    else:
        layout_metrics = evaluate_proportions({"ema": ema}, level, palettes, labels, seed, device=device)
        proportion_error = layout_metrics["ema_tmae"]
        generated = generate(ema, palettes, level, seed, "max", device=device).argmax(1)
    real_images = to_model_images(images)
    references = real_images[torch.arange(len(generated)) % len(real_images)]
    image.generator.eval()
    from_generated = image.generate(one_hot(generated, num_classes).to(device), references.to(device)).cpu()
    image.generator.train()
    class_colours = dataset_class_colours(labels, images, num_classes)
    image_metrics = evaluate_images(image, labels, images, device=device)
    row = {"layout_tmae": proportion_error,
           "real_layout_colour_error": image_metrics["class_colour_error"],
           "generated_layout_colour_distance": class_colour_distance(generated, from_generated, class_colours),
           "real_colour_distance": class_colour_distance(labels_t, real_images, class_colours)}
    if features is not None:
        image.generator.eval()
        from_real = image.generate(one_hot(labels_t, num_classes).to(device), real_images.to(device)).cpu()
        image.generator.train()
        row["fid_generated_layouts"] = fid(real_features, features(to_uint8_chw(from_generated)))
        row["fid_real_layouts"] = fid(real_features, features(to_uint8_chw(from_real)))
    return row
