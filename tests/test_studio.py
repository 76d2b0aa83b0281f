"""The palette studio on the tiny trained chains: every tab through the HTTP API (gradio_client), bad
input refused with the command line's message, and the Compose tab driven in a real headless Chromium."""
import json
import os
import shutil
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip("gradio", reason="the studio's tests need the demo extra (pip install -e \".[test]\")")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from data.errors import InputError  # noqa: E402
from palette.metrics import proportion_errors  # noqa: E402
from stages.generate import cli  # noqa: E402
from stages.studio import Studio, launch  # noqa: E402
from test_demo import pipeline  # noqa: F401,E402 (fixture)
from test_face_editing import faces_outputs, faces_trained  # noqa: F401,E402 (fixtures)
from test_finetune_stage import trained, trained_outputs, write_tiny  # noqa: F401,E402 (fixtures)
from test_layout_stages import prepared, run_layout  # noqa: F401,E402 (fixture)

SCREENSHOTS = os.environ.get("STUDIO_SCREENSHOTS")  # a folder: the browser test saves a PNG per tab there


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(pipeline):
    app = launch(Studio.load(), "127.0.0.1", free_port(), block=False)
    yield app.local_url
    app.close()


@pytest.fixture
def client(server):
    return Client(server, verbose=False, download_files=True)


def table(value: dict) -> pd.DataFrame:
    return pd.DataFrame(value["data"], columns=value["headers"])


def cli_error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit):
        cli(["generate", *args])
    return capsys.readouterr().err.strip().removeprefix("error: ")


def test_compose_gives_what_the_command_line_gives(client, server):
    assert server.startswith("http://127.0.0.1:")
    scenes, chart, proportions, figures = client.predict("road=0.5,sky=0.3", "gmm", 3, 4, api_name="/compose")
    cli(["generate", "--palette", "road=0.5,sky=0.3", "--count", "4", "--seed", "3", "--out", "cli"])
    written = pd.read_csv("cli/proportions.csv")
    requested = written[written["palette"] == "requested"].drop(columns=["sample", "palette"])
    obtained = written[written["palette"] == "obtained"].drop(columns=["sample", "palette"])
    shown = table(proportions).set_index("class")
    assert list(shown.index[:2]) == ["road", "sky"] and shown.loc["road", "requested"] == 0.5
    for name, values in shown.iterrows():
        assert values["requested"] == pytest.approx(requested[name].mean(), abs=5e-5)
        assert values["obtained"] == pytest.approx(obtained[name].mean(), abs=5e-5)
    errors = proportion_errors(requested.to_numpy(), obtained.to_numpy())
    assert figures.startswith(f"MAE {errors['mae']:.4f} · TMAE {errors['tmae']:.4f} over 4 scenes")
    assert len(scenes) == 4
    scale = 256 // 16  # the tiny chain's 8x16 layouts are shown 256 px wide
    with Image.open(scenes[0]["image"]) as scene:  # layout | image, 2 px apart
        assert scene.size == (2 * 16 * scale + 2, 8 * scale)
        layout = np.asarray(scene.convert("RGB"))[::scale, :16 * scale:scale]
    with Image.open("cli/0_layout.png") as written_layout:
        assert np.array_equal(layout, np.asarray(written_layout.convert("RGB")))
    with Image.open(chart) as picture:
        assert picture.size == (640, 200)


@pytest.mark.parametrize("palette", ["road=0.7,sky=0.6", "rode=0.3", "road=-0.1", "road=lots", ""])
def test_a_bad_palette_is_refused_with_the_command_lines_message(client, capsys, palette):
    with pytest.raises(AppError) as refused:
        client.predict(palette, "gmm", 0, 4, api_name="/compose")
    assert str(refused.value) == cli_error(capsys, "--palette", palette)


def test_counts_and_seeds_out_of_range_are_refused(client):
    for seed, count, message in [(0, 0, "count = 0; it must be a whole number from 1 to 16"),
                                 (-1, 2, "seed = -1; it must be a whole number from 0")]:
        with pytest.raises(AppError, match=message):
            client.predict("road=0.5", "gmm", seed, count, api_name="/compose")


def edit(client, upload=None, region="band", classes=(), palette="", seed=1):
    return client.predict(0, upload, region, 0.25, 0.5, list(classes), palette, seed, api_name="/edit")


def test_edit_redoes_the_band_of_a_val_layout_or_of_the_same_layout_uploaded(client, pipeline, tmp_path):
    picture, proportions = edit(client)
    val = np.load("outputs/prepared/val/layouts.npy")
    with Image.open(picture) as grid:  # real | masked | completed | image
        assert grid.size == (4 * 16 * 16 + 3 * 2, 8 * 16)
        masked = np.asarray(grid.convert("RGB"))[::16, 16 * 16 + 2:2 * 16 * 16 + 2:16]
    band = np.zeros((8, 16), bool)
    band[:, 4:12] = True  # start 0.25, width 0.5 of 16 columns
    checker = (masked == 125) | (masked == 255)
    assert checker[band].all() and not np.array_equal(masked[~band], np.zeros_like(masked[~band]))
    shown = table(proportions).set_index("class")
    assert shown["requested"].sum() == pytest.approx(1, abs=1e-3)  # the band's own content
    Image.fromarray(val[0]).save(tmp_path / "labels.png")
    uploaded_picture, uploaded = edit(client, handle_file(str(tmp_path / "labels.png")))
    with Image.open(picture) as a, Image.open(uploaded_picture) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert table(uploaded).equals(table(proportions))
    _, asked = edit(client, palette="building=0.75,car=0.25")
    assert table(asked).set_index("class")["requested"].to_dict() == {"building": 0.75, "car": 0.25}
    _, classes = edit(client, region="classes", classes=["building"])  # the fixture's val layouts are all building
    assert table(classes).set_index("class").loc["building", "requested"] == 1.0


def test_uploads_that_are_not_label_maps_of_the_chain_are_refused(client, tmp_path):
    for name, image, message in [
            ("colour.png", Image.new("RGB", (16, 8)),
             "colour.png is an image in mode RGB, not one channel of ids; upload a label-id PNG"),
            ("small.png", Image.new("L", (8, 8)), "small.png is 8x8; the chain works at 8x16"),
            ("ids.png", Image.new("L", (16, 8), 200), "ids.png has label id 200, outside the cityscapes label space")]:
        image.save(tmp_path / name)
        with pytest.raises(AppError, match=message):
            edit(client, handle_file(str(tmp_path / name)))
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(AppError, match="text.png: cannot decode the image"):
        edit(client, handle_file(str(tmp_path / "text.png")))
    with pytest.raises(AppError, match="the layout has no pixel of sky"):
        edit(client, region="classes", classes=["sky"])


def test_a_request_cannot_name_a_file_of_the_server(server, pipeline):
    """The upload is the file Gradio received: a path on the server, sent as if uploaded, is refused."""
    request = urllib.request.Request(
        f"{server}gradio_api/call/edit", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"data": [0, {"path": str(Path("params.yaml").resolve()), "meta": {"_type": "gradio.FileData"}},
                                  "band", 0.25, 0.5, [], "", 0]}).encode())
    with urllib.request.urlopen(request) as answer:
        event = json.load(answer)["event_id"]
    with urllib.request.urlopen(f"{server}gradio_api/call/edit/{event}") as answer:
        events = answer.read().decode()
    assert events.startswith("event: error") and "it was not uploaded by a user" in events


def test_interpolate_gives_a_frame_per_step_and_their_gif(client):
    frames, gif = client.predict("road=0.6", "", 3, 0, api_name="/interpolate")
    assert len(frames) == 3
    with Image.open(gif) as animation:
        assert animation.n_frames == 3
    with pytest.raises(AppError, match="frames = 1; it must be a whole number from 2 to 32"):
        client.predict("", "", 1, 0, api_name="/interpolate")


def test_the_faces_tab_edits_a_val_face(faces_trained, monkeypatch):
    for command in ("init", "4", "8"):  # the faces fixture trains only the completor and SEAN
        run_layout(monkeypatch, command, "layout")
    studio = Studio.load()
    assert studio.style_bank is not None
    frames, gif, proportions = studio.face_edit("glasses", 0, 3, 0)
    assert len(frames) == 3 and Path(gif).is_file()
    assert proportions.set_index("class").loc["eye_g", "requested"] == pytest.approx(0.06, abs=1e-4)
    with pytest.raises(InputError, match="val face 0 does not meet the bald edit's precondition"):
        studio.face_edit("bald", 0, 3, 0)  # the fixture's faces have 3/8 hair
    app = launch(studio, "127.0.0.1", free_port(), block=False)
    try:
        frames, _, shown = Client(app.local_url, verbose=False).predict("glasses", 0, 3, 0, api_name="/faces")
        assert len(frames) == 3 and table(shown).equals(proportions)
        from benchmarks.browser import BrowserMissing, Page
        try:
            with Page(app.local_url) as page:
                folder = Path(SCREENSHOTS) if SCREENSHOTS else Path("screenshots")
                assert page.screenshots(folder, {"Faces": "faces-button"}, tabs=("Faces",)) == [folder / "faces.png"]
        except BrowserMissing as missing:
            print(f"no screenshot of the Faces tab: {missing}")
    finally:
        app.close()


def test_a_missing_chain_names_the_stage_that_makes_it(pipeline, capsys):
    shutil.rmtree("outputs/partial")
    with pytest.raises(InputError, match="outputs/partial/8/checkpoint.pt not found; run `dvc repro partial@8`"):
        Studio.load()
    with pytest.raises(SystemExit):
        cli(["serve", "--port", str(free_port())])
    assert "error: outputs/partial/8/checkpoint.pt not found" in capsys.readouterr().err


def test_the_page_composes_in_a_real_browser(server, tmp_path):
    """Two sliders set, Generate pressed, the shown proportions and images read back; then a bad palette.
    With STUDIO_SCREENSHOTS set, a PNG of each tab goes there."""
    from benchmarks.browser import BrowserMissing, Page

    try:
        page = Page(server)
    except BrowserMissing as missing:
        print(f"skipped: {missing}")
        pytest.skip(str(missing))
    with page:
        page.set_slider("road", 0.5)
        page.set_slider("sky", 0.3)
        page.wait(lambda: page.value("palette") == "road=0.5,sky=0.3")
        page.click("compose-button")
        shown = page.table("proportions")
        assert list(shown.index[:2]) == ["road", "sky"]
        assert shown.loc["road", "requested"] == 0.5 and shown.loc["sky", "requested"] == 0.3
        assert page.image_sizes("scenes") == [(2 * 16 * 16 + 2, 8 * 16)] * 4
        _, _, proportions, _ = Client(server, verbose=False).predict("road=0.5,sky=0.3", "gmm", 0, 4,
                                                                     api_name="/compose")
        assert len(shown) >= 10  # the rows in view
        pd.testing.assert_frame_equal(shown, table(proportions).set_index("class")[:len(shown)], check_dtype=False)
        folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path / "screenshots"
        written = page.screenshots(folder, {"Edit": "edit-button", "Interpolate": "interpolate-button"})
        assert [path.name for path in written] == ["compose.png", "edit.png", "interpolate.png"]
        page.type("palette", "road=0.7,sky=0.6")
        page.click("compose-button")
        assert page.wait_for_text("the palette's proportions sum to 1.300; they must sum to at most 1")
