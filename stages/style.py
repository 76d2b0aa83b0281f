"""`style@<split>` stage: SEAN style codes of every image of a prepared split, and their class means.

    python -m stages.style train

The SEAN generator is that of the folder `chain.image`. Writes `outputs/style/<split>/bank.npz` and `index.csv` (see `image.style`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from data.errors import InputError
from data.io import atomic_output_dir
from data.prepared import open_prepared_split
from image.style import StyleBank, extract_styles
from image.train import load_image_model, to_model_images
from stages.common import network_checkpoint, resolve_device, run_stage
from stages.params import Params

PREPARED = Path("outputs/prepared")


def main(params: Params) -> None:
    if len(sys.argv) != 2:
        raise InputError("usage: python -m stages.style SPLIT (train or val)")
    split = sys.argv[1]
    if params.image.model != "sean":
        raise InputError(f"style banks need SEAN style codes but image.model = {params.image.model!r}; "
                         f"set image.model: sean, or style.splits: [] for SPADE")
    if params.style.batch_size < 1:
        raise InputError(f"style.batch_size = {params.style.batch_size}; it must be at least 1")
    if not (PREPARED / split).is_dir():
        raise InputError(f"no prepared split {split!r} in {PREPARED}; style.splits can name: train, val")
    device = resolve_device(params.device)
    prepared = open_prepared_split(PREPARED / split)
    model = load_image_model(network_checkpoint(params, "image"), device)
    codes, present = extract_styles(model.generator, prepared.layouts, to_model_images(np.array(prepared.images)),
                                    batch_size=params.style.batch_size, device=device)
    bank = StyleBank(list(prepared.manifest["class_names"]), [s["key"] for s in prepared.manifest["samples"]],
                     codes, present)
    with atomic_output_dir(Path("outputs/style") / split) as folder:
        bank.save(folder)
    print(f"style: {len(codes)} images x {codes.shape[1]} classes x {codes.shape[2]} dims from {split}; "
          f"{int(present.any(axis=0).sum())} classes seen")


if __name__ == "__main__":
    run_stage(main)
