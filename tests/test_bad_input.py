"""Every kind of bad input stops with one line naming the file or value, exit 1, and no output."""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, levels_at
from formats import random_image, save_png
from stages.common import run_stage
from stages.palette import main as palette_main
from stages.prepare import main as prepare_main

LABEL = "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
IMAGE = "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"


def fails_cleanly(main, capsys, *expected: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_stage(main)
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.splitlines()  # progress bars come first
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 1 and errors[0] == lines[-1] and errors[0].startswith("error: "), lines
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def no_output_left(folder: str) -> bool:
    parent = Path(folder).parent
    return not Path(folder).exists() and not (parent.exists() and any(parent.glob(f".{Path(folder).name}.tmp-*")))


def prepare_fails(capsys, *expected):
    fails_cleanly(prepare_main, capsys, *expected)
    assert no_output_left("outputs/prepared")


def test_missing_dataset_folder(write_params, tmp_path, capsys):
    write_params(data={"root": str(tmp_path / "nowhere")})
    prepare_fails(capsys, "dataset folder not found", "nowhere", "data.root")


def test_dataset_folder_without_the_expected_layout(write_params, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    write_params(data={"root": str(tmp_path / "empty")})
    prepare_fails(capsys, "dataset folder not found", "gtFine")


def test_image_without_label(cityscapes_root, write_params, capsys):
    (cityscapes_root / LABEL).unlink()
    write_params(data={"root": str(cityscapes_root)})
    prepare_fails(capsys, "image without label", "aachen_000000_000019_leftImg8bit.png")


def test_label_without_image(cityscapes_root, write_params, capsys):
    (cityscapes_root / IMAGE).unlink()
    write_params(data={"root": str(cityscapes_root)})
    prepare_fails(capsys, "label without image", "aachen_000000_000019_gtFine_labelIds.png")


def test_label_id_outside_the_label_space(cityscapes_root, write_params, capsys):
    labels = np.full((8, 16), 7, dtype=np.uint8)
    labels[3, 4] = 40
    save_png(cityscapes_root / LABEL, labels)
    write_params(data={"root": str(cityscapes_root)})
    prepare_fails(capsys, "label id 40 is outside the cityscapes label space", "aachen_000000_000019_gtFine_labelIds.png")


def test_image_and_label_of_different_sizes(cityscapes_root, write_params, capsys):
    save_png(cityscapes_root / IMAGE, random_image(np.random.default_rng(0), 8, 18))
    write_params(data={"root": str(cityscapes_root)})
    prepare_fails(capsys, "image is 8x18 but its label", "is 8x16", IMAGE.split("/")[-1])


def test_corrupt_png(cityscapes_root, write_params, capsys):
    path = cityscapes_root / LABEL
    path.write_bytes(path.read_bytes()[:40])
    write_params(data={"root": str(cityscapes_root)})
    prepare_fails(capsys, "cannot decode the image", "aachen_000000_000019_gtFine_labelIds.png", "corrupt")


def test_empty_split(cityscapes_root, write_params, capsys):
    for path in (cityscapes_root / "gtFine/val").rglob("*.png"):
        path.unlink()
    for path in (cityscapes_root / "leftImg8bit/val").rglob("*.png"):
        path.unlink()
    write_params(data={"root": str(cityscapes_root)})
    prepare_fails(capsys, "the val split of", "is empty")


def test_the_command_line_prints_one_line_and_exits_non_zero(write_params, tmp_path):
    write_params(data={"root": str(tmp_path / "nowhere")})
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "stages.prepare"], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: dataset folder not found") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("palette, expected", [
    ({"min_components": 0}, "palette.min_components = 0"),
    ({"min_components": 3, "max_components": 2}, "palette.max_components = 2 is below"),
    ({"max_components": 4}, "palette.max_components = 4 exceeds the 3 train palettes"),
    ({"n_init": 0}, "palette.n_init = 0"),
    ({"reg_covar": 0.0}, "palette.reg_covar = 0.0"),
    ({"min_proportions": {"car": 1.5}}, "palette.min_proportions:car = 1.5"),
    ({"min_proportions": {"car": 0.6, "road": 0.5}}, "add up to 1.1"),
    ({"min_proportions": {"cars": 0.1}}, "palette.min_proportions: unknown class 'cars'"),
    ({"removed_classes": ["sky"], "min_proportions": {"sky": 0.1}}, "'sky' is both in palette.removed_classes"),
])
def test_palette_params_out_of_range(cityscapes_root, write_params, capsys, palette, expected):
    write_params(data={"root": str(cityscapes_root), "height": 4, "width": 8}, image={"num_upsamplings": 2},
                 palette={"max_components": 2, **palette}, **levels_at(4))
    run_stage(prepare_main)
    capsys.readouterr()
    fails_cleanly(palette_main, capsys, expected)
    assert no_output_left("outputs/palette") and not Path("metrics/palette.json").exists()


def jpeg_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_jpeg_saved_under_a_label_png_name_is_refused(cityscapes_root, write_params, capsys):
    labels = np.full((8, 16), 7, dtype=np.uint8)
    labels[:3] = 23
    (cityscapes_root / LABEL).write_bytes(jpeg_bytes(labels))
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, **levels_at(8))
    prepare_fails(capsys, LABEL.split("/")[-1], "holds a JPEG image", "lossy", "label-id PNG")


@pytest.mark.parametrize("mode, found", [
    ("RGB", "3 channels (mode RGB)"),
    ("RGBA", "4 channels (mode RGBA)"),
    ("LA", "2 channels (mode LA)"),
    ("1", "a mode 1 PNG"),
])
def test_a_multi_channel_or_colour_label_of_the_right_size_names_its_mode(cityscapes_root, write_params, capsys,
                                                                            mode, found):
    Image.fromarray(np.full((8, 16), 7, dtype=np.uint8)).convert(mode).save(cityscapes_root / LABEL)
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, **levels_at(8))
    message = fails_cleanly(prepare_main, capsys, LABEL.split("/")[-1], found, "one channel")
    assert "but its label" not in message  # not a size mismatch of two equal sizes
    assert no_output_left("outputs/prepared")


def test_a_16_bit_label_id_file_is_not_decoded_as_instance_ids(cityscapes_root, write_params, capsys):
    labels = np.full((8, 16), 7, dtype=np.uint16)
    labels[2, 3] = 5000  # class 5 if it were read as an instance id
    save_png(cityscapes_root / LABEL, labels)
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, **levels_at(8))
    prepare_fails(capsys, "label id 5000 is outside the cityscapes label space", "instance ids only in *_instanceIds.png files")


@pytest.mark.parametrize("sections, expected", [
    ({"data": {"height": 30, "width": 60}}, "data.height = 30; the layout levels double from 4"),
    ({"data": {"height": 2, "width": 4}}, "data.height = 2, data.width = 4; both must be at least 4"),
    ({"data": {"width": 80}}, "data.width / data.height = 80/32; the layout synthesizer needs an integer"),
    ({"layout": {"final_level": 24}}, "layout.final_level = 24; use a power of two from 4"),
    ({"partial": {"final_level": 16}}, "partial.schedule has levels ['4', '8', '16', '32']; it must have exactly"),
    ({"layout": {"schedule": {"4": {"previous": "init", "steps": 1, "batch_size": 1},
                              "8": {"previous": "init", "steps": 1, "batch_size": 1},
                              "16": {"previous": "8", "steps": 1, "batch_size": 1},
                              "32": {"previous": "16", "steps": 1, "batch_size": 1}}}},
     "layout.schedule.8.previous = 'init'; it must be '4'"),
    ({"data": {"height": 64, "width": 128}}, "layout.final_level = 32 but the images are 64 pixels high"),
    ({"image": {"num_upsamplings": 6}}, "image.num_upsamplings = 6 needs data.height and data.width divisible by 64"),
])
def test_a_resolution_or_level_that_a_later_stage_refuses_stops_prepare(cityscapes_root, write_params, capsys,
                                                                        sections, expected):
    write_params(**{**sections, "data": {"root": str(cityscapes_root), **sections.get("data", {})}})
    prepare_fails(capsys, expected)
