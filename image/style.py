"""SEAN style banks: per-image, per-class style codes pooled from real images, and their class means.

A bank is a folder with `bank.npz` (plain arrays: `codes` N×C×S, `present` N×C, `means` C×S) and
`index.csv` (one row per image: its key and the classes it contains), so it opens without pickle.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.errors import InputError
from data.io import atomic_write_bytes, save_npz
from image.networks import SEANGenerator
from layout.layouts import one_hot


@dataclass(frozen=True)
class StyleBank:
    class_names: list[str]
    keys: list[str]  # the image each row of codes comes from
    codes: np.ndarray  # N×C×S float32, zero where the class is absent
    present: np.ndarray  # N×C bool

    @property
    def means(self) -> np.ndarray:
        """C×S: each class's code averaged over the images containing it (zero for classes never seen)."""
        counts = self.present.sum(axis=0)
        sums = (self.codes * self.present[..., None]).sum(axis=0)
        return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)

    def random_styles(self, rng: np.random.Generator, together: tuple[tuple[int, int], ...] = ()) -> np.ndarray:
        """C×S: each class's code from a random image containing it (the class mean where none does).
        Each pair of classes in `together` (e.g. the two eyes) comes from one image containing both."""
        styles = self.means.copy()
        for c in range(len(self.class_names)):
            rows = np.flatnonzero(self.present[:, c])
            if len(rows):
                styles[c] = self.codes[rng.choice(rows), c]
        for a, b in together:
            rows = np.flatnonzero(self.present[:, a] & self.present[:, b])
            if len(rows):
                row = rng.choice(rows)
                styles[[a, b]] = self.codes[row, [a, b]]
        return styles

    def save(self, folder: Path) -> None:
        save_npz(folder / "bank.npz", codes=self.codes, present=self.present, means=self.means,
                 class_names=np.array(self.class_names))
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["row", "key", "classes"])
        for row, (key, present) in enumerate(zip(self.keys, self.present)):
            writer.writerow([row, key, ";".join(name for name, here in zip(self.class_names, present) if here)])
        atomic_write_bytes(folder / "index.csv", text.getvalue().encode())

    @classmethod
    def load(cls, folder: str | Path) -> "StyleBank":
        folder = Path(folder)
        if not (folder / "bank.npz").is_file() or not (folder / "index.csv").is_file():
            raise InputError(f"{folder} is not a style bank (bank.npz and index.csv); run `dvc repro style@train` "
                             f"with image.model: sean and style.splits: [train]")
        with np.load(folder / "bank.npz", allow_pickle=False) as arrays:
            codes, present, class_names = arrays["codes"], arrays["present"], arrays["class_names"]
        with open(folder / "index.csv", newline="") as f:
            keys = [row["key"] for row in csv.DictReader(f)]
        if len(keys) != len(codes):
            raise InputError(f"{folder}: index.csv lists {len(keys)} images but bank.npz has {len(codes)}; "
                             f"re-run the style stage")
        return cls([str(name) for name in class_names], keys, codes, present)


@torch.no_grad()
def extract_styles(generator: SEANGenerator, labels: np.ndarray, images: torch.Tensor, *, batch_size: int = 32,
                   device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Style codes (N×C×S) and class presence (N×C) of real (layout ids N×H×W, image N×3×H×W in [-1, 1])
    pairs, unmirrored (the authors' random mirroring swapped left and right parts)."""
    generator.eval()
    codes, present = [], []
    for start in range(0, len(labels), batch_size):
        layouts = one_hot(torch.from_numpy(np.array(labels[start:start + batch_size])), generator.num_classes)
        codes.append(generator.encode(images[start:start + batch_size].to(device), layouts.to(device)).cpu())
        present.append(layouts.sum(dim=(2, 3)) > 0)
    return torch.cat(codes).numpy().astype(np.float32), torch.cat(present).numpy()
