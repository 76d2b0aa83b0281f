"""The prepared-split format: a dataset split at the working resolution, as memory-mappable arrays.

    <split>/layouts.npy    uint8   N×H×W     label ids
    <split>/images.npy     uint8   N×H×W×3   RGB
    <split>/palettes.npy   float32 N×C       class proportions of each layout
    <split>/manifest.json  label space, class names, resolution, dataset, source files (in array order)
                           and how each label file was read (label_ids, instance_ids or part_masks)

Pairs are in sorted key order, so the same dataset gives the same bytes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from data.errors import InputError
from data.io import atomic_write_json
from data.labels import LabelSpace, label_space
from data.readers import DatasetReader

CROPS = ("top", "center")


def crop_box(height: int, width: int, aspect: float, anchor: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the largest crop of aspect width/height = `aspect`.

    A frame wider than `aspect` loses its sides (centred); a taller one (IDD's 16:9 for a 2:1 working
    resolution) loses rows at the bottom (`top`, the authors' validation crop) or both ends (`center`).
    """
    if width > round(height * aspect):
        new_width = round(height * aspect)
        left = (width - new_width) // 2
        return left, 0, left + new_width, height
    new_height = min(height, round(width / aspect))
    top = 0 if anchor == "top" else (height - new_height) // 2
    return 0, top, width, top + new_height


def resize_pair(layout: np.ndarray, image: np.ndarray, height: int, width: int, anchor: str):
    """Crops a (label, image) pair to the working aspect ratio and resizes it to height×width.

    Labels use PIL's nearest neighbour, which samples source pixel floor((i + 0.5)·scale) (torch's
    'nearest-exact'); images use PIL's bilinear filter, antialiased when shrinking.
    """
    box = crop_box(layout.shape[0], layout.shape[1], width / height, anchor)
    label_image = Image.fromarray(layout.astype(np.uint8)).crop(box)
    rgb = Image.fromarray(image).crop(box)
    label_image = label_image.resize((width, height), Image.Resampling.NEAREST)
    rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(label_image), np.asarray(rgb)


def write_prepared_split(
    reader: DatasetReader, split: str, folder: Path, *, height: int, width: int, crop: str, dataset: str
) -> np.ndarray:
    """Reads and validates every pair of `split` and writes layouts, images and the manifest into
    `folder` (the caller makes it atomic). Returns the memory-mapped layouts."""
    if crop not in CROPS:
        raise InputError(f"prepare.crop = {crop!r} is unknown; use one of: {', '.join(CROPS)}")
    samples = reader.samples(split)
    if not samples:
        raise InputError(
            f"the {split} split of {reader.root} is empty (no label/image pairs found); "
            f"check data.root and data.dataset in params.yaml"
        )
    count = len(samples)
    layouts = np.lib.format.open_memmap(folder / "layouts.npy", "w+", np.uint8, (count, height, width))
    images = np.lib.format.open_memmap(folder / "images.npy", "w+", np.uint8, (count, height, width, 3))
    # The context manager ends the bar's line on an error, so the error message gets a line of its own.
    with tqdm(samples, desc=f"prepare {split}", unit="img") as progress:
        for i, sample in enumerate(progress):
            label = reader.read_label(sample)
            image = reader.read_image(sample, label.shape)
            layouts[i], images[i] = resize_pair(label, image, height, width, crop)
    images.flush()
    layouts.flush()
    atomic_write_json(folder / "manifest.json", {
        "dataset": dataset,
        "label_space": reader.label_space.name,
        "class_names": list(reader.label_space.class_names),
        "height": height,
        "width": width,
        "crop": crop,
        "count": count,
        "root": str(reader.root),
        "samples": [
            {"key": s.key,
             "labels": [str(p.relative_to(reader.root)) for p in s.label_files],
             "label_encoding": reader.label_encoding(s),
             "image": str(s.image_file.relative_to(reader.root))}
            for s in samples
        ],
    })
    return layouts


@dataclass(frozen=True)
class PreparedSplit:
    """A prepared split opened read-only; arrays are memory-mapped, not loaded."""

    layouts: np.ndarray
    images: np.ndarray
    palettes: np.ndarray
    manifest: dict

    @property
    def label_space(self) -> LabelSpace:
        return label_space(self.manifest["label_space"])

    def __len__(self) -> int:
        return len(self.layouts)


def open_prepared_split(folder: str | Path) -> PreparedSplit:
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        raise InputError(f"{folder} is not a prepared split (no manifest.json); run `dvc repro prepare` first")
    manifest = json.loads((folder / "manifest.json").read_text())
    return PreparedSplit(
        layouts=np.load(folder / "layouts.npy", mmap_mode="r"),
        images=np.load(folder / "images.npy", mmap_mode="r"),
        palettes=np.load(folder / "palettes.npy"),
        manifest=manifest,
    )
