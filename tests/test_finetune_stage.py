"""The `finetune` and `finetune_partial` stages on the tiny Cityscapes fixture, and the synthesis chain
loaded from them or from the separately trained stages."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_pinned, tsv_row
from data.errors import InputError
from stages.common import load_synthesis_chain, run_stage
from stages.finetune import main as finetune_main
from stages.image import main as image_main
from stages.params import load_params
from test_image_stage import TINY_IMAGE
from test_layout_stages import TINY_LAYOUT, prepared, run_layout  # noqa: F401 (fixture)

TINY_FINETUNE = {"steps": 3, "batch_size": 2, "log_every": 1, "eval_every": 2, "image_every": 2, "checkpoint_every": 1,
                 "eval_samples": 4}
TINY = dict(layout=TINY_LAYOUT, partial={**TINY_LAYOUT, "spade_hidden": 4}, image=TINY_IMAGE, finetune=TINY_FINETUNE)


@pytest.fixture(scope="session")
def trained_outputs(tmp_path_factory) -> Path:
    """Where the first `trained` run leaves its outputs for the others to copy (same params, same bytes)."""
    return tmp_path_factory.mktemp("trained") / "outputs"


@pytest.fixture
def write_tiny(write_params, cityscapes_root):
    """`write(**sections)`: params.yaml for the tiny Cityscapes fixture with the TINY networks, sections
    updated by `sections` (a section given replaces TINY's)."""
    def write(**sections):
        return write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16},
                            palette={"max_components": 1}, device="cpu", **{**TINY, **sections})
    return write


@pytest.fixture
def trained(prepared, monkeypatch, write_tiny, trained_outputs):
    """Tiny layout, completor and image stages, trained once per test session."""
    write_tiny()
    if trained_outputs.exists():
        shutil.copytree(trained_outputs, "outputs", dirs_exist_ok=True)
        return
    for kind in ("layout", "partial"):
        for command in ("init", "4", "8"):
            run_layout(monkeypatch, command, kind)
    run_stage(image_main)
    shutil.copytree("outputs", trained_outputs)


PINNED = {
    "finetune": {"start_layout_tmae": 0.00667779, "start_real_layout_colour_error": 16.8213,
                 "start_generated_layout_colour_distance": 220.987, "start_real_colour_distance": 14.6828,
                 "end_layout_tmae": 0.00667779, "end_real_layout_colour_error": 16.8046,
                 "end_generated_layout_colour_distance": 221.050, "end_real_colour_distance": 14.6828},
    "finetune_partial": {"start_layout_tmae": 0.0, "start_real_layout_colour_error": 16.8213,
                         "start_generated_layout_colour_distance": 12.4387, "start_real_colour_distance": 14.6828,
                         "end_layout_tmae": 0.0, "end_real_layout_colour_error": 16.7556,
                         "end_generated_layout_colour_distance": 12.4049, "end_real_colour_distance": 14.6828},
}
PINNED_LOG = {  # the last training step's losses
    "finetune": {"layout_regularization": 2.78363, "feature_matching": 3.29434, "d2_hinge": 1.99759, "layout_critic": 6.79017},
    "finetune_partial": {"layout_regularization": 5.33597, "feature_matching": 3.29445, "d2_hinge": 1.99172,
                         "layout_critic": 7.63931},
}


def run_finetune(monkeypatch, kind):
    monkeypatch.setattr("sys.argv", ["stages.finetune", kind])
    run_stage(finetune_main)


@pytest.mark.parametrize("kind, stage", [("layout", "finetune"), ("partial", "finetune_partial")])
def test_fine_tuning_writes_networks_and_start_and_end_figures(trained, monkeypatch, capsys, kind, stage):
    run_finetune(monkeypatch, kind)
    assert Path(f"outputs/{stage}/checkpoint.pt").is_file()
    metrics = json.loads(Path(f"metrics/{stage}.json").read_text())
    figures = ("layout_tmae", "real_layout_colour_error", "generated_layout_colour_distance", "real_colour_distance")
    assert set(metrics) == {f"{when}_{name}" for when in ("start", "end") for name in figures}
    evaluations = Path(f"metrics/{stage}_eval.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in evaluations[1:]] == ["0", "2", "3"]
    assert len(Path(f"metrics/{stage}.tsv").read_text().splitlines()) == 1 + 3
    assert f"{stage}: layout" in capsys.readouterr().out
    # Pinned for the seeded tiny networks. The completor redoes bands of one-class val layouts, so its
    # band error is 0; the full generator's layouts do not move enough in 3 steps to change its tmae.
    assert_pinned(metrics, PINNED[stage])
    assert_pinned(tsv_row(f"metrics/{stage}.tsv", -1, "layout_regularization", "feature_matching", "d2_hinge",
                          "layout_critic"), PINNED_LOG[stage])


def test_a_killed_fine_tuning_resumes(trained, monkeypatch, capsys, kill_after_checkpoint):
    disarm = kill_after_checkpoint(2)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(monkeypatch, "layout")
    assert not Path("outputs/finetune").exists()
    disarm()
    capsys.readouterr()
    run_finetune(monkeypatch, "layout")
    assert "finetune: resuming at step 2" in capsys.readouterr().out
    evaluations = Path("metrics/finetune_eval.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in evaluations[1:]] == ["0", "2", "3"]


def test_the_chain_takes_fine_tuned_or_separate_networks_as_params_say(trained, monkeypatch, write_tiny):
    with pytest.raises(InputError, match="outputs/finetune/checkpoint.pt not found; run `dvc repro finetune`"):
        load_synthesis_chain(load_params())
    run_finetune(monkeypatch, "layout")
    fine_tuned = load_synthesis_chain(load_params())
    write_tiny(chain={"finetuned": False})
    separate = load_synthesis_chain(load_params())
    palettes = np.full((3, 35), 1 / 35, np.float32)
    for chain in (fine_tuned, separate):
        labels, images = chain.sample(palettes, seed=0)
        assert labels.shape == (3, 8, 16) and images.shape == (3, 3, 8, 16)
        assert labels.max() < 35 and images.abs().max() <= 1
    assert not torch.equal(fine_tuned.image.generator.to_image.weight, separate.image.generator.to_image.weight)
    assert not fine_tuned.image.generator.training and not fine_tuned.layout.training


def test_fine_tuning_needs_layouts_at_the_image_size(trained, monkeypatch, write_tiny, capsys):
    write_tiny(layout={**TINY_LAYOUT, "final_level": 4, "schedule": {"4": TINY_LAYOUT["schedule"]["4"]}})
    with pytest.raises(SystemExit):
        run_finetune(monkeypatch, "layout")
    assert "layout.final_level = 4 but the images are 8 pixels high" in capsys.readouterr().err
