"""`toy` stage: writes the embedded toy datasets, toy city (Cityscapes format) and toy faces
(CelebAMask-HQ format), which the default pipeline reads through the real datasets' readers."""
from __future__ import annotations

from data.errors import InputError
from data.io import atomic_output_dir
from data.toy_city import write_toy_city
from data.toy_faces import write_toy_faces
from stages.common import run_stage
from stages.params import Params

CITY_ROOT = "datasets/toycity"
FACES_ROOT = "datasets/toyfaces"


def main(params: Params) -> None:
    toy = params.toy
    for key in ("city_train", "city_val", "faces_count"):
        if getattr(toy, key) < 1:
            raise InputError(f"toy.{key} = {getattr(toy, key)}; it must be at least 1")
    if toy.city_height < 32 or toy.city_width < 64 or toy.faces_size < 32:
        raise InputError("toy.city_height >= 32, toy.city_width >= 64 and toy.faces_size >= 32 are needed to draw the scenes")
    with atomic_output_dir(CITY_ROOT) as folder:
        write_toy_city(folder, seed=params.seed, train_count=toy.city_train, val_count=toy.city_val,
                       height=toy.city_height, width=toy.city_width)
    with atomic_output_dir(FACES_ROOT) as folder:
        write_toy_faces(folder, seed=params.seed, count=toy.faces_count, size=toy.faces_size)
    print(f"toy: {toy.city_train}+{toy.city_val} street scenes in {CITY_ROOT}, {toy.faces_count} faces in {FACES_ROOT}")


if __name__ == "__main__":
    run_stage(main)
