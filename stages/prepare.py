"""`prepare` stage: a dataset in its official layout -> `outputs/prepared/{train,val}` at the
working resolution (layouts, images, palettes, manifest)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data.io import atomic_output_dir
from data.prepared import write_prepared_split
from data.readers import SPLITS, open_dataset
from palette.palette import palettes_from_layouts
from stages.common import run_stage
from stages.params import Params

OUT = Path("outputs/prepared")


def main(params: Params) -> None:
    data = params.data
    reader = open_dataset(data.dataset, data.root, params.prepare.holdout_fraction)
    with atomic_output_dir(OUT) as folder:
        for split in SPLITS:
            (folder / split).mkdir()
            layouts = write_prepared_split(reader, split, folder / split, height=data.height, width=data.width,
                                           crop=params.prepare.crop, dataset=data.dataset)
            palettes = palettes_from_layouts(layouts, reader.label_space.num_classes)
            np.save(folder / split / "palettes.npy", palettes)
            print(f"prepare: {split}: {len(layouts)} pairs at {data.height}x{data.width} "
                  f"({reader.label_space.name}, {reader.label_space.num_classes} classes)")


if __name__ == "__main__":
    run_stage(main)
