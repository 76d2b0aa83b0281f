"""The synthesis chain: palette -> layout generator -> argmax layout -> image generator.

Built from a fine-tuning checkpoint (both networks fine-tuned together) or from the separately
trained layout and image checkpoints; both generators are in eval mode. A SEAN image generator needs
style codes: given ones, or codes pooled from `style_images` (real images, picked at random) over the
generated layout, as fine-tuning does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.io import load_checkpoint
from image.train import ImageModel, load_image_model
from layout.layouts import one_hot
from layout.networks import LayoutGenerator
from layout.train import NetworkConfig, build_generator, complete, generate, load_generator


@dataclass
class SynthesisChain:
    layout: LayoutGenerator
    level: int
    image: ImageModel
    style_images: torch.Tensor | None = None  # N×3×H×W in [-1, 1], for SEAN

    @classmethod
    def from_stages(cls, layout_checkpoint: str | Path, image_checkpoint: str | Path, device="cpu") -> "SynthesisChain":
        layout, level = load_generator(layout_checkpoint, device=device)
        return cls(layout, level, load_image_model(image_checkpoint, device))

    @classmethod
    def from_finetune(cls, checkpoint: str | Path, device="cpu") -> "SynthesisChain":
        state = load_checkpoint(Path(checkpoint), device)
        layout_state, image_state = state["model"]["layout"], state["model"]["image"]
        layout = build_generator(NetworkConfig(**layout_state["config"])).to(device)
        layout.load_state_dict(layout_state["ema"])
        return cls(layout.eval().requires_grad_(False), state["level"], ImageModel.from_state_dict(image_state, device))

    def __post_init__(self):
        self.image.generator.eval().requires_grad_(False)

    @torch.no_grad()
    def render(self, labels: torch.Tensor, styles: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        """Images (N×3×H×W in [-1, 1]) of label maps (N×H×W). SEAN takes N×C×S `styles`, or pools them
        from style images drawn with `seed`."""
        generator = self.image.generator
        layouts = one_hot(labels, self.image.config.num_classes).to(next(generator.parameters()).device)
        if not self.image.styled:
            return generator(layouts)
        if styles is None:
            if self.style_images is None:
                raise ValueError("a SEAN image generator needs style codes or style images")
            picked = torch.randint(len(self.style_images), (len(labels),), generator=torch.Generator().manual_seed(seed))
            styles = generator.encode(self.style_images[picked].to(layouts), layouts)
        return generator(layouts, styles.to(layouts))

    @torch.no_grad()
    def layouts(self, palettes: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Label maps (N×H×W) for given palettes (N×C) and noise (N×latent_dim), e.g. interpolated ones."""
        device = next(self.layout.parameters()).device
        return self.layout(noise.to(device), palettes.to(device), self.level)[-1].seg.argmax(1).cpu()

    @torch.no_grad()
    def sample(self, palettes: np.ndarray, seed: int, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """Label maps (N×H×W) for the palettes (noise from `seed`) and their images."""
        device = next(self.layout.parameters()).device
        labels = generate(self.layout, palettes, self.level, seed, "max", batch_size=batch_size, device=device).argmax(1)
        images = torch.cat([self.render(labels[start:start + batch_size], seed=seed + start)
                            for start in range(0, len(labels), batch_size)])
        return labels, images.cpu()

    @torch.no_grad()
    def complete(self, labels: torch.Tensor, region: torch.Tensor, seed: int, *, soft_sigma: float, soft_mix: float,
                 targets: torch.Tensor | None = None, batch_size: int = 32) -> torch.Tensor:
        """Label maps (N×H×W) with `region` (N×H×W bool) redone by the completor to its own content's
        proportions (partial editing of real layouts), or to `targets` (N×C, proportions of the region)."""
        device = next(self.layout.parameters()).device
        return complete(self.layout, self.level, one_hot(labels, self.layout.num_classes), region,
                        soft_sigma=soft_sigma, soft_mix=soft_mix, torch_rng=torch.Generator().manual_seed(seed),
                        batch_size=batch_size, device=device, targets=targets,
                        palette_mode="real" if targets is None else "region")

    @torch.no_grad()
    def add_content(self, labels: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor, *, soft_sigma: float,
                    soft_mix: float, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """The completor on whole real layouts (N×H×W), asked only for what the `targets` palettes (N×C)
        have in excess of each layout's own (the authors' face editing), with the given noise
        (N×latent_dim). Returns the label maps and the new content (the argmax of the completor's C + 1
        distribution: C where the input is kept)."""
        device = next(self.layout.parameters()).device
        nothing_masked = torch.zeros(labels.shape, dtype=torch.bool)
        return complete(self.layout, self.level, one_hot(labels, self.layout.num_classes), nothing_masked,
                        soft_sigma=soft_sigma, soft_mix=soft_mix, torch_rng=torch.Generator(), batch_size=batch_size,
                        device=device, palette_mode="add", targets=targets, noise=noise, with_added=True)
