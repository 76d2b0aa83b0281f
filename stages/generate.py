"""`semantic-palette generate`: scenes from a palette written by class name, or from GMM samples, with
the pipeline's synthesis chain: the networks of the `chain.*` folders, trained by the pipeline or imported
(run `dvc repro` first, in the repository).

    semantic-palette generate --palette "road=0.35,building=0.3,sky=0.15,car=0.05" --count 4 --seed 0
    semantic-palette generate --from-gmm 8 --seed 1 --out generated/gmm

Classes the palette leaves out are drawn from the GMM conditioned on the given ones (`--fill gmm`, the
default), or set to zero with the given ones rescaled to sum to 1 (`--fill zero`). Writes, per sample,
`<k>_layout.png` (colours), `<k>_labels.png` (8-bit label ids, the dataset's ids), `<k>_image.png`,
and `proportions.csv` (requested and obtained proportions of every class).

    semantic-palette serve [--host 127.0.0.1] [--port 7860]

starts the palette studio (`stages.studio`, needs the `demo` extra) over the same chain.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data.errors import InputError
from data.labels import LabelSpace
from data.prepared import open_prepared_split
from image.chain import SynthesisChain
from image.demos import coloured, proportions_table
from image.train import to_uint8
from layout.layouts import one_hot
from palette.conditional import sample_conditional
from palette.gmm import PaletteGMM
from stages import import_authors
from stages.common import load_synthesis_chain, resolve_device
from stages.params import Params, load_params

GMM = Path("outputs/palette/gmm.npz")
PREPARED = Path("outputs/prepared/train")


def parse_palette(text: str, space: LabelSpace) -> dict[int, float]:
    """`name=value,...` -> {channel: proportion}; every bad entry is an error naming it."""
    fixed = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, equals, value = entry.rpartition("=")
        name = name.strip()
        if not equals or not name:
            raise InputError(f"palette entry {entry!r} is not name=value (e.g. road=0.35)")
        if name not in space.class_names:
            raise InputError(f"unknown class {name!r} in the palette; {space.name} classes: {', '.join(space.class_names)}")
        try:
            proportion = float(value)
        except ValueError:
            raise InputError(f"{name}={value!r}: the proportion is not a number") from None
        if not 0 <= proportion <= 1:
            raise InputError(f"{name}={value}: proportions must lie in [0, 1]")
        if space.class_id(name) in fixed:
            raise InputError(f"{name} is given twice in the palette")
        fixed[space.class_id(name)] = proportion
    if not fixed:
        raise InputError("the palette is empty; give name=value pairs, e.g. --palette \"road=0.4,sky=0.2\"")
    total = sum(fixed.values())
    if total > 1 + 1e-6:
        raise InputError(f"the palette's proportions sum to {total:.3f}; they must sum to at most 1")
    return fixed


def palettes_from_text(text: str, fill: str, count: int, space: LabelSpace, gmm: PaletteGMM,
                       rng: np.random.Generator) -> np.ndarray:
    """`count` palettes with the classes named in `text` fixed; the others drawn from the GMM given them
    (`fill` gmm) or zero, the named ones rescaled to sum to 1 (`fill` zero)."""
    fixed = parse_palette(text, space)
    if fill == "gmm":
        return sample_conditional(gmm, fixed, count, rng)
    if fill != "zero":
        raise InputError(f"fill = {fill!r} is unknown; use gmm or zero")
    palette = np.zeros(space.num_classes, np.float32)
    for channel, proportion in fixed.items():
        palette[channel] = proportion
    if palette.sum() <= 0:
        raise InputError("with --fill zero the palette needs a positive proportion")
    return np.repeat((palette / palette.sum())[None], count, axis=0)


def requested_palettes(args, space: LabelSpace, gmm: PaletteGMM, rng: np.random.Generator) -> np.ndarray:
    if args.from_gmm is not None:
        return gmm.sample(args.from_gmm, rng)[0]
    return palettes_from_text(args.palette, args.fill, args.count, space, gmm, rng)


@dataclass
class Workspace:
    """What generation needs from the pipeline's outputs, loaded once: the trained chain, the palette
    GMM and the label space of the prepared data."""
    params: Params
    device: torch.device
    space: LabelSpace
    gmm: PaletteGMM
    chain: SynthesisChain

    @classmethod
    def load(cls, kind: str = "layout") -> "Workspace":
        """From the current folder (the repository after `dvc repro`); anything missing is an error
        naming the stage that produces it."""
        for path, fix in ((Path("params.yaml"), "run the command in the repository"),
                          (GMM, "run `dvc repro palette`"), (PREPARED / "manifest.json", "run `dvc repro prepare`")):
            if not path.is_file():
                raise InputError(f"{path} not found; {fix}")
        params = load_params()
        device = resolve_device(params.device)
        space = open_prepared_split(PREPARED).label_space
        return cls(params, device, space, PaletteGMM.load(GMM), load_synthesis_chain(params, kind, device))

    def generate(self, requested: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label maps (N×H×W uint8), images (N×H×W×3 uint8) and obtained proportions (N×C) for the
        requested palettes (N×C)."""
        labels, images = self.chain.sample(requested, seed=seed)
        obtained = one_hot(labels, self.space.num_classes).mean(dim=(2, 3)).numpy()
        return labels.numpy().astype(np.uint8), to_uint8(images), obtained


def check_request(args, space: LabelSpace) -> None:
    """`--palette` checked against the label space before any network or GMM is loaded, so that a
    misspelt class is reported first."""
    if args.from_gmm is None:
        fixed = parse_palette(args.palette, space)
        if args.fill == "zero" and sum(fixed.values()) <= 0:
            raise InputError("with --fill zero the palette needs a positive proportion")


def generate(args) -> None:
    if (PREPARED / "manifest.json").is_file():
        check_request(args, open_prepared_split(PREPARED).label_space)
    workspace = Workspace.load()
    space = workspace.space
    rng = np.random.default_rng(args.seed)
    requested = requested_palettes(args, space, workspace.gmm, rng)
    labels, images, obtained = workspace.generate(requested, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    colors = np.asarray(space.colors, np.uint8)
    for k, (label, image) in enumerate(zip(labels, images)):
        Image.fromarray(coloured(label, colors)).save(out / f"{k}_layout.png")
        Image.fromarray(label).save(out / f"{k}_labels.png")
        Image.fromarray(image).save(out / f"{k}_image.png")
    proportions_table(requested, obtained, list(space.class_names), index_name="sample").to_csv(
        out / "proportions.csv", index=False)
    print(f"generate: {len(labels)} scenes in {out}/ (chain.finetuned: {workspace.params.chain.finetuned})")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="semantic-palette", description="Semantic Palette pipeline tools")
    commands = main.add_subparsers(dest="command", required=True)
    command = commands.add_parser("generate", help="scenes from a named palette or from the palette GMM")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--palette", help='class proportions by name, e.g. "road=0.35,building=0.3,sky=0.15"')
    source.add_argument("--from-gmm", type=int, metavar="N", help="N palettes sampled from the GMM")
    command.add_argument("--count", type=int, default=4, help="scenes for --palette (default 4)")
    command.add_argument("--fill", choices=("gmm", "zero"), default="gmm",
                         help="unnamed classes: drawn from the GMM given the named ones (default), or zero")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--out", default="generated", help="output folder (default: generated/)")
    import_authors.add_parser(commands)
    serve = commands.add_parser("serve", help="the palette studio: a local web app over the trained chain")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the "
                            "network)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    return main


def serve(args) -> None:
    try:
        import gradio  # noqa: F401 (an optional extra)
    except ImportError:
        raise InputError("the studio needs Gradio, an optional extra: pip install -e \".[demo]\"") from None
    from stages.studio import Studio, launch
    studio = Studio.load()
    print(f"serve: the palette studio on http://{args.host}:{args.port} (Ctrl+C stops it)")
    launch(studio, args.host, args.port)


def cli(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if args.command == "import-authors":
            import_authors.run(args)
            return
        if args.command == "serve":
            serve(args)
            return
        if (args.from_gmm if args.from_gmm is not None else args.count) < 1:
            raise InputError("--count and --from-gmm need at least 1")
        generate(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli()
