"""Label spaces: which class each channel of a layout or palette is.

The channel index is the dataset's raw label id as stored on disk (the authors' convention): void
classes are real channels, and every pixel counts in the class proportions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelSpace:
    name: str
    class_names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    eval_ids: tuple[int, ...]  # channels scored by mIoU and the palette metrics
    thing_ids: tuple[int, ...]  # channels with instances

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_id(self, name: str) -> int:
        """Channel of a class given by name; the error lists the valid names."""
        try:
            return self.class_names.index(name)
        except ValueError:
            raise ValueError(
                f"unknown class name {name!r} for the {self.name} label space; "
                f"valid names are: {', '.join(self.class_names)}"
            ) from None

    def colorize(self, layout: np.ndarray) -> np.ndarray:
        """H×W label ids -> H×W×3 uint8 colours."""
        return np.asarray(self.colors, dtype=np.uint8)[layout]


def _cityscapes() -> LabelSpace:
    # The class table comes from torchvision rather than being retyped. License plate has id -1 there
    # (it is never drawn in labelIds); the authors give it the last channel, 34.
    from torchvision.datasets import Cityscapes

    by_id = sorted(Cityscapes.classes, key=lambda c: c.id if c.id >= 0 else len(Cityscapes.classes))
    assert [c.id for c in by_id[:-1]] == list(range(34)), "unexpected torchvision Cityscapes table"
    return LabelSpace(
        name="cityscapes",
        class_names=tuple(c.name for c in by_id),
        colors=tuple(tuple(c.color) for c in by_id),
        eval_ids=tuple(i for i, c in enumerate(by_id) if c.train_id not in (255, -1)),
        thing_ids=tuple(i for i, c in enumerate(by_id) if c.has_instances),
    )


# AutoNUE's `id` column (helpers/anue_labels.py of the AutoNUE public code): name, level-3 id
# (255 = void), colour, has instances, ignored in evaluation. The authors use these 40 ids as
# channels; the level-3 id is kept so results can also be reported on the 26 level-3 classes.
_IDD_TABLE = (
    ("road", 0, (128, 64, 128), False, False),
    ("parking", 1, (250, 170, 160), False, False),
    ("drivable fallback", 1, (81, 0, 81), False, False),
    ("sidewalk", 2, (244, 35, 232), False, False),
    ("rail track", 3, (230, 150, 140), False, False),
    ("non-drivable fallback", 3, (152, 251, 152), False, False),
    ("person", 4, (220, 20, 60), True, False),
    ("animal", 4, (246, 198, 145), True, True),
    ("rider", 5, (255, 0, 0), True, False),
    ("motorcycle", 6, (0, 0, 230), True, False),
    ("bicycle", 7, (119, 11, 32), True, False),
    ("autorickshaw", 8, (255, 204, 54), True, False),
    ("car", 9, (0, 0, 142), True, False),
    ("truck", 10, (0, 0, 70), True, False),
    ("bus", 11, (0, 60, 100), True, False),
    ("caravan", 12, (0, 0, 90), True, True),
    ("trailer", 12, (0, 0, 110), True, True),
    ("train", 12, (0, 80, 100), True, True),
    ("vehicle fallback", 12, (136, 143, 153), True, False),
    ("curb", 13, (220, 190, 40), False, False),
    ("wall", 14, (102, 102, 156), False, False),
    ("fence", 15, (190, 153, 153), False, False),
    ("guard rail", 16, (180, 165, 180), False, False),
    ("billboard", 17, (174, 64, 67), False, False),
    ("traffic sign", 18, (220, 220, 0), False, False),
    ("traffic light", 19, (250, 170, 30), False, False),
    ("pole", 20, (153, 153, 153), False, False),
    ("polegroup", 20, (153, 153, 153), False, False),
    ("obs-str-bar-fallback", 21, (169, 187, 214), False, False),
    ("building", 22, (70, 70, 70), False, False),
    ("bridge", 23, (150, 100, 100), False, False),
    ("tunnel", 23, (150, 120, 90), False, False),
    ("vegetation", 24, (107, 142, 35), False, False),
    ("sky", 25, (70, 130, 180), False, False),
    ("fallback background", 25, (169, 187, 214), False, False),
    ("unlabeled", 255, (0, 0, 0), False, True),
    ("ego vehicle", 255, (0, 0, 0), False, True),
    ("rectification border", 255, (0, 0, 0), False, True),
    ("out of roi", 255, (0, 0, 0), False, True),
    ("license plate", 255, (0, 0, 142), False, True),
)

IDD_LEVEL3_IDS = tuple(row[1] for row in _IDD_TABLE)

# The authors count the IDD thing classes as ids 6..18 (person .. vehicle fallback).
IDD = LabelSpace(
    name="idd",
    class_names=tuple(row[0] for row in _IDD_TABLE),
    colors=tuple(row[2] for row in _IDD_TABLE),
    eval_ids=tuple(i for i, row in enumerate(_IDD_TABLE) if not row[4]),
    thing_ids=tuple(i for i, row in enumerate(_IDD_TABLE) if row[3]),
)

# CelebAMask-HQ: channel 0 is the background, 1..18 the annotated parts in the order of the
# dataset's mask files (a later part overwrites an earlier one where both are drawn).
CELEBA_PARTS = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
CELEBA = LabelSpace(
    name="celeba",
    class_names=("background",) + CELEBA_PARTS,
    colors=(
        (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204),
        (0, 255, 255), (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0),
        (0, 0, 153), (0, 0, 204), (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51),
        (0, 204, 0),
    ),
    eval_ids=tuple(range(19)),
    thing_ids=(),
)

_CITYSCAPES: LabelSpace | None = None


def label_space(name: str) -> LabelSpace:
    """The label space by name: `cityscapes`, `idd` or `celeba`."""
    global _CITYSCAPES
    if name == "cityscapes":
        if _CITYSCAPES is None:
            _CITYSCAPES = _cityscapes()
        return _CITYSCAPES
    if name == "idd":
        return IDD
    if name == "celeba":
        return CELEBA
    raise ValueError(f"unknown label space {name!r}; expected one of: cityscapes, idd, celeba")
