"""Writers of tiny files in each dataset's real on-disk format, for test fixtures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        Image.fromarray(array).save(path)  # I;16 PNG
    else:
        Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_cityscapes_pair(root: Path, split: str, stem: str, labels: np.ndarray, rng, kind="labelIds") -> None:
    city = stem.split("_")[0]
    save_png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", random_image(rng, *labels.shape))
    if kind == "labelIds":
        save_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", labels.astype(np.uint8))
    else:
        save_png(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png", labels.astype(np.uint16))


def write_celeba_face(root: Path, k: int, parts: dict[str, np.ndarray], image: np.ndarray) -> None:
    for part, mask in parts.items():
        save_png(root / "CelebAMask-HQ-mask-anno" / str(k // 2000) / f"{k:05d}_{part}.png", mask.astype(np.uint8) * 255)
    path = root / "CelebA-HQ-img" / f"{k}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=95)
