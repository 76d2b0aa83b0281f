"""The palette studio: a local web app (Gradio) over the pipeline's trained synthesis chain.

    semantic-palette serve [--host 127.0.0.1] [--port 7860]

Tabs, each also an endpoint of the app's HTTP API (the `api_name` below):
- Compose (`/compose`): a palette by class name (the command line's syntax; the sliders write it), the
  rest filled from the GMM or with zeros; each scene's layout and image, the requested against the
  obtained proportions, and the evaluation's error figures (MAE, TMAE).
- Edit (`/edit`): a val layout or an uploaded label-id PNG, a vertical band or some classes redone by
  the completor, to the region's own content or to a palette for the region.
- Interpolate (`/interpolate`): frames on the line between two palettes (typed, or drawn from the GMM)
  with one noise, and their GIF.
- Faces (`/faces`, the faces pipeline only): the authors' face edits on a chosen val face.

The networks are loaded once, when the app starts. Requests carry values, never paths: an upload is the
file Gradio received, checked to be a label-id PNG of the working resolution and label space.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data.errors import InputError
from data.io import read_image_file
from data.prepared import PreparedSplit, open_prepared_split
from image.chain import SynthesisChain
from image.demos import bar_chart, coloured, completion_rows, enlarge, interpolate, interpolation_frames, row, save_gif
from image.face_editing import FACE_EDITS, edited_palette
from image.style import StyleBank
from layout.layouts import one_hot
from layout.masking import class_masks, region_proportions
from palette.metrics import proportion_errors
from stages.common import load_synthesis_chain
from stages.demo import edit_face, load_style_bank
from stages.generate import Workspace, palettes_from_text

# Set before Gradio is imported, which reads it: the studio sends nothing anywhere.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

VAL = Path("outputs/prepared/val")
MAX_SCENES, MAX_FRAMES = 16, 32
DISPLAY_WIDTH = 256  # pixels a layout or image is enlarged to, at least


@dataclass
class Studio:
    """The app's work, one method per tab, on the networks loaded once."""
    workspace: Workspace
    completor: SynthesisChain
    val: PreparedSplit
    style_bank: StyleBank | None = None  # the faces pipeline's, for the Faces tab

    @classmethod
    def load(cls) -> "Studio":
        workspace = Workspace.load("layout")
        completor = load_synthesis_chain(workspace.params, "partial", workspace.device)
        if not (VAL / "manifest.json").is_file():
            raise InputError(f"{VAL} not found; run `dvc repro prepare`")
        val = open_prepared_split(VAL)
        params = workspace.params
        faces = params.data.dataset == "celeba" and params.image.model == "sean"
        return cls(workspace, completor, val, load_style_bank(val.label_space) if faces else None)

    @property
    def names(self) -> list[str]:
        return list(self.workspace.space.class_names)

    @property
    def colors(self) -> np.ndarray:
        return np.asarray(self.workspace.space.colors, np.uint8)

    @property
    def scale(self) -> int:
        return max(1, -(-DISPLAY_WIDTH // self.val.layouts.shape[2]))

    def classes_by_weight(self) -> list[str]:
        """Class names, the ones the GMM gives most weight (mean proportion) first."""
        gmm = self.workspace.gmm
        return [self.names[c] for c in np.argsort(-(gmm.weights @ gmm.means), kind="stable")]

    def compose(self, palette: str, fill: str, seed: int, count: int):
        """`count` scenes of the palette: [(layout | image, caption)], the bar chart of the mean requested
        against obtained proportions, their table (classes asked for or obtained) and the error figures."""
        count, seed = checked_int(count, "count", 1, MAX_SCENES), checked_int(seed, "seed", 0, 2**31 - 1)
        requested = palettes_from_text(palette, fill, count, self.workspace.space, self.workspace.gmm,
                                       np.random.default_rng(seed))
        labels, images, obtained = self.workspace.generate(requested, seed)
        scenes = [(row(enlarge(coloured(label, self.colors), self.scale), enlarge(image, self.scale)), f"scene {k}")
                  for k, (label, image) in enumerate(zip(labels, images))]
        asked, got = requested.mean(axis=0), obtained.mean(axis=0)
        chart = bar_chart(asked, got, self.names, self.colors, width=640, height=200, top=10)
        table = proportions_frame(asked, got, self.names)
        errors = proportion_errors(requested, obtained)
        figures = (f"MAE {errors['mae']:.4f} · TMAE {errors['tmae']:.4f} over {count} scenes (the evaluation's "
                   f"proportion errors; requested and obtained are means over the scenes)")
        return scenes, chart, table, figures

    def edit(self, layout_index: int, upload: str | None, region: str, band_start: float, band_width: float,
             classes: list[str], palette: str, seed: int):
        """A layout (val `layout_index`, or the uploaded PNG) with a region redone: returns the row real |
        masked | completed | image, and the region's requested and obtained proportions."""
        seed = checked_int(seed, "seed", 0, 2**31 - 1)
        labels = self.uploaded_layout(upload) if upload else self.val_layout(layout_index)
        mask = self.region(labels, region, band_start, band_width, classes)
        space = self.workspace.space
        real, mask = torch.from_numpy(labels).long()[None], torch.from_numpy(mask)[None]
        targets = None
        if palette.strip():
            targets = torch.from_numpy(palettes_from_text(palette, "zero", 1, space, self.workspace.gmm,
                                                          np.random.default_rng(seed)))
        rows, completed = completion_rows(self.completor, real, mask, seed, self.colors, self.scale,
                                          soft_sigma=self.workspace.params.partial.soft_sigma,
                                          soft_mix=self.workspace.params.partial.soft_mix, targets=targets)
        before = region_proportions(one_hot(real, space.num_classes), mask)[0].numpy()
        asked = before if targets is None else targets[0].numpy()
        got = region_proportions(one_hot(completed, space.num_classes), mask)[0].numpy()
        return rows[0], proportions_frame(asked, got, self.names)

    def val_layout(self, index: int) -> np.ndarray:
        index = checked_int(index, "val layout", 0, len(self.val) - 1)
        return np.array(self.val.layouts[index])

    def uploaded_layout(self, path: str) -> np.ndarray:
        """The label ids of an uploaded PNG: one channel (L or P mode, ids as stored, as the datasets'
        labelIds files), the working resolution, ids of the label space."""
        height, width = self.val.layouts.shape[1:]
        space = self.workspace.space
        name = Path(path).name
        wanted = (f"upload a label-id PNG (one channel of {space.name} ids, as `semantic-palette generate` "
                  f"writes in <k>_labels.png)")
        image = read_image_file(Path(path))
        if Path(path).read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise InputError(f"{name} is not a PNG file; {wanted}")
        if image.mode not in ("L", "P", "I", "I;16"):
            raise InputError(f"{name} is an image in mode {image.mode}, not one channel of ids; {wanted}")
        if image.size != (width, height):
            raise InputError(f"{name} is {image.height}x{image.width}; the chain works at {height}x{width} "
                             f"(data.height x data.width)")
        labels = np.asarray(image, np.int64)
        if labels.max() >= space.num_classes:
            raise InputError(f"{name} has label id {labels.max()}, outside the {space.name} label space (ids 0.."
                             f"{space.num_classes - 1})")
        return labels.astype(np.uint8)

    def region(self, labels: np.ndarray, region: str, band_start: float, band_width: float,
               classes: list[str]) -> np.ndarray:
        """The pixels to redo: the columns of a vertical band (start and width as fractions of the width),
        or the pixels of the named classes."""
        if region == "band":
            width = labels.shape[1]
            if not (0 <= band_start < 1 and 0 < band_width <= 1):
                raise InputError(f"band start {band_start} and width {band_width}: the start must lie in [0, 1) "
                                 f"and the width in (0, 1], as fractions of the layout's width")
            first = min(int(round(band_start * width)), width - 1)
            columns = np.arange(width)
            mask = (columns >= first) & (columns < first + max(1, int(round(band_width * width))))
            return np.repeat(mask[None], labels.shape[0], axis=0)
        if region == "classes":
            unknown = [name for name in classes if name not in self.names]
            if not classes or unknown:
                raise InputError(f"classes to redo: {', '.join(unknown) or 'none given'}; pick classes of "
                                 f"{self.workspace.space.name}")
            mask = class_masks(labels, [self.names.index(name) for name in classes])
            if not mask.any():
                raise InputError(f"the layout has no pixel of {', '.join(classes)}; pick classes it shows")
            return mask
        raise InputError(f"region {region!r} is unknown; use band or classes")

    def interpolation(self, start: str, end: str, frames: int, seed: int) -> tuple[list[np.ndarray], str]:
        """Frames from the `start` palette to the `end` one (an empty one is drawn from the GMM; the
        classes a typed one leaves out are filled from the GMM), one noise for all; and their GIF's path."""
        frames, seed = checked_int(frames, "frames", 2, MAX_FRAMES), checked_int(seed, "seed", 0, 2**31 - 1)
        rng = np.random.default_rng(seed)
        space, gmm = self.workspace.space, self.workspace.gmm
        ends = [palettes_from_text(text, "gmm", 1, space, gmm, rng) if text.strip() else gmm.sample(1, rng)[0]
                for text in (start, end)]
        chain = self.workspace.chain
        noise = torch.randn(1, chain.layout.latent_dim, generator=torch.Generator().manual_seed(seed))
        requested = interpolate(torch.from_numpy(ends[0][0]), torch.from_numpy(ends[1][0]), frames)
        pictures, _, _ = interpolation_frames(chain, requested, noise.expand(frames, -1), self.names, self.colors,
                                              self.scale)
        return pictures, gif_file(pictures, "interpolation")

    def face_edit(self, mode: str, index: int, frames: int, seed: int):
        """Val face `index` edited by face edit `mode` (`image.face_editing`) over `frames` frames: the
        frames, their GIF's path and the last frame's requested and obtained additions."""
        if mode not in FACE_EDITS:
            raise InputError(f"unknown face edit {mode!r}; the modes are: {', '.join(FACE_EDITS)}")
        frames, seed = checked_int(frames, "frames", 2, MAX_FRAMES), checked_int(seed, "seed", 0, 2**31 - 1)
        labels = torch.from_numpy(self.val_layout(index)).long()[None]
        rng = np.random.default_rng(seed)
        s0 = one_hot(labels, len(self.names)).mean(dim=(2, 3))[0].numpy()
        s1 = edited_palette(mode, s0, self.names, lambda: self.workspace.gmm.sample(1, rng)[0][0])
        if s1 is None:
            raise InputError(f"val face {index} does not meet the {mode} edit's precondition "
                             f"({FACE_EDITS[mode].precondition}, and no class taken below 0); pick another face")
        partial = self.workspace.params.partial
        pictures, requested, obtained = edit_face(self.completor, self.style_bank, self.val, int(index), s1, mode, rng,
                                                  frames=frames, scale=self.scale, soft_sigma=partial.soft_sigma,
                                                  soft_mix=partial.soft_mix)
        table = proportions_frame(requested[-1], obtained[-1], self.names + ["keep"])
        return pictures, gif_file(pictures, f"face-{mode}"), table


def proportions_frame(requested: np.ndarray, obtained: np.ndarray, names: list[str]) -> pd.DataFrame:
    """The classes requested or obtained, most requested first: class, requested, obtained (4 decimals)."""
    requested, obtained = np.asarray(requested, np.float64), np.asarray(obtained, np.float64)
    shown = [c for c in np.argsort(-requested, kind="stable") if requested[c] > 0 or obtained[c] > 0]
    return pd.DataFrame({"class": [names[c] for c in shown], "requested": requested[shown].round(4),
                         "obtained": obtained[shown].round(4)})


def gif_file(frames: list[np.ndarray], name: str) -> str:
    """The frames as a GIF in a fresh temporary folder (which Gradio serves from), for download."""
    path = Path(tempfile.mkdtemp(prefix="studio-")) / f"{name}.gif"
    save_gif(path, frames)
    return str(path)


def checked_int(value, name: str, low: int, high: int) -> int:
    """A whole number in [low, high] from a form or API value, else an error naming the field."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} = {value!r} is not a whole number") from None
    if number != value or not low <= number <= high:
        raise InputError(f"{name} = {value!r}; it must be a whole number from {low} to {high}")
    return number


def build_app(studio: Studio):
    """The Gradio page over `studio`; every button is an API endpoint of the same name."""
    import gradio as gr

    def refusing(method):
        """Bad input becomes the page's error message (the command line's text); nothing is generated."""
        def handler(*values):
            try:
                return method(*values)
            except InputError as error:
                raise gr.Error(str(error), print_exception=False) from None
        return handler

    names = studio.classes_by_weight()
    gmm_mean = dict(zip(studio.names, studio.workspace.gmm.weights @ studio.workspace.gmm.means))
    shown = [name for name in names if gmm_mean[name] >= 0.01][:12] or names[:6]
    with gr.Blocks(title="Semantic Palette studio") as app:
        gr.Markdown(f"## Semantic Palette studio\n{studio.workspace.space.name} label space, "
                    f"{studio.val.layouts.shape[1]}x{studio.val.layouts.shape[2]} layouts")
        with gr.Tab("Compose", id="compose"):
            with gr.Row():
                with gr.Column(scale=1):
                    sliders = [gr.Slider(0, 1, 0, step=0.01, label=name, elem_id=f"class-{name.replace(' ', '-')}")
                               for name in shown]
                    with gr.Accordion("Other classes", open=False):
                        sliders += [gr.Slider(0, 1, 0, step=0.01, label=name,
                                              elem_id=f"class-{name.replace(' ', '-')}")
                                    for name in names if name not in shown]
                with gr.Column(scale=2):
                    palette = gr.Textbox(label="Palette (class=proportion, ...; the sliders write it)",
                                         placeholder="road=0.35,building=0.3,sky=0.15", elem_id="palette")
                    with gr.Row():
                        fill = gr.Radio(["gmm", "zero"], value="gmm", label="Fill the other classes")
                        seed = gr.Number(0, precision=0, label="Seed")
                        count = gr.Number(4, precision=0, label="Scenes")
                    compose = gr.Button("Generate", variant="primary", elem_id="compose-button")
                    scenes = gr.Gallery(label="Layout | image", columns=2, elem_id="scenes", format="png",
                                        object_fit="contain", height="auto")
                    chart = gr.Image(label="Requested (grey) and obtained (orange) proportions", format="png")
                    errors = gr.Markdown(elem_id="errors")
                    table = gr.Dataframe(label="Proportions (mean over the scenes)", elem_id="proportions")
            slider_names = [s.label for s in sliders]
            gr.on([s.change for s in sliders], lambda *values: ",".join(
                f"{name}={value:g}" for name, value in zip(slider_names, values) if value > 0),
                sliders, palette, api_visibility="private")
            compose.click(refusing(studio.compose), [palette, fill, seed, count], [scenes, chart, table, errors],
                          api_name="compose")
        with gr.Tab("Edit", id="edit"):
            with gr.Row():
                with gr.Column():
                    index = gr.Number(0, precision=0, label=f"Val layout (0 to {len(studio.val) - 1})")
                    upload = gr.File(label="…or a label-id PNG", file_types=[".png"], type="filepath")
                    region = gr.Radio(["band", "classes"], value="band", label="Redo")
                    with gr.Row():
                        band_start = gr.Slider(0, 0.99, 0.25, step=0.01, label="Band start (fraction of the width)")
                        band_width = gr.Slider(0.01, 1, 0.5, step=0.01, label="Band width")
                    classes = gr.Dropdown(studio.names, multiselect=True, label="Classes to redo")
                    edit_palette = gr.Textbox(label="Palette of the region (empty: its own content)",
                                              placeholder="building=0.6,vegetation=0.4")
                    edit_seed = gr.Number(0, precision=0, label="Seed")
                    edit = gr.Button("Redo the region", variant="primary", elem_id="edit-button")
                with gr.Column():
                    edited = gr.Image(label="Layout | region masked | completion | image", format="png")
                    edit_table = gr.Dataframe(label="Region proportions")
            edit.click(refusing(studio.edit), [index, upload, region, band_start, band_width, classes, edit_palette,
                                               edit_seed], [edited, edit_table], api_name="edit")
        with gr.Tab("Interpolate", id="interpolate"):
            with gr.Row():
                start = gr.Textbox(label="From palette (empty: drawn from the GMM)")
                end = gr.Textbox(label="To palette (empty: drawn from the GMM)")
                frames = gr.Number(8, precision=0, label="Frames")
                interpolation_seed = gr.Number(0, precision=0, label="Seed")
            run = gr.Button("Interpolate", variant="primary", elem_id="interpolate-button")
            strip = gr.Gallery(label="Frames", columns=4, format="png", object_fit="contain", height="auto")
            gif = gr.File(label="GIF")
            run.click(refusing(studio.interpolation), [start, end, frames, interpolation_seed], [strip, gif],
                      api_name="interpolate")
        if studio.style_bank is not None:
            with gr.Tab("Faces", id="faces"):
                with gr.Row():
                    mode = gr.Dropdown(list(FACE_EDITS), value="glasses", label="Edit")
                    face = gr.Number(0, precision=0, label=f"Val face (0 to {len(studio.val) - 1})")
                    face_frames = gr.Number(6, precision=0, label="Frames")
                    face_seed = gr.Number(0, precision=0, label="Seed")
                edit_face_button = gr.Button("Edit the face", variant="primary", elem_id="faces-button")
                face_strip = gr.Gallery(label="Frames: real | generated | new content and additions", columns=3,
                                        format="png", object_fit="contain", height="auto")
                face_gif = gr.File(label="GIF")
                face_table = gr.Dataframe(label="Additions of the last frame (requested and obtained)")
                edit_face_button.click(refusing(studio.face_edit), [mode, face, face_frames, face_seed],
                                       [face_strip, face_gif, face_table], api_name="faces")
    return app


def launch(studio: Studio, host: str = "127.0.0.1", port: int | None = None, block: bool = True):
    """Serves the page on host:port (no share link, no analytics); returns the app when not blocking."""
    app = build_app(studio)
    app.queue(default_concurrency_limit=1)  # one request at a time on the networks
    app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, show_error=True,
               ssr_mode=False, mcp_server=False, quiet=not block)
    return app
