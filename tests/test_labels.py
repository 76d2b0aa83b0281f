import numpy as np
from torchvision.datasets import Cityscapes

from data.labels import CELEBA, IDD, IDD_LEVEL3_IDS, label_space


def test_cityscapes_is_torchvisions_table_by_raw_id_with_license_plate_last():
    space = label_space("cityscapes")
    by_name = {c.name: c for c in Cityscapes.classes}
    assert space.num_classes == 35
    assert space.class_names[7] == "road" and space.class_names[26] == "car" and space.class_names[34] == "license plate"
    for channel, name in enumerate(space.class_names):
        assert space.colors[channel] == by_name[name].color
        assert channel == by_name[name].id or name == "license plate"
    assert space.eval_ids == (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
    assert space.thing_ids == tuple(range(24, 34))


def test_idd_uses_the_40_autonue_ids_with_the_authors_eval_classes():
    assert IDD.num_classes == 40
    assert IDD.eval_ids == tuple(range(0, 7)) + tuple(range(8, 15)) + tuple(range(18, 35))
    assert IDD.thing_ids == tuple(range(6, 19))
    assert IDD.class_names[11] == "autorickshaw" and IDD.colors[11] == (255, 204, 54)
    assert IDD.colors[35:39] == ((0, 0, 0),) * 4 and IDD.colors[39] == (0, 0, 142)
    assert sorted(set(IDD_LEVEL3_IDS) - {255}) == list(range(26))


def test_celeba_parts_and_colours():
    assert CELEBA.num_classes == 19
    assert CELEBA.class_names[1] == "skin" and CELEBA.class_names[13] == "hair" and CELEBA.class_names[18] == "cloth"
    assert CELEBA.colors[1] == (204, 0, 0) and CELEBA.colors[18] == (0, 204, 0)


def test_colorize_maps_ids_to_colours():
    layout = np.array([[7, 26], [23, 0]])
    colours = label_space("cityscapes").colorize(layout)
    assert colours.dtype == np.uint8
    assert colours[0, 0].tolist() == [128, 64, 128] and colours[0, 1].tolist() == [0, 0, 142]
    assert colours[1, 0].tolist() == [70, 130, 180] and colours[1, 1].tolist() == [0, 0, 0]
