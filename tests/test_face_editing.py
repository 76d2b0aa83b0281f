"""Face editing: the edit table, the bounded search for a face that qualifies, the add-only completor's
novelty and evaluation, and the `face_editing@<mode>` stage on tiny trained faces networks."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from data.errors import InputError
from data.labels import CELEBA
from image.face_editing import FACE_EDITS, edited_palette
from layout.layouts import one_hot
from layout.losses import novelty
from layout.networks import LayoutOutput
from stages.common import run_stage
from stages.demo import choose_face, main as demo_main
from stages.image import main as image_main
from stages.palette import main as palette_main
from stages.prepare import main as prepare_main
from stages.style import main as style_main
from test_image_stage import TINY_IMAGE
from test_layout_stages import TINY_LAYOUT, run_layout

NAMES = list(CELEBA.class_names)
FRAMES = 5
BASE = {"background": 0.3, "skin": 0.3, "hair": 0.18, "nose": 0.03, "l_eye": 0.01, "r_eye": 0.01, "l_brow": 0.01,
        "r_brow": 0.01, "u_lip": 0.01, "l_lip": 0.01, "neck": 0.05, "cloth": 0.08}


def face(**changes: float) -> np.ndarray:
    """A face's proportions: BASE with some classes changed and the difference given to or taken from the
    background, so that it stays a distribution."""
    proportions = {**BASE, **changes}
    proportions["background"] += 1 - sum(proportions.values())
    return np.array([proportions.get(name, 0.0) for name in NAMES], np.float32)


# mode -> (a face meeting the precondition, a face failing it, or None for modes that accept every face)
CASES = {
    "face": (face(), None),
    "earrings": (face(hair=0.35), face()),
    "skin": (face(hair=0.05), face()),
    "nose": (face(hair=0.05), face()),
    "hat": (face(hair=0.35), face(hair=0.35, hat=0.02)),
    "glasses": (face(), face(eye_g=0.02)),
    "openeyes": (face(l_eye=0, r_eye=0, skin=0.32), face()),
    "unbald": (face(hair=0), face()),
    "bald": (face(hair=0.1), face()),
    "teeth": (face(), face(mouth=0.01)),
    "eyebrows": (face(), face(l_brow=0.005)),
    "morebrows": (face(l_brow=0, r_brow=0, skin=0.32), face()),
    "newbrows": (face(), None),
    "hair": (face(), face(hair=0.25)),
}


def test_the_table_has_every_mode_of_the_authors():
    assert set(CASES) == set(FACE_EDITS)


@pytest.mark.parametrize("mode", list(CASES))
def test_each_edit_keeps_a_distribution_and_checks_its_precondition(mode):
    accepted, rejected = CASES[mode]
    gmm_draw = face(hat=0.05)
    s1 = edited_palette(mode, accepted, NAMES, lambda: gmm_draw)
    assert s1 is not None and s1.min() >= 0
    assert s1.sum() == pytest.approx(1, abs=1e-5)
    added = np.clip(s1 - accepted, 0, None)
    assert added.sum() > 0.004  # every edit asks the completor for something
    for name in FACE_EDITS[mode].new_classes:
        assert accepted[NAMES.index(name)] == 0 and s1[NAMES.index(name)] > 0
    if rejected is not None:
        assert edited_palette(mode, rejected, NAMES, lambda: gmm_draw) is None


def test_edits_reach_the_authors_values_and_never_take_a_class_below_zero():
    hair = NAMES.index("hair")
    assert edited_palette("hat", face(hair=0.35), NAMES)[NAMES.index("hat")] == pytest.approx(0.1)
    assert edited_palette("hair", face(), NAMES)[hair] == pytest.approx(0.4)
    assert edited_palette("bald", face(hair=0.1), NAMES)[hair] == 0
    assert np.array_equal(edited_palette("face", face(), NAMES, lambda: face(hat=0.05)), face(hat=0.05))
    # newbrows doubles the brows and takes them from the skin (the authors added them to the skin too)
    s1 = edited_palette("newbrows", face(), NAMES)
    assert s1[NAMES.index("l_brow")] == pytest.approx(0.02) and s1[NAMES.index("skin")] == pytest.approx(0.28)
    # a bald face with 3% background cannot give the 6% the skin edit takes from it
    assert edited_palette("skin", face(hair=0.05, skin=0.7), NAMES) is None


def test_the_search_for_a_face_is_bounded_and_says_which_precondition_failed():
    faces = np.stack([face(), face(hair=0.3), face(hair=0.1), face()])
    index, s1 = choose_face("bald", faces, NAMES, tries=4, rng=np.random.default_rng(0), sample_palette=None)
    assert index == 2 and s1[NAMES.index("hair")] == 0
    with pytest.raises(InputError, match=r"face_editing@bald: none of the 2 val faces tried meets its precondition "
                                         r"\(0.05 <= hair <= 0.15, and no class taken below 0\); drop 'bald' from "
                                         r"demo.face_modes, or raise demo.face_tries \(the val split has 3 faces\)"):
        choose_face("bald", faces[[0, 1, 3]], NAMES, tries=2, rng=np.random.default_rng(0), sample_palette=None)


def test_with_nothing_masked_novelty_is_the_overlap_where_new_content_goes():
    C = 3
    source = one_hot(torch.zeros(1, 2, 4, dtype=torch.long), C)
    nothing = torch.zeros(1, 2, 4, dtype=torch.bool)
    raw = torch.zeros(1, C + 1, 2, 4)
    raw[:, C] = 1  # keep everywhere ...
    raw[:, C, :, :2], raw[:, 1, :, :2] = 0, 1  # ... but new class-1 content in the left half
    seg = source.clone()
    seg[:, :, :, 0] = torch.tensor([0.0, 1.0, 0.0])[:, None]  # column 0 changes class, column 1 stays class 0
    assert novelty(LayoutOutput(seg, seg, seg, raw), source, nothing).item() == pytest.approx(0.5)
    all_kept = torch.zeros_like(raw)
    all_kept[:, C] = 1
    assert novelty(LayoutOutput(seg, seg, seg, all_kept), source, nothing).item() == 0.0


TINY_FACES = dict(
    data={"dataset": "celeba", "height": 8, "width": 8}, palette={"max_components": 1}, device="cpu",
    layout=TINY_LAYOUT, image={**TINY_IMAGE, "model": "sean", "style_dim": 16, "middle_blocks": 1},
    partial={**TINY_LAYOUT, "spade_hidden": 4, "mask": "none", "palette_mode": "add",
             "loss_terms": ["entropy", "merged_entropy", "spread", "inter", "novelty"]},
    style={"splits": ["train"]}, chain={"finetuned": False},
    demo={"frames": FRAMES, "scale": 2, "face_modes": ["glasses"], "face_tries": 5},
)


@pytest.fixture(scope="session")
def faces_outputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faces") / "outputs"


@pytest.fixture
def faces_trained(celeba_root, write_params, monkeypatch, faces_outputs):
    """The tiny faces pipeline up to the completor, SEAN and its style bank, trained once per session."""
    write_params(**{**TINY_FACES, "data": {**TINY_FACES["data"], "root": str(celeba_root)}})
    if faces_outputs.exists():
        shutil.copytree(faces_outputs, "outputs", dirs_exist_ok=True)
        shutil.copytree(faces_outputs.parent / "metrics", "metrics", dirs_exist_ok=True)
        return
    run_stage(prepare_main)
    run_stage(palette_main)
    for command in ("init", "4", "8"):
        run_layout(monkeypatch, command, "partial")
    run_stage(image_main)
    monkeypatch.setattr(sys, "argv", ["stages.style", "train"])
    run_stage(style_main)
    shutil.copytree("outputs", faces_outputs)
    shutil.copytree("metrics", faces_outputs.parent / "metrics")


def run_face_editing(monkeypatch, mode):
    monkeypatch.setattr(sys, "argv", ["stages.demo", "face_editing", mode])
    run_stage(demo_main)


def test_the_add_only_completor_is_scored_on_what_it_adds(faces_trained):
    metrics = json.loads(Path("metrics/partial/8.json").read_text())
    assert {"ema_kept", "raw_kept", "requested_kept", "ema_band_tmae", "reference_band_tmae",
            "ema_outside_unchanged"} <= set(metrics)
    assert 0 <= metrics["ema_kept"] <= 1 and 0 < metrics["requested_kept"] <= 1


def test_face_editing_writes_a_frame_per_step_and_the_requested_additions(faces_trained, monkeypatch, capsys):
    run_face_editing(monkeypatch, "glasses")
    folder = Path("outputs/demos/face_editing/glasses")
    with Image.open(folder / "frames.gif") as gif:
        assert gif.n_frames == FRAMES
    with Image.open(folder / "frame.png") as frame:
        # 8 px faces at scale 2; the bottom row's chart is at least 40×48: 16 + 2 + 40 wide, 16 + 2 + 16 + 2 + 48 high
        assert (frame.width, frame.height) == (58, 84)
    table = pd.read_csv(folder / "proportions.csv")
    assert len(table) == 2 * FRAMES and list(table.columns) == ["frame", "palette"] + NAMES + ["keep"]
    requested = table[table["palette"] == "requested"]
    assert np.allclose(requested[NAMES + ["keep"]].sum(axis=1), 1, atol=1e-5)
    assert requested["eye_g"].iloc[0] == 0 and requested["keep"].iloc[0] == 1  # frame 0 asks for nothing
    assert requested["eye_g"].iloc[-1] == pytest.approx(0.06, abs=1e-6)  # the fixture's faces have no glasses
    obtained = table[table["palette"] == "obtained"]
    assert np.allclose(obtained[NAMES + ["keep"]].sum(axis=1), 1, atol=1e-5)
    assert "face_editing@glasses: val face" in capsys.readouterr().out


def test_a_mode_no_face_qualifies_for_stops_with_one_message_and_no_output(faces_trained, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        run_face_editing(monkeypatch, "bald")  # the fixture's faces have 3/8 hair
    assert "face_editing@bald: none of the 1 val faces tried meets its precondition" in capsys.readouterr().err
    assert not Path("outputs/demos/face_editing/bald").exists()


def test_face_editing_needs_the_faces_pipeline(write_params, monkeypatch, capsys):
    write_params()  # the scene default: SPADE, no style bank
    with pytest.raises(SystemExit):
        run_face_editing(monkeypatch, "hat")
    assert "face_editing needs the faces pipeline" in capsys.readouterr().err
    write_params(data={"dataset": "celeba"}, image={"model": "sean"})
    with pytest.raises(SystemExit):
        run_face_editing(monkeypatch, "beard")
    assert "unknown face edit 'beard' in demo.face_modes" in capsys.readouterr().err


def test_paired_bank_styles_come_from_one_image():
    from image.style import StyleBank
    present = np.array([[True, True, False], [True, False, True], [False, True, True]])
    codes = np.arange(9, dtype=np.float32).reshape(3, 3, 1) + 1
    bank = StyleBank(["a", "b", "c"], ["0", "1", "2"], codes * present[..., None], present)
    for seed in range(10):
        styles = bank.random_styles(np.random.default_rng(seed), together=((1, 2),))
        assert (styles[1, 0], styles[2, 0]) == (8.0, 9.0)  # only image 2 has both b and c
