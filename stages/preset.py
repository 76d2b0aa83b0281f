"""Applies a preset (a partial params file) and `key=value` overrides to params.yaml, keeping its
comments; the result is validated before anything is written.

    python -m stages.preset presets/cityscapes-128x256.yaml data.root=/path/to/cityscapes

A preset's `layout.schedule` replaces the current one whole (it defines which levels exist).
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import yaml
from ruamel.yaml import YAML

from data.errors import InputError
from data.io import atomic_write_bytes
from stages.layout import check_params
from stages.params import load_params

PARAMS = Path("params.yaml")
REPLACED_WHOLE = {"schedule"}


def merge(base, override) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key not in REPLACED_WHOLE:
            merge(base[key], value)
        else:
            base[key] = value


def set_key(params, dotted: str, value: str) -> None:
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        if not isinstance(node.get(key), dict):
            raise InputError(f"{dotted}: {key!r} is not a params section")
        node = node[key]
    node[last] = yaml.safe_load(value)


def main(arguments: list[str]) -> None:
    if not arguments or "=" in arguments[0]:
        raise InputError("usage: python -m stages.preset PRESET.yaml [key=value ...]")
    preset_path = Path(arguments[0])
    if not preset_path.is_file():
        raise InputError(f"{preset_path} not found; the presets are in presets/")
    loader = YAML()
    params = loader.load(PARAMS.read_text())
    merge(params, yaml.safe_load(preset_path.read_text()))
    for assignment in arguments[1:]:
        key, _, value = assignment.partition("=")
        set_key(params, key, value)
    buffer = io.StringIO()
    loader.dump(params, buffer)
    candidate = PARAMS.with_name(".params.preset.yaml")
    candidate.write_text(buffer.getvalue())
    try:
        loaded = load_params(candidate)
        for kind in ("layout", "partial"):
            check_params(loaded, kind)
    finally:
        candidate.unlink()
    atomic_write_bytes(PARAMS, buffer.getvalue().encode())
    print(f"params.yaml: applied {preset_path}" + (f" with {' '.join(arguments[1:])}" if arguments[1:] else ""))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
