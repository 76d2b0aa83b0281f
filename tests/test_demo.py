"""Demo pieces, the demo stages and the generation command on tiny trained networks."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from data.errors import InputError
from data.labels import label_space
from image.demos import interpolate
from palette.conditional import sample_conditional
from palette.gmm import PaletteGMM
from stages.common import run_stage
from stages.demo import main as demo_main
from stages.generate import cli, parse_palette
from test_finetune_stage import trained, trained_outputs, write_tiny  # noqa: F401 (fixtures)
from test_layout_stages import prepared  # noqa: F401 (fixture)

CITYSCAPES = label_space("cityscapes")
TINY_DEMO = {"frames": 5, "samples": 3, "scale": 2}


def test_interpolation_endpoints_are_the_inputs_and_palettes_stay_distributions():
    a, b = torch.tensor([0.7, 0.2, 0.1]), torch.tensor([0.1, 0.3, 0.6])
    path = interpolate(a, b, 6)
    assert path.shape == (6, 3) and torch.equal(path[0], a) and torch.equal(path[-1], b)
    torch.testing.assert_close(path.sum(dim=1), torch.ones(6))
    z0, z1 = torch.randn(8), torch.randn(8)
    assert torch.equal(interpolate(z0, z1, 3)[0], z0) and torch.equal(interpolate(z0, z1, 3)[-1], z1)


def test_palettes_by_class_name_parse_and_every_bad_entry_is_named():
    assert parse_palette("road=0.35, building=0.3,sky=0.15,car=0.05", CITYSCAPES) == {
        7: 0.35, 11: 0.3, 23: 0.15, 26: 0.05}
    assert parse_palette("traffic light=0.1", CITYSCAPES) == {19: 0.1}
    for text, message in [("rode=0.3", "unknown class 'rode'"), ("road=-0.1", "must lie in \\[0, 1\\]"),
                          ("road=lots", "road='lots': the proportion is not a number"),
                          ("road=1.5", "must lie in \\[0, 1\\]"), ("road=0.7,sky=0.6", "sum to 1.300"),
                          ("road", "is not name=value"), ("road=0.1,road=0.2", "road is given twice"),
                          ("", "the palette is empty")]:
        with pytest.raises(InputError, match=message):
            parse_palette(text, CITYSCAPES)


def test_conditional_palettes_keep_the_named_classes_and_fill_the_rest_from_the_mixture():
    rng = np.random.default_rng(0)
    means = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.4, 0.4]])
    gmm = PaletteGMM(np.array([0.5, 0.5]), means, np.stack([np.eye(4) * 0.01] * 2), ("a", "b", "c", "d"))
    palettes = sample_conditional(gmm, {0: 0.5}, 200, rng)
    assert np.all(palettes[:, 0] == 0.5) and np.allclose(palettes.sum(axis=1), 1, atol=1e-6) and palettes.min() >= 0
    # a = 0.5 is only plausible under the first component, so the rest follows its shape: b > c > d.
    rest = palettes[:, 1:].mean(axis=0)
    assert rest[0] > rest[1] > rest[2]
    assert np.allclose(sample_conditional(gmm, {0: 0.6, 1: 0.4}, 3, rng)[:, 2:], 0)


@pytest.fixture
def pipeline(trained, write_tiny):
    write_tiny(chain={"finetuned": False}, demo=TINY_DEMO)


PINNED_ROAD = {"palette_interpolation": 0.619317, "latent_interpolation": 0.691242}
PINNED_OBTAINED = {"palette_interpolation": [[0.375, 0.625], [0.4375, 0.5625]],
                   "latent_interpolation": [[0.5703125, 0.4296875], [0.609375, 0.390625]]}


def run_demo(monkeypatch, name):
    monkeypatch.setattr("sys.argv", ["stages.demo", name])
    run_stage(demo_main)


@pytest.mark.parametrize("name", ["palette_interpolation", "latent_interpolation"])
def test_interpolation_demos_write_a_frame_per_step(pipeline, monkeypatch, name):
    run_demo(monkeypatch, name)
    folder = Path("outputs/demos") / name
    with Image.open(folder / "frames.gif") as gif:
        assert gif.n_frames == TINY_DEMO["frames"]
    assert (folder / "frame.png").is_file() and (folder / "strip.png").is_file()
    table = pd.read_csv(folder / "proportions.csv")
    assert len(table) == 2 * TINY_DEMO["frames"] and set(table["palette"]) == {"requested", "obtained"}
    requested = table[table["palette"] == "requested"].drop(columns=["frame", "palette"]).to_numpy()
    assert np.allclose(requested.sum(axis=1), 1, atol=1e-5)
    if name == "latent_interpolation":
        assert np.allclose(requested, requested[0])  # one palette, the noise moves
    # Pinned for the seeded tiny chain: the first frames' requested road share (a GMM draw) and the road
    # and sky shares of the 8×16 argmax layouts (multiples of 1/128).
    first = table[table["frame"] < 2].set_index(["frame", "palette"])[["road", "sky"]]
    assert first.loc[(0, "requested"), "road"] == pytest.approx(PINNED_ROAD[name], rel=1e-5)
    assert first.xs("obtained", level="palette").to_numpy().tolist() == PINNED_OBTAINED[name]


def test_partial_editing_writes_a_grid_row_per_sample(pipeline, monkeypatch):
    run_demo(monkeypatch, "partial_editing")
    folder = Path("outputs/demos/partial_editing")
    with Image.open(folder / "grid.png") as grid:
        assert grid.height == 2 * 8 * 2 + 2  # the fixture's 2 val layouts (of 3 asked) of 8 px at scale 2, a 2 px gap
        assert grid.width == 4 * 16 * 2 + 3 * 2  # real | masked | generated layout | image
    assert len(pd.read_csv(folder / "proportions.csv")) == 2 * 2


def test_an_unknown_demo_is_refused(pipeline, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        run_demo(monkeypatch, "face_edit")
    assert "unknown demo 'face_edit'" in capsys.readouterr().err


def test_generation_from_a_named_palette_is_reproducible(pipeline, capsys):
    for out in ("a", "b"):
        cli(["generate", "--palette", "road=0.5,sky=0.3", "--count", "2", "--seed", "3", "--out", out])
    for name in ("0_layout.png", "1_labels.png", "1_image.png", "proportions.csv"):
        assert Path("a", name).read_bytes() == Path("b", name).read_bytes()
    table = pd.read_csv("a/proportions.csv")
    requested = table[table["palette"] == "requested"]
    assert np.allclose(requested["road"], 0.5) and np.allclose(requested["sky"], 0.3)
    # Pinned for the seeded tiny chain: the road and sky shares of the two 8×16 argmax layouts.
    obtained = table[table["palette"] == "obtained"][["road", "sky"]].to_numpy().tolist()
    assert obtained == [[0.421875, 0.578125], [0.4765625, 0.5234375]]
    with Image.open("a/0_labels.png") as labels:
        assert labels.mode == "L" and labels.size == (16, 8) and np.asarray(labels).max() < 35
    cli(["generate", "--from-gmm", "3", "--out", "gmm"])
    assert len(pd.read_csv("gmm/proportions.csv")) == 6
    assert "generate: 3 scenes in gmm/" in capsys.readouterr().out


def test_generation_errors_are_one_line(pipeline, capsys, tmp_path, monkeypatch):
    with pytest.raises(SystemExit):
        cli(["generate", "--palette", "road=2"])
    assert "road=2: proportions must lie in [0, 1]" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path / "cityscapes")  # no trained pipeline here
    with pytest.raises(SystemExit):
        cli(["generate", "--from-gmm", "2"])
    assert "params.yaml not found; run the command in the repository" in capsys.readouterr().err


def test_a_misspelt_class_is_reported_before_the_networks_are_looked_for(prepared, capsys):
    assert not Path("outputs/finetune").exists()  # only prepare and palette have run
    for palette, expected in (("road=0.4,skye=0.2", "unknown class 'skye' in the palette"),
                              ("road=0.7,sky=0.6", "the palette's proportions sum to 1.300")):
        with pytest.raises(SystemExit):
            cli(["generate", "--palette", palette])
        assert expected in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["generate", "--palette", "road=0.4"])
    assert "outputs/finetune/checkpoint.pt not found" in capsys.readouterr().err  # a good palette gets that far
