"""`demo@<name>` stages: pictures of what the synthesis chain does, in `outputs/demos/<name>/`.

    python -m stages.demo partial_editing | palette_interpolation | latent_interpolation

- `partial_editing`: val layouts with a vertical band redone by the completor: rows of real layout |
  band masked | generated layout | generated image (`grid.png`), and the band's requested and obtained
  proportions (`proportions.csv`).
- `palette_interpolation`: one noise, palettes on the line between two GMM samples;
- `latent_interpolation`: one GMM palette, noise on the line between two draws.
  Both write `frames.gif` (bar chart of requested vs obtained proportions, layout, image per frame),
  `frame.png` (the middle frame), `strip.png` (every frame's image) and `proportions.csv`.

    python -m stages.demo face_editing MODE       `face_editing@<mode>`, faces pipeline only

- `face_editing`: the authors' face edits (`image.face_editing`). A val face meeting the mode's
  precondition is edited from its own proportions s0 to the mode's s1 over `demo.frames` frames; the
  completor sees the whole real layout and is asked only for the additions (one noise for every frame),
  and SEAN renders each frame with the source face's styles, new parts styled from the style bank of
  `style@train`. Writes `outputs/demos/face_editing/<mode>/`: `frames.gif` (real layout | real image;
  generated layout | generated image; new content, kept pixels as a checkerboard | requested vs obtained
  added proportions), `frame.png` (the last frame) and `proportions.csv` (requested and obtained
  additions and keep share per frame).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from data.errors import InputError
from data.io import atomic_output_dir
from data.prepared import open_prepared_split
from image.demos import (bar_chart, coloured, column, completion_rows, enlarge, interpolate, interpolation_frames,
                         proportions_table, row, save_gif, save_png)
from image.face_editing import FACE_EDITS, edited_palette
from image.style import StyleBank
from image.train import to_model_images, to_uint8
from layout.layouts import one_hot
from layout.masking import band_masks, completion_inputs, region_proportions
from palette.gmm import PaletteGMM
from stages.common import load_synthesis_chain, resolve_device, run_stage
from stages.params import Params

DEMOS = ("partial_editing", "palette_interpolation", "latent_interpolation")
FACE_EDITING = "face_editing"  # its own stages, face_editing@<mode>: it needs the faces pipeline's style bank
GMM = Path("outputs/palette/gmm.npz")
STYLE_BANK = Path("outputs/style/train")


def check_params(params: Params, name: str) -> None:
    if name == FACE_EDITING:
        raise InputError("face_editing runs one stage per edit, face_editing@<mode>: list the modes in "
                         "demo.face_modes (faces pipeline), not in demo.names")
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
    frames, images, obtained = interpolation_frames(chain, requested, noise, names, colors, demo.scale)
    requested = requested.numpy()
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
    rows, labels = completion_rows(chain, real, region, int(rng.integers(2**31)), colors, demo.scale,
                                   soft_sigma=partial.soft_sigma, soft_mix=partial.soft_mix)
    save_png(folder / "grid.png", column(*rows))
    requested = region_proportions(one_hot(real, space.num_classes), region).numpy()
    obtained = region_proportions(one_hot(labels, space.num_classes), region).numpy()
    proportions_table(requested, obtained, names, index_name="sample").to_csv(folder / "proportions.csv", index=False)


def check_face_params(params: Params, mode: str) -> None:
    if params.data.dataset != "celeba" or params.image.model != "sean":
        raise InputError(f"face_editing needs the faces pipeline (data.dataset: celeba, image.model: sean, "
                         f"style.splits: [train]) but data.dataset = {params.data.dataset!r} and image.model = "
                         f"{params.image.model!r}; apply presets/toy-faces.yaml, or set demo.face_modes: []")
    if mode not in FACE_EDITS:
        raise InputError(f"unknown face edit {mode!r} in demo.face_modes; the modes are: {', '.join(FACE_EDITS)}")
    if params.demo.face_tries < 1:
        raise InputError(f"demo.face_tries = {params.demo.face_tries}; it must be at least 1")
    for key in ("frames", "scale", "fps"):
        if getattr(params.demo, key) < (2 if key == "frames" else 1):
            raise InputError(f"demo.{key} = {getattr(params.demo, key)} is too small")


def choose_face(mode: str, proportions: np.ndarray, class_names: list[str], tries: int, rng: np.random.Generator,
                sample_palette) -> tuple[int, np.ndarray]:
    """The first of up to `tries` val faces (in a seeded order) meeting the mode's precondition, and its
    edited palette s1. A bounded loop: the authors retried by recursion, with no end when no face fits."""
    order = rng.permutation(len(proportions))[:tries]
    for index in order:
        s1 = edited_palette(mode, proportions[index], class_names, sample_palette)
        if s1 is not None:
            return int(index), s1
    raise InputError(f"face_editing@{mode}: none of the {len(order)} val faces tried meets its precondition "
                     f"({FACE_EDITS[mode].precondition}, and no class taken below 0); drop {mode!r} from "
                     f"demo.face_modes, or raise demo.face_tries (the val split has {len(proportions)} faces)")


def load_style_bank(space) -> StyleBank:
    bank = StyleBank.load(STYLE_BANK)
    if bank.class_names != list(space.class_names):
        raise InputError(f"{STYLE_BANK} holds codes of {len(bank.class_names)} classes, not of {space.name}'s "
                         f"{space.num_classes}; re-run `dvc repro style@train`")
    return bank


def edit_face(chain, bank: StyleBank, val, index: int, s1: np.ndarray, mode: str, rng: np.random.Generator, *,
              frames: int, scale: int, soft_sigma: float, soft_mix: float
              ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Val face `index` edited from its own proportions to `s1` over `frames` frames. Returns the
    pictures (real layout | real image; generated layout | image; new content | requested vs obtained
    additions) and the requested and obtained additions and keep share per frame (frames×(C + 1))."""
    space = val.label_space
    names, colors, num_classes = list(space.class_names), np.asarray(space.colors, np.uint8), space.num_classes
    real = torch.from_numpy(np.array(val.layouts[index])).long()
    s0 = one_hot(real[None], num_classes).mean(dim=(2, 3))[0]
    device = next(chain.layout.parameters()).device

    # Every frame edits the same real layout with the same noise; only the requested palette moves.
    layouts = real[None].expand(frames, -1, -1)
    targets = interpolate(s0, torch.from_numpy(s1), frames).float()
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    noise = torch.randn(1, chain.layout.latent_dim, generator=generator).expand(frames, -1)
    labels, added = chain.add_content(layouts, targets, noise, soft_sigma=soft_sigma, soft_mix=soft_mix)
    nothing_masked = torch.zeros(layouts.shape, dtype=torch.bool)
    source = one_hot(layouts, num_classes)
    requested = completion_inputs(source, source, nothing_masked, "add", targets)[1].numpy()  # additions + keep
    obtained = one_hot(added, num_classes + 1).mean(dim=(2, 3)).numpy()

    # The source face's styles, pooled over the frame-0 layout, for the parts it has; the bank's for new
    # parts (the authors' force_mean_idx) and for parts the face lacks.
    sean = chain.image.generator
    real_image = np.array(val.images[index:index + 1])
    first = one_hot(labels[:1], num_classes).to(device)
    source_styles = sean.encode(to_model_images(real_image).to(device), first)[0].cpu()
    own = first[0].sum(dim=(1, 2)).cpu() > 0
    own[[names.index(name) for name in FACE_EDITS[mode].new_classes]] = False
    # New eyes look alike: both from one bank image (the authors meant to, but overwrote the choice).
    bank_styles = bank.random_styles(rng, together=((names.index("l_eye"), names.index("r_eye")),))
    styles = torch.where(own[:, None], source_styles, torch.from_numpy(bank_styles))
    torch.manual_seed(int(rng.integers(2**31)))  # SEAN draws fresh noise in every normalisation
    images = to_uint8(chain.render(labels, styles[None].expand(frames, -1, -1)))

    # The same bars in every frame: the classes most asked for or added, as many as the chart has room for.
    chart_height, chart_width = max(48, real.shape[0] * scale), max(40, real.shape[1] * scale)
    room = min(6, chart_width // 10)
    shown = np.argsort(-(requested[:, :num_classes].max(axis=0) + obtained[:, :num_classes].max(axis=0)))[:room]
    ceiling = max(0.02, 1.1 * max(requested[:, shown].max(), obtained[:, shown].max()))
    top = row(enlarge(coloured(real.numpy(), colors), scale), enlarge(real_image[0], scale))
    pictures = []
    for k in range(frames):
        new_content = added[k].numpy()
        kept = new_content == num_classes
        added_panel = enlarge(coloured(np.minimum(new_content, num_classes - 1), colors, unknown=kept), scale)
        chart = bar_chart(requested[k], obtained[k], names, colors, width=chart_width, height=chart_height,
                          classes=shown, ceiling=ceiling)
        generated = row(enlarge(coloured(labels[k].numpy(), colors), scale), enlarge(images[k], scale))
        pictures.append(column(top, generated, row(added_panel, chart)))
    return pictures, requested, obtained


def face_editing(params: Params, mode: str, folder: Path, device) -> None:
    demo, partial = params.demo, params.partial
    chain = load_synthesis_chain(params, "partial", device)
    val = open_prepared_split("outputs/prepared/val")
    bank = load_style_bank(val.label_space)
    names, num_classes = list(val.label_space.class_names), val.label_space.num_classes
    rng = np.random.default_rng([params.seed, len(DEMOS) + list(FACE_EDITS).index(mode)])
    proportions = one_hot(torch.from_numpy(np.array(val.layouts)).long(), num_classes).mean(dim=(2, 3)).numpy()
    gmm = PaletteGMM.load(GMM)
    index, s1 = choose_face(mode, proportions, names, demo.face_tries, rng, lambda: gmm.sample(1, rng)[0][0])
    pictures, requested, obtained = edit_face(chain, bank, val, index, s1, mode, rng, frames=demo.frames,
                                              scale=demo.scale, soft_sigma=partial.soft_sigma,
                                              soft_mix=partial.soft_mix)
    save_gif(folder / "frames.gif", pictures, demo.fps)
    save_png(folder / "frame.png", pictures[-1])
    proportions_table(requested, obtained, names + ["keep"]).to_csv(folder / "proportions.csv", index=False)
    wanted = [c for c in np.argsort(-requested[-1, :num_classes]) if requested[-1, c] > 0][:3]
    print(f"face_editing@{mode}: val face {val.manifest['samples'][index]['key']}; last frame adds "
          + (", ".join(f"{names[c]} {requested[-1, c]:.3f} asked, {obtained[-1, c]:.3f} obtained" for c in wanted)
             or "nothing")
          + f"; keep {requested[-1, num_classes]:.3f} asked, {obtained[-1, num_classes]:.3f} obtained")


def main(params: Params) -> None:
    name = (sys.argv[1:] or [""])[0]
    if name == FACE_EDITING and len(sys.argv) == 3:
        mode = sys.argv[2]
        check_face_params(params, mode)
        device = resolve_device(params.device)
        with atomic_output_dir(Path("outputs/demos") / FACE_EDITING / mode) as folder:
            face_editing(params, mode, folder, device)
        return
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
