import json
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import levels_at
from data.labels import label_space
from data.prepared import crop_box, open_prepared_split, resize_pair
from formats import save_png
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
    write_params(data={"root": str(cityscapes_root), "height": 4, "width": 8}, image={"num_upsamplings": 2},
                 **levels_at(4))
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
        "label_encoding": "label_ids",
        "image": "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png",
    }
    assert len(open_prepared_split("outputs/prepared/val")) == 2


def test_prepare_is_byte_identical_when_rerun(cityscapes_root, write_params, tmp_path):
    write_params(data={"root": str(cityscapes_root), "height": 4, "width": 8}, image={"num_upsamplings": 2},
                 **levels_at(4))
    run_stage(prepare_main)
    first = {p.name: p.read_bytes() for p in (tmp_path / "outputs/prepared/train").iterdir()}
    run_stage(prepare_main)
    second = {p.name: p.read_bytes() for p in (tmp_path / "outputs/prepared/train").iterdir()}
    assert first == second
    assert json.loads(first["manifest.json"])["height"] == 4


def test_unused_dataset_files_change_nothing_and_the_manifest_says_how_each_label_was_read(
        cityscapes_root, write_params):
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, **levels_at(8))
    run_stage(prepare_main)
    plain = {p.name: p.read_bytes() for p in Path("outputs/prepared/train").iterdir()}

    # What gtFine ships beside each labelIds file; the instanceIds differ from it, so reading them would show.
    space = label_space("cityscapes")
    for label in sorted((cityscapes_root / "gtFine/train").rglob("*_gtFine_labelIds.png")):
        stem = label.name[: -len("_gtFine_labelIds.png")]
        ids = np.asarray(Image.open(label))
        Image.fromarray(space.colorize(ids)).convert("RGBA").save(label.with_name(f"{stem}_gtFine_color.png"))
        label.with_name(f"{stem}_gtFine_polygons.json").write_text('{"imgHeight": 8, "imgWidth": 16, "objects": []}')
        save_png(label.with_name(f"{stem}_gtFine_instanceIds.png"), np.full((8, 16), 26001, dtype=np.uint16))
    run_stage(prepare_main)
    assert {p.name: p.read_bytes() for p in Path("outputs/prepared/train").iterdir()} == plain

    # A frame of the other naming scheme, with only an instanceIds file: two cars on the road.
    label = cityscapes_root / "gtFine/train/aachen/aachen_000002_000019_gtFine_labelIds.png"
    instances = np.asarray(Image.open(label)).astype(np.uint16)
    instances[6:, :5], instances[6:, 9:] = 26000, 26001
    label.unlink()
    label.with_name("aachen_000002_000019_gtFine_instanceIds.png").unlink()
    save_png(label.with_name("aachen_000002_000019_gtFine_instanceIds.png"), instances)
    run_stage(prepare_main)
    train = open_prepared_split("outputs/prepared/train")
    assert train.layouts[1].tolist() == np.where(instances > 999, instances // 1000, instances).tolist()
    assert train.layouts[1, 7].tolist() == [26] * 5 + [7] * 4 + [26] * 7
    assert [(s["labels"], s["label_encoding"]) for s in train.manifest["samples"]] == [
        (["gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"], "label_ids"),
        (["gtFine/train/aachen/aachen_000002_000019_gtFine_instanceIds.png"], "instance_ids"),
        (["gtFine/train/bremen/bremen_000001_000019_gtFine_labelIds.png"], "label_ids"),
    ]
