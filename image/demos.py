"""What the demos are made of: interpolation paths, coloured layouts, palette bar charts, frames, GIFs
and the requested-versus-obtained proportions table. Drawing uses Pillow only."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from data.io import atomic_write_bytes
from image.train import to_uint8
from layout.layouts import one_hot

REQUESTED, OBTAINED = (90, 90, 90), (230, 120, 20)


def interpolate(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` points from `start` to `end` on a straight line; the first and last equal them exactly."""
    weights = torch.linspace(0, 1, steps, dtype=start.dtype).reshape(-1, *([1] * start.dim()))
    return start[None] * (1 - weights) + end[None] * weights


def coloured(labels: np.ndarray, colors: np.ndarray, unknown: np.ndarray | None = None) -> np.ndarray:
    """H×W label ids -> H×W×3 uint8; `unknown` pixels (a masked region) as a grey/white checkerboard."""
    image = colors[labels].astype(np.uint8)
    if unknown is not None:
        rows, columns = np.indices(labels.shape)
        checker = np.where(((rows // 2 + columns // 2) % 2)[..., None] == 0, 125, 255).astype(np.uint8)
        image = np.where(unknown[..., None], checker, image)
    return image


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def bar_chart(requested: np.ndarray, obtained: np.ndarray, names: list[str], colors: np.ndarray, *, width: int,
              height: int, top: int = 8, classes: np.ndarray | None = None, ceiling: float = 1.0) -> np.ndarray:
    """Requested (grey) and obtained (orange) proportions of the `top` classes most requested (or of
    `classes`, to keep the same bars in every frame), each pair labelled by a swatch of the class colour;
    the scale is shared by all frames (0 to `ceiling` is the height)."""
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    chosen = np.argsort(-requested)[:top] if classes is None else classes
    requested, obtained = np.minimum(requested / ceiling, 1), np.minimum(obtained / ceiling, 1)
    slot = width / len(chosen)
    base = height - 14
    for i, c in enumerate(chosen):
        left = i * slot + slot * 0.15
        bar = slot * 0.35
        for offset, value, fill in ((0, requested[c], REQUESTED), (bar, obtained[c], OBTAINED)):
            draw.rectangle([left + offset, base - value * (base - 4), left + offset + bar - 1, base], fill=fill)
        draw.rectangle([left, base + 3, left + 2 * bar - 1, height - 2], fill=tuple(int(v) for v in colors[c]))
        if slot >= 36:  # room for a short name
            draw.text((left, 0), names[c][:6], fill=(0, 0, 0))
    return np.asarray(canvas)


def row(*panels: np.ndarray, gap: int = 2) -> np.ndarray:
    """Panels side by side (padded to the tallest) with white gaps."""
    height = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, gap), (0, 0)), constant_values=255) for p in panels]
    return np.concatenate(padded, axis=1)[:, :-gap]


def column(*panels: np.ndarray, gap: int = 2) -> np.ndarray:
    width = max(p.shape[1] for p in panels)
    padded = [np.pad(p, ((0, gap), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
    return np.concatenate(padded, axis=0)[:-gap]


def save_png(path: Path, image: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def save_gif(path: Path, frames: list[np.ndarray], fps: int = 8) -> None:
    buffer = io.BytesIO()
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    atomic_write_bytes(path, buffer.getvalue())


def interpolation_frames(chain, requested: torch.Tensor, noise: torch.Tensor, names: list[str], colors: np.ndarray,
                         scale: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A frame per palette of `requested` (N×C) with its row of `noise` (N×latent_dim) through the
    synthesis chain: the bar chart of requested against obtained proportions above layout | image.
    Returns the frames, the images (N×H×W×3 uint8) and the obtained proportions (N×C)."""
    labels = chain.layouts(requested, noise)
    images = to_uint8(chain.render(labels))
    obtained = one_hot(labels, len(names)).mean(dim=(2, 3)).numpy()
    frames = []
    for k in range(len(labels)):
        pictures = row(enlarge(coloured(labels[k].numpy(), colors), scale), enlarge(images[k], scale))
        chart = bar_chart(requested[k].numpy(), obtained[k], names, colors, width=pictures.shape[1],
                          height=max(48, pictures.shape[0] // 2))
        frames.append(column(chart, pictures))
    return frames, images, obtained


def completion_rows(chain, real: torch.Tensor, region: torch.Tensor, seed: int, colors: np.ndarray, scale: int, *,
                    soft_sigma: float, soft_mix: float, targets: torch.Tensor | None = None
                    ) -> tuple[list[np.ndarray], torch.Tensor]:
    """Real layouts (N×H×W) with `region` (N×H×W bool) redone by the chain's completor, to the region's own
    content or to the `targets` proportions of the region (N×C). Returns a row per layout, real |
    region masked | completed layout | its image, and the completed label maps."""
    labels = chain.complete(real, region, seed, soft_sigma=soft_sigma, soft_mix=soft_mix, targets=targets)
    images = to_uint8(chain.render(labels))
    rows = [row(*[enlarge(panel, scale) for panel in (
        coloured(real[k].numpy(), colors), coloured(real[k].numpy(), colors, unknown=region[k].numpy()),
        coloured(labels[k].numpy(), colors), images[k])]) for k in range(len(real))]
    return rows, labels


def proportions_table(requested: np.ndarray, obtained: np.ndarray, names: list[str], index_name: str = "frame") -> pd.DataFrame:
    """Two rows per frame (or sample): the requested and the obtained proportion of every class."""
    rows = []
    for i, (asked, got) in enumerate(zip(requested, obtained)):
        rows.append({index_name: i, "palette": "requested", **dict(zip(names, map(float, asked)))})
        rows.append({index_name: i, "palette": "obtained", **dict(zip(names, map(float, got)))})
    return pd.DataFrame(rows)
