import numpy as np
import pytest
from PIL import Image

from formats import random_image, save_png, write_cityscapes_pair
from data.errors import InputError
from data.readers import open_dataset


def test_cityscapes_pairs_are_sorted_by_key_and_read_as_label_ids(cityscapes_root):
    reader = open_dataset("cityscapes", cityscapes_root)
    train = reader.samples("train")
    assert [s.key for s in train] == ["aachen_000000_000019", "aachen_000002_000019", "bremen_000001_000019"]
    label = reader.read_label(train[0])
    assert label.dtype == np.int64 and label.shape == (8, 16)
    assert (label[:3] == 23).all() and (label[3:] == 7).all()
    image = reader.read_image(train[0], label.shape)
    assert image.shape == (8, 16, 3) and image.dtype == np.uint8
    assert [s.key for s in reader.samples("val")] == ["lindau_000000_000019", "lindau_000001_000019"]


def test_cityscapes_instance_ids_decode_to_label_ids(tmp_path):
    root = tmp_path / "cs"
    instances = np.array([[7, 26000, 26001], [24005, 23, 255]])
    write_cityscapes_pair(root, "train", "ulm_000000_000019", instances, np.random.default_rng(0), kind="instanceIds")
    reader = open_dataset("cityscapes", root)
    label = reader.read_label(reader.samples("train")[0])
    # 255 goes to the last channel as in the authors' code
    assert label.tolist() == [[7, 26, 26], [24, 23, 34]]


def test_a_palette_png_label_is_read_as_its_stored_indices(tmp_path):
    root = tmp_path / "cs"
    ids = np.array([[7, 7, 23], [26, 11, 255]])
    write_cityscapes_pair(root, "train", "ulm_000000_000019", ids, np.random.default_rng(0))
    label = root / "gtFine/train/ulm/ulm_000000_000019_gtFine_labelIds.png"
    indexed = Image.fromarray(ids.astype(np.uint8))
    indexed.putpalette([value for c in range(256) for value in (c, 255 - c, 0)])
    indexed.save(label)
    reader = open_dataset("cityscapes", root)
    assert Image.open(label).mode == "P"
    assert reader.read_label(reader.samples("train")[0]).tolist() == [[7, 7, 23], [26, 11, 34]]


def test_cityscapes25k_appends_extra_pairs_with_8bit_pseudo_labels(cityscapes_root):
    rng = np.random.default_rng(3)
    pseudo = np.full((8, 16), 21, dtype=np.uint8)
    save_png(cityscapes_root / "extraFine/train_extra/augsburg/augsburg_000000_000000_leftImg8bit.png", pseudo)
    save_png(cityscapes_root / "leftImg8bit/train_extra/augsburg/augsburg_000000_000000_leftImg8bit.png",
             random_image(rng, 8, 16))
    reader = open_dataset("cityscapes25k", cityscapes_root)
    train = reader.samples("train")
    assert len(train) == 4 and train[-1].key == "augsburg_000000_000000"
    assert (reader.read_label(train[-1]) == 21).all()
    assert len(reader.samples("val")) == 2


def test_idd_keys_keep_the_folder(idd_root):
    reader = open_dataset("idd", idd_root)
    train = reader.samples("train")
    assert [s.key for s in train] == ["0/000123", "1/000123"]
    label = reader.read_label(train[0])
    assert (label[:5] == 33).all() and (label[5:] == 0).all()


def test_celeba_combines_part_masks_in_channel_order_and_holds_out_the_last_ids(celeba_root):
    reader = open_dataset("celeba", celeba_root, holdout_fraction=0.2)
    train, val = reader.samples("train"), reader.samples("val")
    assert [s.key for s in train] == [str(k) for k in range(8)]
    assert [s.key for s in val] == ["8", "9"]
    label = reader.read_label(train[0])
    assert (label[:3] == 13).all() and (label[3:] == 1).all()  # hair painted over skin
    image = reader.read_image(train[0], label.shape)
    assert image.shape == (8, 8, 3)  # 16×16 image resized to its masks


def test_celeba_rejects_a_bad_holdout_fraction(celeba_root):
    with pytest.raises(InputError, match="prepare.holdout_fraction"):
        open_dataset("celeba", celeba_root, holdout_fraction=1.0)
