"""Training and evaluating the image synthesizer: one iteration is a generator step, then a critic step."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

import numpy as np

from data.io import load_checkpoint
from data.training import SINGLE, Distributed, autocast
from image.losses import (VGGPerceptualLoss, critic_hinge, feature_matching, generator_hinge, hinge_fake,
                         hinge_real)
from image.networks import MultiscaleDiscriminator, SEANGenerator, SPADEGenerator
from layout.layouts import one_hot


@dataclass(frozen=True)
class ImageNetworkConfig:
    num_classes: int
    height: int
    width: int
    base_channels: int  # the authors: 64
    num_upsamplings: int  # the authors: 6 at 128×256 (a 2×4 latent grid)
    spade_hidden: int  # the authors: 128
    critic_channels: int = 64
    critic_scales: int = 2
    model: str = "spade"  # spade | sean
    style_dim: int = 0  # sean only; the authors: 512
    middle_blocks: int = 0  # the authors: 0 for `more` (scenes), 1 for `normal` (faces)
    # Reproducing the authors' networks (set by the import of their checkpoints, stages.import_authors):
    resize: str = "nearest-exact"  # layout resizing in the generator; `nearest`: the authors' legacy rule
    regions: str = "argmax"  # sean: which pixels make a class region; `authors`: see image.networks.REGION_RULES
    encoder_channels: int = 0  # sean: the style encoder's first width, 0 = style_dim / 16; the authors: 32

    def __post_init__(self):
        if self.model not in ("spade", "sean"):
            raise ValueError(f"model = {self.model!r}; use spade or sean")


def build_image_generator(config: ImageNetworkConfig) -> SPADEGenerator:
    shape = dict(height=config.height, width=config.width, base_channels=config.base_channels,
                 num_upsamplings=config.num_upsamplings, spade_hidden=config.spade_hidden,
                 middle_blocks=config.middle_blocks, resize=config.resize)
    if config.model == "sean":
        return SEANGenerator(config.num_classes, style_dim=config.style_dim, encoder_channels=config.encoder_channels,
                             regions=config.regions, **shape)
    return SPADEGenerator(config.num_classes, **shape)


@dataclass
class ImageModel:
    config: ImageNetworkConfig
    generator: SPADEGenerator
    discriminator: MultiscaleDiscriminator
    g_optimizer: torch.optim.Adam
    d_optimizer: torch.optim.Adam

    @classmethod
    def create(cls, config: ImageNetworkConfig, *, g_lr: float = 1e-4, d_lr: float = 4e-4,
               betas: tuple[float, float] = (0.0, 0.9), device="cpu") -> "ImageModel":
        """Two time-scale learning rates as the authors: the critic learns 4× faster than the generator."""
        generator = build_image_generator(config).to(device)
        discriminator = MultiscaleDiscriminator(config.num_classes, scales=config.critic_scales,
                                                base_channels=config.critic_channels).to(device)
        return cls(config, generator, discriminator,
                   torch.optim.Adam(generator.parameters(), lr=g_lr, betas=betas),
                   torch.optim.Adam(discriminator.parameters(), lr=d_lr, betas=betas))

    @property
    def styled(self) -> bool:
        return isinstance(self.generator, SEANGenerator)

    def generate(self, layouts: torch.Tensor, reference_images: torch.Tensor) -> torch.Tensor:
        """Images for layouts; SEAN takes each region's style from the reference image (the real image
        of the layout in training), SPADE ignores it."""
        if self.styled:
            return self.generator(layouts, self.generator.encode(reference_images, layouts))
        return self.generator(layouts)

    def state_dict(self) -> dict:
        return {"config": dataclasses.asdict(self.config), "generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(), "g_optimizer": self.g_optimizer.state_dict(),
                "d_optimizer": self.d_optimizer.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict, device="cpu", **fresh_optimizers) -> "ImageModel":
        """The networks and optimizers a `state_dict()` saved, rebuilt from its config. Given `g_lr`,
        `d_lr` and `betas`, the networks only, with fresh optimizers at those rates."""
        model = cls.create(ImageNetworkConfig(**state["config"]), device=device, **fresh_optimizers)
        model.load_state_dict(state, optimizers=not fresh_optimizers)
        return model

    def load_state_dict(self, state: dict, *, optimizers: bool = True) -> None:
        for name in ("generator", "discriminator") + (("g_optimizer", "d_optimizer") if optimizers else ()):
            getattr(self, name).load_state_dict(state[name])

    def set_learning_rate_scale(self, scale: float, g_lr: float, d_lr: float) -> None:
        for optimizer, lr in ((self.g_optimizer, g_lr), (self.d_optimizer, d_lr)):
            for group in optimizer.param_groups:
                group["lr"] = lr * scale


def generator_losses(model: ImageModel, layouts: torch.Tensor, images: torch.Tensor, *,
                     feature_matching_weight: float = 10.0, perceptual: VGGPerceptualLoss | None = None,
                     perceptual_weight: float = 10.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Images generated from real layouts (with gradients) and the generator's terms against the paired
    real images: hinge, feature matching, and the perceptual loss when a VGG loss is given."""
    D = model.discriminator
    fake = model.generate(layouts, images)
    fake_scores = D(fake, layouts)
    with torch.no_grad():
        real_scores = D(images, layouts)
    losses = {"g_hinge": generator_hinge(fake_scores),
              "feature_matching": feature_matching_weight * feature_matching(fake_scores, real_scores)}
    if perceptual is not None:
        losses["perceptual"] = perceptual_weight * perceptual(fake, images)
    return fake, losses


def train_step(model: ImageModel, layouts: torch.Tensor, images: torch.Tensor, *, dist: Distributed = SINGLE,
               precision: str = "fp32", **loss_settings) -> dict[str, float]:
    """One generator step and one critic step on a batch of layouts (B×C×H×W) and images (B×3×H×W in
    [-1, 1]), this process's rows of the global batch under several processes; `loss_settings` go to
    `generator_losses`. The critic judges the fake made before the generator's update (as the authors)."""
    D = model.discriminator
    D.requires_grad_(False)
    with autocast(layouts.device, precision):
        fake, losses = generator_losses(model, layouts, images, **loss_settings)
    dist.check_finite(losses)
    model.g_optimizer.zero_grad(set_to_none=True)
    sum(losses.values()).backward()
    dist.average_gradients(model.generator)
    model.g_optimizer.step()

    D.requires_grad_(True)
    with autocast(layouts.device, precision):
        losses["d_hinge"] = critic_hinge(D(images, layouts), D(fake.detach(), layouts))
    dist.check_finite({"d_hinge": losses["d_hinge"]})
    model.d_optimizer.zero_grad(set_to_none=True)
    losses["d_hinge"].backward()
    dist.average_gradients(D)
    model.d_optimizer.step()
    return dist.mean({name: value.item() for name, value in losses.items()})


def load_image_model(path: str | Path, device="cpu") -> ImageModel:
    """The generator, critic and optimizer states of an `image` stage checkpoint."""
    return ImageModel.from_state_dict(load_checkpoint(Path(path), device)["model"], device)


def to_model_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 N×H×W×3 -> float N×3×H×W in [-1, 1]."""
    return torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def class_mean_colours(layouts: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean RGB of each class region (B×C×3) and which classes are present (B×C)."""
    counts = layouts.sum(dim=(2, 3))
    sums = torch.einsum("bchw,bkhw->bck", layouts, images)
    return sums / counts.clamp(min=1)[..., None], counts > 0


@torch.no_grad()
def evaluate_images(model: ImageModel, labels: np.ndarray, images: np.ndarray, *, batch_size: int = 32,
                    device="cpu") -> dict[str, float]:
    """On real (layout, image) pairs: the mean distance (RGB, 0-255) between each class region's mean
    colour in the real and the generated image, against the same for images generated from another
    image's layout (what a generator ignoring its layout would score), and the critic's hinge terms."""
    generator, critic = model.generator, model.discriminator
    generator.eval()
    num_classes = model.config.num_classes
    errors, shuffled_errors, real_hinge, fake_hinge = [], [], [], []
    labels_t = torch.as_tensor(np.asarray(labels)).long()
    for start in range(0, len(labels_t), batch_size):
        part = slice(start, start + batch_size)
        layouts = one_hot(labels_t[part], num_classes).to(device)
        other = one_hot(labels_t.roll(1, dims=0)[part], num_classes).to(device)
        real = to_model_images(images[part]).to(device)
        other_real = to_model_images(np.roll(images, 1, axis=0)[part]).to(device)
        fake, fake_other = model.generate(layouts, real), model.generate(other, other_real)
        real_colours, present = class_mean_colours(layouts, (real + 1) * 127.5)
        for generated, store in ((fake, errors), (fake_other, shuffled_errors)):
            colours, _ = class_mean_colours(layouts, (generated + 1) * 127.5)
            store.append((colours - real_colours).norm(dim=2)[present])
        real_hinge.append(hinge_real(critic(real, layouts)))
        fake_hinge.append(hinge_fake(critic(fake, layouts)))
    generator.train()
    return {"class_colour_error": torch.cat(errors).mean().item(),
            "shuffled_class_colour_error": torch.cat(shuffled_errors).mean().item(),
            "critic_real_hinge": torch.stack(real_hinge).mean().item(),
            "critic_fake_hinge": torch.stack(fake_hinge).mean().item()}
