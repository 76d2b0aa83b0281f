"""What every stage does around its work: load params, turn bad input into one error line."""
from __future__ import annotations

import sys
from typing import Callable

import torch

from data.errors import InputError
from stages.params import Params, load_params


def run_stage(main: Callable[[Params], None]) -> None:
    try:
        main(load_params())
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when present, else CPU; anything else is passed to torch (`cpu`, `cuda:1`)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"device = {name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device = {name!r} but CUDA is not available here; use auto or cpu")
    return device
