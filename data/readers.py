"""Dataset readers, each from the dataset's official on-disk layout.

A reader lists the (label, image) pairs of a split, paired by an explicit key and inner-joined so
that a file without its partner is an error rather than a silent shift of every later pair, and
reads them as validated arrays: label ids (H×W int64, every id inside the label space) and RGB
images (H×W×3 uint8) of the same size.

Label files must be what the dataset ships: lossless one-channel PNGs of integer ids. A JPEG (whatever
its name) or a colour PNG would give wrong ids near every region border, so it is refused, as is an id
outside the label space. Only instance-id files (`*_instanceIds.png`) are decoded as instances.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from data.errors import InputError
from data.io import read_image_file
from data.labels import CELEBA, CELEBA_PARTS, IDD, LabelSpace, label_space

SPLITS = ("train", "val")
DATASETS = ("cityscapes", "cityscapes25k", "idd", "celeba")
INSTANCE_IDS = "_instanceIds.png"  # Cityscapes' instance-id files: id·1000 + k on the k-th thing instance
# PIL's modes of one-channel integer PNGs. In a palette PNG (P) the stored indices are the ids and the
# palette only colours them for viewing; PIL and the authors' loader read the indices.
ID_MODES = ("L", "P", "I;16", "I;16L", "I;16B", "I")


@dataclass(frozen=True)
class Sample:
    key: str  # what pairs a label with its image, e.g. "aachen_000000_000019"
    label_files: tuple[Path, ...]  # one label map, or CelebAMask-HQ's per-part masks
    image_file: Path


class DatasetReader:
    """Lists and reads the pairs of one dataset; subclasses know the on-disk layout."""

    label_space: LabelSpace
    label_file: str  # what a label file must be, for the error messages
    # Value some label files use for "ignore"; the authors send it to this channel (a void class).
    ignore_value: int = 255
    ignore_channel: int = 0

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(
                f"dataset folder not found: {self.root}; set data.root in params.yaml to the "
                f"dataset's folder (see README, Datasets), or keep datasets/toycity for the toy run"
            )

    def samples(self, split: str) -> list[Sample]:
        raise NotImplementedError

    def read_label(self, sample: Sample) -> np.ndarray:
        """The label ids of a one-file label: a label-id PNG, or an instance-id PNG decoded to its ids."""
        path = sample.label_files[0]
        return self._validated_ids(read_id_png(path, self.label_file), path)

    def label_encoding(self, sample: Sample) -> str:
        """How the sample's label file is read: `instance_ids` (decoded) or `label_ids` (as stored)."""
        return "instance_ids" if sample.label_files[0].name.endswith(INSTANCE_IDS) else "label_ids"

    def read_image(self, sample: Sample, size: tuple[int, int]) -> np.ndarray:
        """The RGB image as H×W×3 uint8; `size` (H, W) is its label's size, which it must have."""
        image = read_image_file(sample.image_file).convert("RGB")
        if (image.height, image.width) != size:
            raise InputError(
                f"{sample.image_file}: image is {image.height}x{image.width} but its label "
                f"{sample.label_files[0]} is {size[0]}x{size[1]}; a label and its image must "
                f"have the same size (re-extract the pair or remove both)"
            )
        return np.asarray(image, dtype=np.uint8)

    # helpers for subclasses

    def _folder(self, *parts: str) -> Path:
        folder = self.root.joinpath(*parts)
        if not folder.is_dir():
            raise InputError(
                f"dataset folder not found: {folder}; {self.root} does not have the "
                f"{self.label_space.name} layout expected for data.dataset: point data.root at the "
                f"dataset's top folder, or change data.dataset (see README, Datasets)"
            )
        return folder

    def _validated_ids(self, stored: np.ndarray, path: Path) -> np.ndarray:
        """Label ids from a label file's integers: instance ids decoded (instance-id files only), the
        ignore value sent to its channel, and any id outside the label space an error."""
        instances = path.name.endswith(INSTANCE_IDS)
        values = _decode_instance_ids(stored) if instances else stored.astype(np.int64)
        values[values == self.ignore_value] = self.ignore_channel
        bad = (values < 0) | (values >= self.label_space.num_classes)
        if bad.any():
            row, column = np.argwhere(bad)[0]
            value, raw = int(values[row, column]), int(stored[row, column])
            found = f"label id {value}" + (f" (instance id {raw})" if raw != value else "")
            hint = (f"; values of 1000 and above are instance ids only in *{INSTANCE_IDS} files, and this is a "
                    f"label-id file" if raw > 999 and not instances else "")
            raise InputError(
                f"{path}: {found} is outside the {self.label_space.name} label space (ids "
                f"0..{self.label_space.num_classes - 1}), at row {row}, column {column}{hint}; check "
                f"data.dataset, or that this is a raw label-id file and not a colour or train-id file"
            )
        return values


def pair_files(labels: dict[str, tuple[Path, ...]], images: dict[str, Path], where: Path) -> list[Sample]:
    """Inner-joins labels and images by key, sorted by key; any unmatched file is an error."""
    for key in sorted(labels.keys() - images.keys()):
        raise InputError(
            f"label without image: {labels[key][0]} has no matching image under {where}; "
            f"add the image or remove the label"
        )
    for key in sorted(images.keys() - labels.keys()):
        raise InputError(
            f"image without label: {images[key]} has no matching label under {where}; "
            f"add the label or remove the image"
        )
    return [Sample(key, labels[key], images[key]) for key in sorted(labels)]


def _by_suffix(folder: Path, suffix: str) -> dict[str, Path]:
    return {path.name[: -len(suffix)]: path for path in sorted(folder.rglob(f"*{suffix}"))}


def _decode_instance_ids(values: np.ndarray) -> np.ndarray:
    """Cityscapes instanceIds convention: v > 999 is instance v % 1000 of class v // 1000."""
    return np.where(values > 999, values // 1000, values).astype(np.int64)


def read_id_png(path: Path, expected: str) -> np.ndarray:
    """The integers of a one-channel label PNG, as int64 (16-bit files are never cut to 8 bits).

    The file's content decides, not its name: a JPEG, a colour PNG or a multi-channel one is an error
    that says what the file is and that `expected` is needed."""
    image = read_image_file(path)
    if image.format != "PNG":
        why = "JPEG is lossy and changes the ids near every region border" if image.format == "JPEG" else \
            "labels must be stored losslessly"
        raise InputError(f"{path}: the file holds a {image.format} image, not a PNG ({why}); a label must be "
                         f"{expected}; re-extract it from the dataset's archive")
    if image.mode not in ID_MODES:
        bands = len(image.getbands())
        found = f"a PNG with {bands} channels (mode {image.mode})" if bands > 1 else f"a mode {image.mode} PNG"
        raise InputError(f"{path}: the label is {found}; a label must be {expected}, one channel of integer "
                         f"ids (a colour picture of the labels such as *_color.png is not one); re-extract it "
                         f"from the dataset's archive")
    return np.asarray(image, dtype=np.int64)


class CityscapesReader(DatasetReader):
    """Cityscapes fine: `leftImg8bit/<split>/<city>/*_leftImg8bit.png` with
    `gtFine/<split>/<city>/*_gtFine_labelIds.png` (or, where absent, `*_gtFine_instanceIds.png`)."""

    label_space = label_space("cityscapes")
    label_file = ("the dataset's raw label-id PNG (8-bit *_gtFine_labelIds.png or 16-bit "
                  "*_gtFine_instanceIds.png of gtFine_trainvaltest.zip)")
    ignore_channel = 34  # the authors send 255 to the last channel (license plate)

    def samples(self, split: str) -> list[Sample]:
        labels = self._fine_labels(split)
        images = _by_suffix(self._folder("leftImg8bit", split), "_leftImg8bit.png")
        return pair_files(labels, images, self.root / "leftImg8bit" / split)

    def _fine_labels(self, split: str) -> dict[str, tuple[Path, ...]]:
        folder = self._folder("gtFine", split)
        # A frame's labelIds file where it has one; the other files of gtFine (_color.png, _polygons.json,
        # the instanceIds of a frame that also has labelIds) are not read.
        labels = {k: (p,) for k, p in _by_suffix(folder, "_gtFine" + INSTANCE_IDS).items()}
        labels.update({k: (p,) for k, p in _by_suffix(folder, "_gtFine_labelIds.png").items()})
        return labels


class Cityscapes25kReader(CityscapesReader):
    """Cityscapes fine plus the ~20k `train_extra` images with the pseudo-labels of Tao et al.
    (arXiv 2005.10821), unzipped to `extraFine/train_extra/<city>/` as the seed README says.

    The pseudo-labels are 8-bit raw label ids named `*_leftImg8bit.png`; the authors rewrote them as
    `*_instanceIds.png` first, which is accepted too but no longer needed.
    """

    def samples(self, split: str) -> list[Sample]:
        fine = super().samples(split)
        if split != "train":
            return fine
        extra_labels_dir = self._folder("extraFine", "train_extra")
        labels = {k: (p,) for k, p in _by_suffix(extra_labels_dir, "_leftImg8bit.png").items()}
        labels.update({k: (p,) for k, p in _by_suffix(extra_labels_dir, INSTANCE_IDS).items()})
        images = _by_suffix(self._folder("leftImg8bit", "train_extra"), "_leftImg8bit.png")
        return fine + pair_files(labels, images, self.root / "leftImg8bit" / "train_extra")


class IddReader(DatasetReader):
    """IDD segmentation after AutoNUE's `createLabels` with the `id` encoding:
    `gtFine/<split>/<folder>/<frame>_gtFine_labelids.png` (ids 0..39) with
    `leftImg8bit/<split>/<folder>/<frame>_leftImg8bit.png` (or .jpg)."""

    label_space = IDD
    label_file = ("the raw label-id PNG that AutoNUE's createLabels writes with the `id` encoding "
                  "(8-bit *_gtFine_labelids.png)")
    ignore_channel = 35  # unlabeled

    def samples(self, split: str) -> list[Sample]:
        label_dir = self._folder("gtFine", split)
        image_dir = self._folder("leftImg8bit", split)
        # Frame numbers repeat across folders, so the key keeps the folder.
        labels = {
            f"{p.parent.name}/{p.name[: -len('_gtFine_labelids.png')]}": (p,)
            for p in sorted(label_dir.glob("*/*_gtFine_labelids.png"))
        }
        images = {}
        for suffix in ("_leftImg8bit.png", "_leftImg8bit.jpg"):
            for p in sorted(image_dir.glob(f"*/*{suffix}")):
                images[f"{p.parent.name}/{p.name[: -len(suffix)]}"] = p
        return pair_files(labels, images, image_dir)


class CelebAReader(DatasetReader):
    """CelebAMask-HQ: `CelebA-HQ-img/<k>.jpg` with per-part masks
    `CelebAMask-HQ-mask-anno/<k // 2000>/<k:05d>_<part>.png`, combined into one label map by painting
    the parts in channel order (a later part overwrites an earlier one, as the authors' script does).

    The dataset has no validation split; the last `holdout_fraction` of the ids (in numeric order)
    are held out as `val`.
    """

    label_space = CELEBA
    label_file = "a lossless PNG part mask of CelebAMask-HQ-mask-anno (non-zero pixels belong to the part)"
    ignore_channel = 0
    _mask_name = re.compile(r"^(\d+)_(.+)\.png$")

    def __init__(self, root: str | Path, holdout_fraction: float):
        super().__init__(root)
        if not 0.0 < holdout_fraction < 1.0:
            raise InputError(
                f"prepare.holdout_fraction = {holdout_fraction} is out of range; "
                f"use a fraction strictly between 0 and 1 (e.g. 0.1)"
            )
        self.holdout_fraction = holdout_fraction

    def samples(self, split: str) -> list[Sample]:
        mask_dir = self._folder("CelebAMask-HQ-mask-anno")
        image_dir = self._folder("CelebA-HQ-img")
        parts: dict[str, list[Path]] = {}
        for path in sorted(mask_dir.glob("*/*.png")):
            match = self._mask_name.match(path.name)
            if match is None or match.group(2) not in CELEBA_PARTS:
                raise InputError(
                    f"{path}: not a CelebAMask-HQ part mask name (expected <id>_<part>.png with part "
                    f"one of {', '.join(CELEBA_PARTS)}); remove the file"
                )
            parts.setdefault(str(int(match.group(1))), []).append(path)
        labels = {
            key: tuple(sorted(paths, key=lambda p: CELEBA_PARTS.index(self._mask_name.match(p.name).group(2))))
            for key, paths in parts.items()
        }
        images = {p.stem: p for p in sorted(image_dir.glob("*.jpg")) if p.stem.isdigit()}
        everything = sorted(pair_files(labels, images, image_dir), key=lambda s: int(s.key))
        held_out = round(len(everything) * self.holdout_fraction)
        return everything[len(everything) - held_out:] if split == "val" else everything[: len(everything) - held_out]

    def label_encoding(self, sample: Sample) -> str:
        return "part_masks"

    def read_label(self, sample: Sample) -> np.ndarray:
        layout = None
        for path in sample.label_files:
            image = read_image_file(path)
            if image.format != "PNG":
                raise InputError(f"{path}: the file holds a {image.format} image, not a PNG (a lossy file "
                                 f"blurs the mask's edges); a mask must be {self.label_file}; re-extract it "
                                 f"from CelebAMask-HQ.zip")
            mask = np.asarray(image)
            mask = mask[..., 0] if mask.ndim == 3 else mask  # the dataset's masks may repeat one value in RGB
            if layout is None:
                layout = np.zeros(mask.shape, dtype=np.int64)
            elif mask.shape != layout.shape:
                raise InputError(
                    f"{path}: mask is {mask.shape[0]}x{mask.shape[1]} but {sample.label_files[0]} is "
                    f"{layout.shape[0]}x{layout.shape[1]}; all part masks of a face must have one size "
                    f"(re-extract the masks of face {sample.key}, or remove them and its image)"
                )
            part = self._mask_name.match(path.name).group(2)
            layout[mask != 0] = self.label_space.class_id(part)
        return layout

    def read_image(self, sample: Sample, size: tuple[int, int]) -> np.ndarray:
        # Images are 1024² and masks 512² in the real data: same aspect, resized to the mask size.
        image = read_image_file(sample.image_file).convert("RGB")
        if image.height * size[1] != image.width * size[0]:
            raise InputError(
                f"{sample.image_file}: image is {image.height}x{image.width} but its masks are "
                f"{size[0]}x{size[1]}; an image and its masks must have the same aspect ratio "
                f"(re-extract the face, or remove its image and masks)"
            )
        if (image.height, image.width) != size:
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def open_dataset(dataset: str, root: str | Path, holdout_fraction: float = 0.1) -> DatasetReader:
    """The reader for `data.dataset` (cityscapes, cityscapes25k, idd, celeba) at `root`."""
    if dataset == "cityscapes":
        return CityscapesReader(root)
    if dataset == "cityscapes25k":
        return Cityscapes25kReader(root)
    if dataset == "idd":
        return IddReader(root)
    if dataset == "celeba":
        return CelebAReader(root, holdout_fraction)
    raise InputError(f"data.dataset = {dataset!r} is unknown; use one of: {', '.join(DATASETS)}")
