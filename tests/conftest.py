"""Tiny datasets written in each real on-disk format, and a params.yaml builder."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from formats import random_image, save_png, write_celeba_face, write_cityscapes_pair

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cityscapes_root(tmp_path) -> Path:
    """Cityscapes fine: 3 train pairs over 2 cities, 2 val pairs, 8×16 labels with known content."""
    rng = np.random.default_rng(0)
    root = tmp_path / "cityscapes"
    for i, stem in enumerate(["bremen_000001_000019", "aachen_000000_000019", "aachen_000002_000019"]):
        labels = np.full((8, 16), 7)  # road
        labels[: 2 + i] = 23  # sky
        write_cityscapes_pair(root, "train", stem, labels, rng)
    for stem in ["lindau_000000_000019", "lindau_000001_000019"]:
        write_cityscapes_pair(root, "val", stem, np.full((8, 16), 11), rng)
    return root


@pytest.fixture
def idd_root(tmp_path) -> Path:
    """IDD after AutoNUE's createLabels (`id` encoding): frame names repeat across folders."""
    rng = np.random.default_rng(1)
    root = tmp_path / "idd"
    for split, folders in (("train", ["0", "1"]), ("val", ["2"])):
        for folder in folders:
            labels = np.full((9, 16), 33, dtype=np.uint8)  # sky
            labels[5:] = 0  # road
            save_png(root / "gtFine" / split / folder / "000123_gtFine_labelids.png", labels)
            save_png(root / "leftImg8bit" / split / folder / "000123_leftImg8bit.png", random_image(rng, 9, 16))
    return root


@pytest.fixture
def celeba_root(tmp_path) -> Path:
    """10 faces with 8×8 masks and 16×16 images; skin everywhere, hair over the top rows."""
    rng = np.random.default_rng(2)
    root = tmp_path / "celeba"
    for k in range(10):
        skin = np.ones((8, 8), dtype=bool)
        hair = np.zeros((8, 8), dtype=bool)
        hair[:3] = True
        write_celeba_face(root, k, {"skin": skin, "hair": hair}, random_image(rng, 16, 16))
    return root


def load_default_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def levels_at(height: int) -> dict:
    """`layout` and `partial` overrides whose levels end at `height` (params.yaml's schedules cut there),
    which every stage accepts together with `data.height = height`."""
    defaults = load_default_params()
    return {kind: {"final_level": height,
                   "schedule": {h: level for h, level in defaults[kind]["schedule"].items() if int(h) <= height}}
            for kind in ("layout", "partial")}


@pytest.fixture
def write_params(tmp_path, monkeypatch):
    """Writes params.yaml (the repo defaults with overrides) into a fresh working folder and enters it."""
    monkeypatch.chdir(tmp_path)

    def write(**sections) -> Path:
        params = copy.deepcopy(load_default_params())
        for section, values in sections.items():
            if isinstance(values, dict):
                params[section].update(values)
            else:
                params[section] = values
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        return path

    return write


@pytest.fixture
def kill_after_checkpoint(monkeypatch):
    """`arm(step)` makes a stage stop (KeyboardInterrupt) right after saving its resume state at `step`,
    as if killed; it returns a function that disarms it."""
    import stages.common

    real_save = stages.common.save_checkpoint

    def arm(step: int):
        def save_then_die(path, payload):
            real_save(path, payload)
            if payload.get("step") == step:
                raise KeyboardInterrupt

        monkeypatch.setattr(stages.common, "save_checkpoint", save_then_die)
        return lambda: monkeypatch.setattr(stages.common, "save_checkpoint", real_save)

    return arm


def assert_pinned(values: dict, expected: dict, rel: float = 1e-4, abs: float = 1e-6) -> None:
    """`values` has exactly the keys of `expected`, each within `rel` (or `abs`, for terms near zero) of the
    value pinned for the fixed seed. CPU float32 sums differ in the last bits between processors and
    thread counts, so pins are not exact; a change of behaviour moves these numbers by far more."""
    assert set(values) == set(expected)
    assert {k: values[k] for k in expected} == pytest.approx(expected, rel=rel, abs=abs)


def tsv_row(path, index: int, *columns: str) -> dict:
    """Row `index` of a training log (metrics/*.tsv), the named columns as floats."""
    lines = Path(path).read_text().splitlines()
    header, row = lines[0].split("\t"), lines[1:][index].split("\t")
    return {column: float(row[header.index(column)]) for column in columns}
