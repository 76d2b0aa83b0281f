import re

import numpy as np
import pytest
from PIL import Image

from data import toy_faces
from data.labels import CELEBA_PARTS
from data.toy_faces import combine_part_masks, render_face, write_toy_faces

SIZE = 64
PART_RE = "|".join(CELEBA_PARTS)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _faces(seed, count, size=SIZE):
    return [render_face(np.random.default_rng([seed, k]), size) for k in range(count)]


def _read_label(root, k, size=SIZE):
    masks = {}
    for path in (root / "CelebAMask-HQ-mask-anno" / str(k // 2000)).glob(f"{k:05d}_*.png"):
        masks[path.stem.split("_", 1)[1]] = np.asarray(Image.open(path)) == 255
    return combine_part_masks(masks, size), set(masks)


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    write_toy_faces(tmp_path / "a", seed=3, count=6, size=SIZE)
    write_toy_faces(tmp_path / "b", seed=3, count=6, size=SIZE)
    write_toy_faces(tmp_path / "c", seed=4, count=6, size=SIZE)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert a == b
    for k in range(6):
        assert a[f"CelebA-HQ-img/{k}.jpg"] != c[f"CelebA-HQ-img/{k}.jpg"]


def test_files_are_in_the_celebamask_hq_layout(tmp_path):
    write_toy_faces(tmp_path, seed=0, count=12, size=SIZE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CelebA-HQ-img", "CelebAMask-HQ-mask-anno"]
    images = sorted(p.name for p in (tmp_path / "CelebA-HQ-img").iterdir())
    assert images == sorted(f"{k}.jpg" for k in range(12))
    assert [p.name for p in (tmp_path / "CelebAMask-HQ-mask-anno").iterdir()] == ["0"]
    for k in range(12):
        image = Image.open(tmp_path / "CelebA-HQ-img" / f"{k}.jpg")
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (2 * SIZE, 2 * SIZE))
    names = [p.name for p in (tmp_path / "CelebAMask-HQ-mask-anno" / "0").iterdir()]
    assert all(re.fullmatch(rf"000(0\d|1[01])_({PART_RE})\.png", name) for name in names), names
    for path in (tmp_path / "CelebAMask-HQ-mask-anno" / "0").iterdir():
        mask = Image.open(path)
        assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (SIZE, SIZE))
        values = np.unique(np.asarray(mask))
        assert set(values.tolist()) <= {0, 255} and 255 in values


def test_mask_folders_hold_consecutive_blocks_of_faces(tmp_path, monkeypatch):
    monkeypatch.setattr(toy_faces, "FACES_PER_FOLDER", 5)
    write_toy_faces(tmp_path, seed=0, count=12, size=32)
    anno = tmp_path / "CelebAMask-HQ-mask-anno"
    assert sorted(p.name for p in anno.iterdir()) == ["0", "1", "2"]
    for folder in anno.iterdir():
        assert {int(p.name[:5]) // 5 for p in folder.iterdir()} == {int(folder.name)}
    assert toy_faces.mask_path(tmp_path, 4321, "skin") == anno / "864" / "04321_skin.png"


def test_files_hold_what_render_face_returns(tmp_path):
    write_toy_faces(tmp_path, seed=5, count=8, size=SIZE)
    for k, (masks, image) in enumerate(_faces(5, 8)):
        label, parts = _read_label(tmp_path, k)
        assert parts == set(masks)
        assert np.array_equal(label, combine_part_masks(masks, SIZE))
        photo = np.asarray(Image.open(tmp_path / "CelebA-HQ-img" / f"{k}.jpg"), dtype=float)
        assert np.abs(photo - image).mean() < 3.0  # only the JPEG loss


def test_present_parts_are_visible_in_the_label_map():
    for masks, image in _faces(1, 20):
        assert image.shape == (2 * SIZE, 2 * SIZE, 3) and image.dtype == np.uint8
        label = combine_part_masks(masks, SIZE)
        for part, mask in masks.items():
            assert mask.shape == (SIZE, SIZE) and mask.dtype == bool
            assert (label == CELEBA_PARTS.index(part) + 1).sum() >= toy_faces.MIN_PIXELS, part


def test_combine_paints_parts_in_index_order():
    skin = np.ones((4, 4), bool)
    hair = np.zeros((4, 4), bool)
    hair[:2] = True
    eye = np.zeros((4, 4), bool)
    eye[1, 1] = eye[3, 3] = True
    label = combine_part_masks({"hair": hair, "l_eye": eye, "skin": skin}, 4)
    expected = np.full((4, 4), 1)
    expected[:2] = 13
    expected[3, 3] = 4
    assert np.array_equal(label, expected)


def test_parts_vary_between_faces():
    faces = [set(masks) for masks, _ in _faces(2, 60)]
    share = {part: np.mean([part in parts for parts in faces]) for part in CELEBA_PARTS}
    for part in ("skin", "nose", "l_eye", "r_eye", "l_brow", "u_lip", "l_lip", "neck", "cloth"):
        assert share[part] >= 0.8, (part, share[part])
    assert np.mean([bool(parts & {"hair", "hat"}) for parts in faces]) >= 0.85
    for part in ("eye_g", "hat", "ear_r", "neck_l", "mouth", "l_ear", "r_ear", "hair"):
        assert 0.0 < share[part] < 1.0, (part, share[part])


def test_size_32_works():
    for masks, image in _faces(0, 5, size=32):
        assert image.shape == (64, 64, 3)
        assert {"skin", "neck", "cloth"} <= set(masks)


def _part_pixels(masks, image, part):
    """The photo's pixels (at mask size, 2 x 2 means) inside `part` of the label map, off its border."""
    label = combine_part_masks(masks, SIZE)
    inside = label == (CELEBA_PARTS.index(part) + 1 if part != "background" else 0)
    core = inside.copy()
    core[1:] &= inside[:-1]
    core[:-1] &= inside[1:]
    core[:, 1:] &= inside[:, :-1]
    core[:, :-1] &= inside[:, 1:]
    small = image.astype(float).reshape(SIZE, 2, SIZE, 2, 3).mean(axis=(1, 3))
    return small[core if core.sum() >= 4 else inside]


def test_image_follows_the_layout():
    faces = _faces(6, 30)

    def redness(part):
        values = [_part_pixels(m, im, part) for m, im in faces if part in m or part == "background"]
        return np.mean([(px[:, 0] - px[:, 1:].mean(axis=1)).mean() for px in values if len(px)])

    assert redness("u_lip") > redness("background") + 30
    assert redness("l_lip") > redness("skin")
    for masks, image in faces:
        for eye in ("l_eye", "r_eye"):
            if eye in masks:  # the pupil and the lash line are darker than the face
                gray = _part_pixels(masks, image, eye).mean(axis=1)
                assert gray.min() < np.median(_part_pixels(masks, image, "skin").mean(axis=1))


def test_big_parts_are_told_apart_by_colour():
    """Each pixel of background, skin, hair and cloth is nearest to the mean colour of its own part."""
    accuracies = []
    for masks, image in _faces(6, 30):
        parts = ["background"] + [part for part in ("skin", "hair", "cloth") if part in masks]
        pixels = [_part_pixels(masks, image, part) for part in parts]
        means = np.array([px.mean(axis=0) for px in pixels])
        nearest = [((px[:, None] - means[None]) ** 2).sum(-1).argmin(axis=1) for px in pixels]
        hits = [(near == i).sum() for i, near in enumerate(nearest)]
        accuracies.append(sum(hits) / sum(len(px) for px in pixels))
    assert np.mean(accuracies) > 0.85


def test_parts_are_textured_not_flat():
    faces = _faces(7, 20)
    for part, least in (("background", 8.0), ("skin", 4.0), ("hair", 5.0), ("cloth", 4.0)):
        grays = [_part_pixels(m, im, part).mean(axis=1) for m, im in faces if part in m or part == "background"]
        stds = [gray.std() for gray in grays]
        assert np.median(stds) > least, (part, stds)


def test_root_must_be_empty(tmp_path):
    (tmp_path / "x").write_text("occupied")
    with pytest.raises(FileExistsError):
        write_toy_faces(tmp_path, seed=0, count=1, size=32)
    (tmp_path / "empty").mkdir()
    write_toy_faces(tmp_path / "empty", seed=0, count=1, size=32)
    assert (tmp_path / "empty" / "CelebA-HQ-img" / "0.jpg").is_file()
