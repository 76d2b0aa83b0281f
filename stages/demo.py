"""`demo@<name>` stages: pictures of what the synthesis chain does, in `outputs/demos/<name>/`.

    python -m stages.demo partial_editing | palette_interpolation | latent_interpolation

- `partial_editing`: val layouts with a vertical band redone by the completor: rows of real layout |
  band masked | generated layout | generated image (`grid.png`), and the band's requested and obtained
  proportions (`proportions.csv`).
- `palette_interpolation`: one noise, palettes on the line between two GMM samples;
- `latent_interpolation`: one GMM palette, noise on the line between two draws.
  Both write `frames.gif` (bar chart of requested vs obtained proportions, layout, image per frame),
  `frame.png` (the middle frame), `strip.png` (every frame's image) and `proportions.csv`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from data.errors import InputError
from data.io import atomic_output_dir
from data.prepared import open_prepared_split
from image.demos import bar_chart, coloured, column, enlarge, interpolate, proportions_table, row, save_gif, save_png
from image.train import to_uint8
from layout.layouts import one_hot
from layout.masking import band_masks, region_proportions
from palette.gmm import PaletteGMM
from stages.common import load_synthesis_chain, resolve_device, run_stage
from stages.params import Params

DEMOS = ("partial_editing", "palette_interpolation", "latent_interpolation")
GMM = Path("outputs/palette/gmm.npz")


def check_params(params: Params, name: str) -> None:
    if name not in DEMOS:
        raise InputError(f"unknown demo {name!r}; demo.names can list: {', '.join(DEMOS)}")
    for key in ("frames", "samples", "scale", "fps"):
        if getattr(params.demo, key) < (2 if key == "frames" else 1):
            raise InputError(f"demo.{key} = {getattr(params.demo, key)} is too small")


def interpolation(params: Params, name: str, folder: Path, device) -> None:
    demo, chain = params.demo, load_synthesis_chain(params, "layout", device)
    space = open_prepared_split("outputs/prepared/train").label_space
    names, colors = list(space.class_names), np.asarray(space.colors, np.uint8)
    rng = np.random.default_rng([params.seed, DEMOS.index(name)])
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    palettes = torch.from_numpy(PaletteGMM.load(GMM).sample(2, rng)[0])
    noise = torch.randn(2, chain.layout.latent_dim, generator=generator)
    if name == "palette_interpolation":
        requested = interpolate(palettes[0], palettes[1], demo.frames)
        noise = noise[:1].expand(demo.frames, -1)
    else:
        requested = palettes[:1].expand(demo.frames, -1)
        noise = interpolate(noise[0], noise[1], demo.frames)
    labels = chain.layouts(requested, noise)
    images = to_uint8(chain.render(labels))
    obtained = one_hot(labels, space.num_classes).mean(dim=(2, 3)).numpy()
    requested = requested.numpy()
    frames = []
    for k in range(demo.frames):
        pictures = row(enlarge(coloured(labels[k].numpy(), colors), demo.scale), enlarge(images[k], demo.scale))
        chart = bar_chart(requested[k], obtained[k], names, colors, width=pictures.shape[1],
                          height=max(48, pictures.shape[0] // 2))
        frames.append(column(chart, pictures))
    save_gif(folder / "frames.gif", frames, demo.fps)
    save_png(folder / "frame.png", frames[demo.frames // 2])
    save_png(folder / "strip.png", row(*[enlarge(image, max(1, demo.scale // 2)) for image in images]))
    proportions_table(requested, obtained, names).to_csv(folder / "proportions.csv", index=False)


def partial_editing(params: Params, folder: Path, device) -> None:
    demo, partial = params.demo, params.partial
    chain = load_synthesis_chain(params, "partial", device)
    val = open_prepared_split("outputs/prepared/val")
    space = val.label_space
    names, colors = list(space.class_names), np.asarray(space.colors, np.uint8)
    rng = np.random.default_rng([params.seed, DEMOS.index("partial_editing")])
    real = torch.from_numpy(np.array(val.layouts[:demo.samples])).long()
    region = torch.from_numpy(band_masks(len(real), *real.shape[1:], partial.min_band_fraction, rng))
    labels = chain.complete(real, region, int(rng.integers(2**31)), soft_sigma=partial.soft_sigma,
                            soft_mix=partial.soft_mix)
    images = to_uint8(chain.render(labels))
    rows = [row(*[enlarge(panel, demo.scale) for panel in (
        coloured(real[k].numpy(), colors), coloured(real[k].numpy(), colors, unknown=region[k].numpy()),
        coloured(labels[k].numpy(), colors), images[k])]) for k in range(len(real))]
    save_png(folder / "grid.png", column(*rows))
    requested = region_proportions(one_hot(real, space.num_classes), region).numpy()
    obtained = region_proportions(one_hot(labels, space.num_classes), region).numpy()
    proportions_table(requested, obtained, names, index_name="sample").to_csv(folder / "proportions.csv", index=False)


def main(params: Params) -> None:
    name = (sys.argv[1:] or [""])[0]
    check_params(params, name)
    device = resolve_device(params.device)
    with atomic_output_dir(Path("outputs/demos") / name) as folder:
        if name == "partial_editing":
            partial_editing(params, folder, device)
        else:
            interpolation(params, name, folder, device)
    print(f"demo@{name}: outputs/demos/{name}/")


if __name__ == "__main__":
    run_stage(main)
