import json

import numpy as np

from data.prepared import crop_box, open_prepared_split, resize_pair
from stages.common import run_stage
from stages.prepare import main as prepare_main


def test_label_resizing_samples_pixel_centres_like_nearest_exact():
    layout = np.arange(8, dtype=np.uint8)[None].repeat(4, 0)  # columns 0..7
    image = np.zeros((4, 8, 3), dtype=np.uint8)
    small, _ = resize_pair(layout, image, 2, 4, "top")
    assert small[0].tolist() == [1, 3, 5, 7]  # floor((i + 0.5) * 2)


def test_crop_box_for_idd_frames_keeps_the_top_or_the_centre():
    assert crop_box(720, 1280, 2.0, "top") == (0, 0, 1280, 640)
    assert crop_box(720, 1280, 2.0, "center") == (0, 40, 1280, 680)
    assert crop_box(1024, 2048, 2.0, "top") == (0, 0, 2048, 1024)
    assert crop_box(100, 300, 2.0, "top") == (50, 0, 250, 100)


def test_prepare_writes_memory_mappable_splits_with_palettes(cityscapes_root, write_params):
    write_params(data={"root": str(cityscapes_root), "height": 4, "width": 8})
    run_stage(prepare_main)
    train = open_prepared_split("outputs/prepared/train")
    assert train.layouts.shape == (3, 4, 8) and train.layouts.dtype == np.uint8
    assert train.images.shape == (3, 4, 8, 3) and train.images.dtype == np.uint8
    assert train.palettes.shape == (3, 35) and train.palettes.dtype == np.float32
    assert isinstance(train.layouts, np.memmap)
    # aachen_000000 has 2 sky rows of 8, i.e. 1 of 4 after halving: sky = 1/4, road = 3/4
    assert train.palettes[0, 23] == 0.25 and train.palettes[0, 7] == 0.75
    np.testing.assert_allclose(train.palettes.sum(1), 1.0, rtol=1e-6)
    manifest = train.manifest
    assert manifest["label_space"] == "cityscapes" and manifest["count"] == 3
    assert manifest["samples"][0] == {
        "key": "aachen_000000_000019",
        "labels": ["gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"],
        "image": "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png",
    }
    assert len(open_prepared_split("outputs/prepared/val")) == 2


def test_prepare_is_byte_identical_when_rerun(cityscapes_root, write_params, tmp_path):
    write_params(data={"root": str(cityscapes_root), "height": 4, "width": 8})
    run_stage(prepare_main)
    first = {p.name: p.read_bytes() for p in (tmp_path / "outputs/prepared/train").iterdir()}
    run_stage(prepare_main)
    second = {p.name: p.read_bytes() for p in (tmp_path / "outputs/prepared/train").iterdir()}
    assert first == second
    assert json.loads(first["manifest.json"])["height"] == 4
