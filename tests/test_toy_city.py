"""Toy city: Cityscapes layout, determinism, label/instance consistency and scene statistics."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.labels import label_space
from data.toy_city import (
    BUILDING, CAR, DRAWN_IDS, EGO_VEHICLE, FENCE, PERSON, POLE, ROAD, SCENE_TYPES, SIDEWALK, SKY,
    TERRAIN, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, WALL, render_city_scene, write_toy_city,
)

CITY = label_space("cityscapes")
H, W = 64, 128
TRAIN, VAL = 9, 4
SEED = 1  # with these counts every scene type occurs in the written set

NAME = re.compile(r"^(downtown|suburb|highway)_(\d{6})_000019_leftImg8bit\.png$")
GT_SUFFIXES = ("_gtFine_labelIds.png", "_gtFine_instanceIds.png", "_gtFine_color.png")


def _write(root: Path, seed: int = SEED, train: int = TRAIN, val: int = VAL, height: int = H, width: int = W) -> Path:
    write_toy_city(root, seed=seed, train_count=train, val_count=val, height=height, width=width)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("toycity") / "root")


@pytest.fixture(scope="module")
def scenes() -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    return {t: [render_city_scene(np.random.default_rng([7, k, i]), H, W, t) for i in range(12)]
            for k, t in enumerate(SCENE_TYPES)}


def test_label_ids_are_the_cityscapes_ones():
    names = {EGO_VEHICLE: "ego vehicle", ROAD: "road", SIDEWALK: "sidewalk", BUILDING: "building",
             WALL: "wall", FENCE: "fence", POLE: "pole", TRAFFIC_LIGHT: "traffic light",
             TRAFFIC_SIGN: "traffic sign", VEGETATION: "vegetation", TERRAIN: "terrain", SKY: "sky",
             PERSON: "person", CAR: "car"}
    assert {CITY.class_id(name): i for i, name in names.items()} == {i: i for i in names}
    assert set(names) == set(DRAWN_IDS)
    assert CAR in CITY.thing_ids and PERSON in CITY.thing_ids


def test_layout_and_names(dataset):
    for split, count in (("train", TRAIN), ("val", VAL)):
        images = sorted((dataset / "leftImg8bit" / split).glob("*/*"))
        seqs = []
        for path in images:
            m = NAME.match(path.name)
            assert m, path.name
            assert path.parent.name == m.group(1)  # the city folder is the scene type
            seqs.append(int(m.group(2)))
            stem = path.name[: -len("_leftImg8bit.png")]
            for suffix in GT_SUFFIXES:
                assert (dataset / "gtFine" / split / m.group(1) / f"{stem}{suffix}").is_file()
        assert sorted(seqs) == list(range(count))
        assert len(list((dataset / "gtFine" / split).glob("*/*"))) == 3 * count
    assert sorted(p.name for p in dataset.iterdir()) == ["gtFine", "leftImg8bit"]
    cities = {p.name for p in dataset.glob("leftImg8bit/*/*")}
    assert cities == set(SCENE_TYPES)


def test_file_contents_pair_up(dataset):
    for image_path in sorted(dataset.glob("leftImg8bit/*/*/*.png")):
        split, city = image_path.parts[-3], image_path.parts[-2]
        stem = image_path.name[: -len("_leftImg8bit.png")]
        gt = dataset / "gtFine" / split / city
        image = Image.open(image_path)
        labels_img = Image.open(gt / f"{stem}_gtFine_labelIds.png")
        instances_img = Image.open(gt / f"{stem}_gtFine_instanceIds.png")
        color_img = Image.open(gt / f"{stem}_gtFine_color.png")
        assert image.mode == "RGB" and labels_img.mode == "L" and color_img.mode == "RGB"
        assert instances_img.mode == "I;16"
        assert image.size == labels_img.size == instances_img.size == color_img.size == (W, H)

        labels, instances = np.array(labels_img), np.array(instances_img).astype(np.int64)
        assert labels.dtype == np.uint8
        stuff = instances < 1000
        assert np.array_equal(labels[stuff], instances[stuff])
        assert np.array_equal(labels[~stuff], instances[~stuff] // 1000)
        assert set(np.unique(instances[~stuff] // 1000)) <= {CAR, PERSON}
        assert set(np.unique(labels[np.isin(labels, (CAR, PERSON))])) <= set(np.unique(instances[~stuff] // 1000))
        assert set(np.unique(labels)) <= set(DRAWN_IDS)
        assert np.array_equal(np.array(color_img), CITY.colorize(labels))


def test_instance_png_round_trips_16_bit(tmp_path):
    labels, instances, _ = render_city_scene(np.random.default_rng(3), H, W, "highway")
    assert instances.max() >= CAR * 1000  # values beyond 8 bits
    path = tmp_path / "x_gtFine_instanceIds.png"
    Image.fromarray(instances.astype(np.uint16)).save(path)
    back = np.array(Image.open(path))
    assert back.dtype == np.uint16 and np.array_equal(back, instances)


def test_same_seed_same_bytes_other_seed_other_images(dataset, tmp_path):
    again = _files(_write(tmp_path / "again"))
    assert again == _files(dataset)
    other = _files(_write(tmp_path / "other", seed=SEED + 1))
    images = [k for k in again if k.endswith("_leftImg8bit.png")]
    differing = [k for k in images if again.get(k) != other.get(k)]
    assert len(differing) == len(images)  # same name may occur, the content never matches


def test_the_first_train_frame_is_the_pinned_one(dataset):
    """The generator's output for the fixed seed: the label histogram of the first train frame and the
    sum of its image's bytes (numbers, not PNG bytes, which depend on the zlib build)."""
    labels = _read(dataset / "gtFine/train/downtown/downtown_000004_000019_gtFine_labelIds.png")
    ids, counts = np.unique(labels, return_counts=True)
    assert dict(zip(ids.tolist(), counts.tolist())) == {1: 545, 7: 2923, 8: 318, 11: 1559, 17: 81, 19: 13, 21: 1634,
                                                        23: 324, 24: 83, 26: 712}
    image = _read(dataset / "leftImg8bit/train/downtown/downtown_000004_000019_leftImg8bit.png")
    assert int(image.astype(np.int64).sum()) == 2194054


def test_split_counts_do_not_change_other_images(dataset, tmp_path):
    fewer = _files(_write(tmp_path / "fewer", train=TRAIN - 4, val=VAL + 2))
    full = _files(dataset)
    shared = [k for k in fewer if k in full]
    assert len(shared) == 4 * (TRAIN - 4 + VAL)
    assert all(fewer[k] == full[k] for k in shared)


def test_refuses_non_empty_root(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        _write(tmp_path, train=1, val=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    _write(empty, train=1, val=1, height=32, width=64)
    assert len(list(empty.rglob("*.png"))) == 8


def test_scene_types_roughly_balanced(tmp_path):
    root = _write(tmp_path / "many", seed=0, train=30, val=0, height=32, width=64)
    counts = {t: len(list((root / "leftImg8bit" / "train" / t).glob("*.png"))) for t in SCENE_TYPES}
    assert sum(counts.values()) == 30
    assert min(counts.values()) >= 5, counts


def test_render_outputs_and_every_pixel_labelled(scenes):
    for t, renders in scenes.items():
        for labels, instances, image in renders:
            assert labels.shape == instances.shape == (H, W) and image.shape == (H, W, 3)
            assert labels.dtype == np.uint8 and instances.dtype == np.int32 and image.dtype == np.uint8
            assert set(np.unique(labels)) <= set(DRAWN_IDS)  # never 0 (unlabeled)
            assert np.array_equal(np.where(instances >= 1000, instances // 1000, instances), labels)
            ego = labels == EGO_VEHICLE
            if ego.any():  # a bonnet along the bottom edge
                assert ego[-1].all() and not ego[: H // 2].any()


def _mean_fractions(renders) -> np.ndarray:
    return np.mean([np.bincount(labels.ravel(), minlength=34)[:34] / labels.size for labels, _, _ in renders], axis=0)


def test_class_proportions_differ_between_scene_types(scenes):
    f = {t: _mean_fractions(r) for t, r in scenes.items()}
    down, sub, hwy = f["downtown"], f["suburb"], f["highway"]
    assert hwy[SKY] > sub[SKY] > down[SKY] + 0.05
    assert down[BUILDING] > sub[BUILDING] > hwy[BUILDING] + 0.05
    assert sub[VEGETATION] + sub[TERRAIN] > down[VEGETATION] + down[TERRAIN] + 0.08
    assert hwy[PERSON] == 0
    assert hwy[SIDEWALK] == 0 and down[SIDEWALK] > 0.01 and sub[SIDEWALK] > 0.01
    assert hwy[CAR] > sub[CAR] and hwy[ROAD] > sub[ROAD]
    for t in SCENE_TYPES:  # every scene has a road, a sky and something along the sides
        assert f[t][ROAD] > 0.15 and f[t][SKY] > 0.01


def test_instances_numbered_per_class(scenes):
    for labels, instances, _ in scenes["downtown"]:
        for cls in (CAR, PERSON):
            ks = np.unique(instances[instances // 1000 == cls]) % 1000
            if ks.size:
                assert ks.max() < 1000 and ks.min() >= 0
    def count(scene: str, cls: int) -> list[int]:
        return [len(np.unique(inst[inst // 1000 == cls])) for _, inst, _ in scenes[scene]]

    assert min(count("highway", CAR)) >= 1 and np.mean(count("highway", CAR)) >= 3
    assert np.mean(count("downtown", PERSON)) > np.mean(count("suburb", PERSON)) + 2
    assert sum(count("highway", PERSON)) == 0


def test_images_are_textured_not_flat_per_class(scenes):
    road_stds, road_means = [], []
    for renders in scenes.values():
        for labels, _, image in renders:
            grey = image.astype(np.float64).mean(axis=2)
            road = labels == ROAD
            road_stds.append(grey[road].std())
            road_means.append(grey[road].mean())
            building = labels == BUILDING
            if building.sum() > 200:
                assert grey[building].std() > 6
    assert min(road_stds) > 3
    assert np.std(road_means) > 5  # lighting and asphalt colour vary from image to image


def test_close_classes_overlap_in_colour(scenes):
    """Sidewalk and road are not separable by a colour threshold alone."""
    road, walk = [], []
    for labels, _, image in scenes["downtown"] + scenes["suburb"]:
        grey = image.astype(np.float64).mean(axis=2)
        road.append(grey[labels == ROAD])
        walk.append(grey[labels == SIDEWALK])
    road, walk = np.concatenate(road), np.concatenate(walk)
    lo, hi = np.percentile(road, [10, 90])
    assert ((walk > lo) & (walk < hi)).mean() > 0.2


@pytest.mark.parametrize("height, width", [(32, 64), (48, 200), (96, 64)])
def test_any_size_at_least_32_by_64(height, width):
    for k, t in enumerate(SCENE_TYPES):
        labels, instances, image = render_city_scene(np.random.default_rng([5, k]), height, width, t)
        assert labels.shape == (height, width) and image.shape == (height, width, 3)
        assert (labels == ROAD).any() and (labels == SKY).any()


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scene type"):
        render_city_scene(np.random.default_rng(0), H, W, "village")
    with pytest.raises(ValueError, match="height >= 32"):
        render_city_scene(np.random.default_rng(0), 31, W, "suburb")
