"""File I/O shared by the stages: atomic outputs, byte-stable archives, image reading."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from data.errors import InputError


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary sibling folder that replaces `path` only if the block completes.

    A failed or killed run therefore never leaves a half-written output where DVC or the next
    stage would take it for a finished one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Like `np.savez`, but byte-identical for identical arrays.

    `np.savez` stamps each member with the current time; a fixed stamp keeps DVC hashes stable
    across runs of the same inputs. Arrays must not need pickle (no object dtype).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            array = np.asarray(array)
            if array.dtype == object:
                raise TypeError(f"{name}: object arrays would need pickle")
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    atomic_write_bytes(path, buffer.getvalue())


def read_image_file(path: Path) -> Image.Image:
    """Opens and fully decodes an image, turning any decoding failure into an InputError. The result's
    `format` is the file's real format, as PIL detects it from the content (not from the name)."""
    try:
        with Image.open(path) as image:
            image.load()
            decoded = image.copy()
            decoded.format = image.format
            return decoded
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; it was listed but is gone (was the dataset moved or "
                         f"changed while it was read?), rerun") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(
            f"{path}: cannot decode the image ({error}); the file is corrupt or truncated, "
            f"re-extract it from the dataset archive"
        ) from None


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """torch.save to a temporary file, then rename: a killed run never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, device="cpu") -> dict:
    """A checkpoint of plain tensors and values (no pickled objects)."""
    return torch.load(path, map_location=device, weights_only=True)
