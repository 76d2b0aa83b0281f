"""What every stage does around its work: load params, turn bad input into one error line."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from data.errors import InputError
from data.labels import LabelSpace
from data.io import atomic_write_bytes, load_checkpoint, save_checkpoint
from data.prepared import open_prepared_split
from data.training import Distributed, TrainingDiverged, start_processes, stop_processes
from image.chain import SynthesisChain
from image.train import to_model_images
from stages.params import Params, load_params


def run_stage(main: Callable[[Params], None]) -> None:
    try:
        main(load_params())
    except (InputError, TrainingDiverged) as error:
        print(f"error: {error}{restore_hint()}", file=sys.stderr)
        sys.exit(1)
    finally:
        stop_processes()


def restore_hint() -> str:
    """What a failed stage's error line adds under `dvc repro` (which names the stage in DVC_STAGE): DVC
    removed the stage's previous outputs before running it, and `dvc checkout` brings back the ones of
    its last successful run from the cache."""
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return ""
    return (f" (dvc repro removed the previous outputs of {stage}; `dvc checkout {stage}` restores those of "
            f"its last successful run)")


def class_id(space: LabelSpace, name: str, key: str) -> int:
    """The channel of a class named in params key `key`; an unknown name is an error listing the valid ones."""
    if name not in space.class_names:
        raise InputError(f"{key}: unknown class {name!r} for {space.name}; valid names: {', '.join(space.class_names)}")
    return space.class_id(name)


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


def start_training(params: Params, *batch_sizes: int) -> tuple[Distributed, torch.device, str]:
    """This process's place among the `processes` that the stage's command started (`stages.launch`; one
    by default), its device and the precision to train in: `params.precision` on a GPU, fp32 on a CPU
    (where bf16 autocast is slower). Every process trains on an equal share of each batch."""
    dist, device = start_processes(resolve_device(params.device))
    for size in batch_sizes:
        if size % dist.world_size:
            raise InputError(f"batch size {size} does not split over processes = {dist.world_size}; "
                             f"use batch sizes divisible by the process count")
    precision = params.precision if device.type == "cuda" else "fp32"
    if precision != params.precision and dist.main:
        print("precision = bf16 is used on GPUs only; this CPU run trains in fp32")
    return dist, device, precision


class ResumeFile:
    """The resume state of a training stage, which a killed run continues from.

    A state is resumed only if its fingerprint (the run's settings, starting files and code) matches.
    A completed run deletes it, so that a forced rerun trains again. It is not a DVC output: a declared
    one (even `persist`) that is missing makes DVC rerun the stage, and it is missing wherever DVC checks
    the outputs out from its cache (`dvc exp run --queue`, a fresh clone after `dvc pull`).
    """

    def __init__(self, path: Path, settings: dict, inputs: list[Path], code: list[Path]):
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
        for file in list(inputs) + sorted(code):
            digest.update(file.read_bytes())
        self.path, self.fingerprint = Path(path), digest.hexdigest()

    def load(self, device) -> dict | None:
        if not self.path.is_file():
            return None
        state = load_checkpoint(self.path, device)
        return state if state.get("fingerprint") == self.fingerprint else None

    def save(self, state: dict) -> None:
        save_checkpoint(self.path, {**state, "fingerprint": self.fingerprint})

    def complete(self) -> None:
        self.path.unlink(missing_ok=True)


def write_tsv(path: Path, rows: list[dict]) -> None:
    """Rows of a training log as a TSV file (a DVC plot); columns in order of first appearance."""
    def cell(value) -> str:
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["\t".join(columns)] + ["\t".join(cell(row.get(c, "")) for c in columns) for row in rows]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


FINETUNED = {"layout": "finetune", "partial": "finetune_partial"}  # kind -> the chain.<slot> of its fine-tuned chain


def chain_slots(kind: str, finetuned: bool) -> tuple[str, ...]:
    """The `chain.<slot>` folders a chain of `kind` (layout: the full generator, partial: the completor)
    is loaded from: its fine-tuning checkpoint, else the layout network's and the image synthesizer's."""
    return (FINETUNED[kind],) if finetuned else (kind, "image")


def network_checkpoint(params: Params, slot: str) -> Path:
    """The checkpoint in folder `chain.<slot>`; the layout networks' folders hold one folder per level."""
    folder = Path(getattr(params.chain, slot))
    if slot in ("layout", "partial"):
        return folder / str(getattr(params, slot).final_level) / "checkpoint.pt"
    return folder / "checkpoint.pt"


def chain_available(params: Params, kind: str, finetuned: bool) -> bool:
    """False when a folder of the chain exists without its network (an import of a release that has no
    completor, say); a folder that does not exist is an error of `chain_checkpoints`."""
    return all(network_checkpoint(params, slot).is_file() or not Path(getattr(params.chain, slot)).is_dir()
               for slot in chain_slots(kind, finetuned))


def chain_checkpoints(params: Params, kind: str = "layout", finetuned: bool | None = None) -> list[Path]:
    """The checkpoints of the palette -> layout -> image chain of `kind` (`chain.finetuned` unless given).
    A missing one is an error naming the stage that writes it, or the params key that names its folder."""
    finetuned = params.chain.finetuned if finetuned is None else finetuned
    paths = []
    for slot in chain_slots(kind, finetuned):
        path, folder = network_checkpoint(params, slot), getattr(params.chain, slot)
        if not path.is_file():
            stage = f"{slot}@{getattr(params, slot).final_level}" if slot in ("layout", "partial") else slot
            fix = (f"run `dvc repro {stage}`" if Path(folder) == Path("outputs") / slot else
                   f"chain.{slot} = {folder} does not hold that network; name the folder that does")
            if finetuned:
                fix += ", or set chain.finetuned: false to use the networks fine-tuning starts from"
            raise InputError(f"{path} not found; {fix}")
        paths.append(path)
    return paths


def load_synthesis_chain(params: Params, kind: str = "layout", device="cpu",
                         finetuned: bool | None = None) -> SynthesisChain:
    """The chain of `chain_checkpoints`; a SEAN chain takes its styles from the prepared train images."""
    checkpoints = chain_checkpoints(params, kind, finetuned)
    if len(checkpoints) == 1:
        chain = SynthesisChain.from_finetune(checkpoints[0], device)
    else:
        chain = SynthesisChain.from_stages(*checkpoints, device)
    if chain.image.styled:
        chain.style_images = to_model_images(np.array(open_prepared_split("outputs/prepared/train").images))
    return chain
