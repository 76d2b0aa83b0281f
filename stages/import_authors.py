"""`semantic-palette import-authors`: the authors' released checkpoints as this project's checkpoints.

    semantic-palette import-authors checkpoints/cityscapes_full --config cityscapes-full-128x256

Reads a folder as the authors' code saves it (`{label}_net_{iter}.pth` or `{label}_latest_net_{iter}.pth`,
labels seg_g, seg_d, img_g, img_d, img_d2, and `cond_estimator.pkl`; whichever are present), converts
every network into ours with the compatibility settings that reproduce the authors' forward passes
(authors.networks), and writes, under `--out` (default outputs/authors):

    layout/<height>/checkpoint.pt (partial/ for     layout generator (its own EMA) + critic, built to the
    a completor)                                    configuration's height; the blocks above it are dropped
    image/checkpoint.pt                             image generator + conditional critic
    image/image_critic.pt                           the image-only critic of end-to-end fine-tuning (img_d2)
    palette/gmm.npz                                 the palette GMM (our non-pickle file)
    report.json                                     per file: network, keys found / converted / dropped, parameters

In the pipeline, `chain.authors` (params) lists the releases to import: one `authors@<config>` stage
each, writing `outputs/authors/<config>/`, which the `chain.*` folders then name (README, "Use the
authors' checkpoints"). The folder is written whole or not at all. A file of another network or configuration (class count,
aspect ratio, levels, a completor where a generator is expected) is an error naming it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from authors.gmm import read_authors_gmm
from authors.networks import (KINDS, block_count, detect_kind, image_config, layout_config, load_authors_state,
                              parameter_count)
from data.errors import InputError
from data.io import atomic_output_dir, atomic_write_json, save_checkpoint
from data.labels import label_space
from image.networks import MultiscaleDiscriminator
from image.train import ImageModel
from layout.networks import level_height, level_of_height
from layout.train import LayoutModel

# The authors' optimiser settings (their options: lr 0.001 for the layout, betas 0 and 0.99), kept in the
# checkpoint's fresh optimiser states; fine-tuning sets its own.
LAYOUT_LR, LAYOUT_BETAS = 1e-3, (0.0, 0.99)


@dataclass(frozen=True)
class Release:
    """One of the configurations the authors publish checkpoints for (the seed README's table)."""

    dataset: str  # our label space
    height: int
    width: int
    layout: str  # layout | completor
    image: str  # spade | sean
    num_upsamplings: int  # their `more` (Cityscapes, IDD) is 6 at 128×256; `normal` (CelebA) is 5
    middle_blocks: int


RELEASES = {
    "cityscapes-full-128x256": Release("cityscapes", 128, 256, "layout", "spade", 6, 0),
    "cityscapes-partial-128x256": Release("cityscapes", 128, 256, "completor", "spade", 6, 0),
    "cityscapes-25k-128x256": Release("cityscapes", 128, 256, "layout", "spade", 6, 0),
    "idd-128x256": Release("idd", 128, 256, "layout", "spade", 6, 0),
    "celeba-partial-256x256": Release("celeba", 256, 256, "completor", "sean", 5, 1),
}
LABELS = ("seg_g", "seg_d", "img_g", "img_d", "img_d2")
FILE_NAME = re.compile(r"^(seg_g|seg_d|img_g|img_d|img_d2)_(?:latest_)?net_(\d+)\.pth$")


def find_files(folder: Path, release: Release) -> dict[str, Path]:
    """The file of each label present: the one saved at the configuration's height if there is one
    (the authors' layout files are named by resolution), else the highest iteration."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; give the folder the authors' checkpoint zip was extracted to")
    candidates: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted(folder.iterdir()):
        match = FILE_NAME.match(path.name)
        if match:
            candidates.setdefault(match[1], []).append((int(match[2]), path))
    files = {}
    for label, found in candidates.items():
        at_height = [path for iteration, path in found if iteration == release.height]
        files[label] = at_height[0] if at_height else max(found)[1]
    if not files and not (folder / "cond_estimator.pkl").is_file():
        raise InputError(f"{folder}: no checkpoint of the authors found; expected files named "
                         f"{{{','.join(LABELS)}}}_net_<iter>.pth (or _latest_net_<iter>.pth) or cond_estimator.pkl")
    return files


def read_state(path: Path, expected: tuple[str, ...]) -> tuple[dict, str]:
    """The state dict in `path` and which of `expected` kinds it is."""
    what = " or ".join(KINDS[kind] for kind in expected)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise InputError(f"{path}: holds objects other than tensors, so it was not read ({str(error).splitlines()[0]}); "
                         f"expected the state dict of a {what}") from None
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        raise InputError(f"{path}: not a readable PyTorch file ({str(error).splitlines()[0]}); expected the state dict "
                         f"of a {what} (is the file truncated?)") from None
    kind = detect_kind(state) if isinstance(state, dict) and all(torch.is_tensor(v) for v in state.values()) else None
    if kind is None:
        raise InputError(f"{path}: not a state dict of the authors' networks; expected a {what}")
    if kind not in expected:
        raise InputError(f"{path}: holds a {KINDS[kind]}; this configuration expects a {what} there "
                         f"(is the folder that of another configuration?)")
    return state, kind


@contextlib.contextmanager
def complete(path: Path, kind: str):
    """Reading a configuration from a file's shapes: a key it lacks is an error naming the file."""
    try:
        yield
    except KeyError as key:
        raise InputError(f"{path}: key {key} not found; every {KINDS[kind]} of the authors has it "
                         f"(is the file incomplete?)") from None


def check_classes(path: Path, found: int, release: Release) -> None:
    expected = label_space(release.dataset).num_classes
    if found != expected:
        raise InputError(f"{path}: a network over {found} classes; {release.dataset} has {expected} "
                         f"(is the file that of another dataset?)")


def record(path: Path, kind: str, state: dict, dropped: dict[str, list[str]], network: torch.nn.Module) -> dict:
    return {"file": path.name, "network": KINDS[kind], "found": len(state),
            "converted": len(state) - len(dropped["aliases"]) - len(dropped["unused"]),
            "aliases": dropped["aliases"], "dropped_unused": dropped["unused"], "parameters": parameter_count(network)}


def import_layout(files: dict[str, Path], release: Release) -> tuple[dict, list[dict]]:
    path = files["seg_g"]
    state, kind = read_state(path, (release.layout,))
    level = level_of_height(release.height)
    if block_count(state) <= level:
        raise InputError(f"{path}: the generator has {block_count(state)} levels (up to "
                         f"{level_height(block_count(state) - 1)} px high); this configuration needs {release.height} px")
    with complete(path, kind):
        config = layout_config(state, kind, str(path), num_levels=level + 1)
    check_classes(path, config.num_classes, release)
    if config.aspect * release.height != release.width:
        raise InputError(f"{path}: layouts of aspect ratio {config.aspect}; this configuration is "
                         f"{release.height}x{release.width} (is the file that of another resolution?)")
    model = LayoutModel.create(config, LAYOUT_LR, LAYOUT_BETAS)
    reports = [record(path, kind, state, load_authors_state(model.generator, kind, state, str(path)), model.generator)]
    if "seg_d" in files:
        critic_state, _ = read_state(files["seg_d"], ("layout_critic",))
        dropped = load_authors_state(model.discriminator, "layout_critic", critic_state, str(files["seg_d"]),
                                     block_count(critic_state))
        reports.append(record(files["seg_d"], "layout_critic", critic_state, dropped, model.discriminator))
    model.ema.load_state_dict(model.generator.state_dict())  # the authors keep no moving average
    payload = {"model": model.state_dict(), "level": level, "label_space": release.dataset}
    return payload, reports


def import_image(files: dict[str, Path], release: Release) -> tuple[dict, dict | None, list[dict]]:
    path = files["img_g"]
    state, kind = read_state(path, (release.image,))
    critics = {label: read_state(files[label], ("image_critic",))[0] for label in ("img_d", "img_d2") if label in files}
    with complete(path, kind):
        config = image_config(state, critics.get("img_d", critics.get("img_d2")), kind, height=release.height,
                              width=release.width, num_upsamplings=release.num_upsamplings,
                              middle_blocks=release.middle_blocks)
    check_classes(path, config.num_classes, release)
    model = ImageModel.create(config)
    reports = [record(path, kind, state, load_authors_state(model.generator, kind, state, str(path)), model.generator)]
    if "img_d" in critics:
        dropped = load_authors_state(model.discriminator, "image_critic", critics["img_d"], str(files["img_d"]))
        reports.append(record(files["img_d"], "image_critic", critics["img_d"], dropped, model.discriminator))
    image_critic = None
    if "img_d2" in critics:
        network = MultiscaleDiscriminator(0, scales=config.critic_scales, base_channels=config.critic_channels)
        dropped = load_authors_state(network, "image_critic", critics["img_d2"], str(files["img_d2"]))
        reports.append(record(files["img_d2"], "image_critic", critics["img_d2"], dropped, network))
        image_critic = {"image_critic": network.state_dict(), "config": dataclasses.asdict(config)}
    return {"model": model.state_dict(), "label_space": release.dataset}, image_critic, reports


def import_release(folder: Path, config_name: str, out: Path) -> list[dict]:
    """Converts every network in `folder` and writes them under `out` (whole or not at all)."""
    if config_name not in RELEASES:
        raise InputError(f"--config {config_name!r} is not a released configuration; use one of: {', '.join(RELEASES)}")
    release = RELEASES[config_name]
    files = find_files(folder, release)
    layout = import_layout(files, release) if "seg_g" in files else None
    if layout is None and "seg_d" in files:
        raise InputError(f"{files['seg_d']}: a layout critic without its generator (seg_g_net_<iter>.pth) in {folder}")
    image = import_image(files, release) if "img_g" in files else None
    if image is None and ("img_d" in files or "img_d2" in files):
        raise InputError(f"{folder}: image critics without their generator (img_g_net_<iter>.pth)")
    estimator = folder / "cond_estimator.pkl"
    gmm = read_authors_gmm(estimator, label_space(release.dataset).class_names) if estimator.is_file() else None
    reports = (layout[1] if layout else []) + (image[2] if image else [])
    if gmm is not None:
        reports.append({"file": estimator.name, "network": "palette GMM (scikit-learn GaussianMixture)",
                        "components": gmm.num_components})
    with atomic_output_dir(out) as tmp:
        if layout:
            kind = "partial" if release.layout == "completor" else "layout"
            save_checkpoint(tmp / kind / str(release.height) / "checkpoint.pt", layout[0])
        if image:
            save_checkpoint(tmp / "image" / "checkpoint.pt", image[0])
            if image[1]:
                save_checkpoint(tmp / "image" / "image_critic.pt", image[1])
        if gmm is not None:
            (tmp / "palette").mkdir()
            gmm.save(tmp / "palette" / "gmm.npz")
        atomic_write_json(tmp / "report.json", {"source": str(folder), "config": config_name, "files": reports})
    return reports


def summary(report: dict) -> str:
    if "components" in report:
        return f"{report['file']}: {report['network']}, {report['components']} components -> palette/gmm.npz"
    aliases = f", {len(report['aliases'])} aliases of converted tensors" if report["aliases"] else ""
    unused = f", {len(report['dropped_unused'])} unused dropped" if report["dropped_unused"] else ""
    return (f"{report['file']}: {report['network']}, {report['found']} keys: {report['converted']} converted{aliases}"
            f"{unused}; {report['parameters']:,} parameters")


def add_parser(commands) -> None:
    command = commands.add_parser("import-authors", help="convert the authors' released checkpoints",
                                  description=__doc__.split("\n\n")[0])
    command.add_argument("folder", type=Path, help="a folder of the authors' checkpoints (one extracted zip)")
    command.add_argument("--config", required=True, choices=list(RELEASES), help="the released configuration")
    command.add_argument("--out", type=Path, default=Path("outputs/authors"), help="default: outputs/authors")


def run(args) -> None:
    for report in import_release(args.folder, args.config, args.out):
        print(summary(report))
    print(f"import-authors: written to {args.out}/ (report.json lists the dropped keys)")


if __name__ == "__main__":
    from stages.generate import cli  # the console script, whose subcommand this is

    cli(["import-authors", *sys.argv[1:]])
