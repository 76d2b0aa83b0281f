"""The layout stages on the tiny Cityscapes fixture: init, two levels, evaluation, resume, bad params."""
import json
from pathlib import Path

import pytest

from conftest import assert_pinned, tsv_row
from stages.common import run_stage
from stages.layout import main as layout_main
from stages.palette import main as palette_main
from stages.prepare import main as prepare_main

TINY_LAYOUT = {
    "final_level": 8,
    "schedule": {"4": {"previous": "init", "steps": 2, "batch_size": 4},
                 "8": {"previous": "4", "steps": 2, "batch_size": 4}},
    "latent_dim": 8, "channel_base": 16, "channel_max": 8, "log_every": 1, "image_every": 2,
    "checkpoint_every": 1, "eval_samples": 6,
}


def run_layout(monkeypatch, command: str, kind: str = "layout") -> None:
    monkeypatch.setattr("sys.argv", ["stages.layout", kind, command])
    run_stage(layout_main)


@pytest.fixture
def prepared(cityscapes_root, write_params):
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, palette={"max_components": 1},
                 layout=TINY_LAYOUT, partial={**TINY_LAYOUT, "spade_hidden": 4}, device="cpu")
    run_stage(prepare_main)
    run_stage(palette_main)


def test_the_palette_stage_fits_the_pinned_mixture(prepared):
    # One component on the 3 fixture palettes (road and sky only); the val palettes are all building,
    # which that component gives almost no density.
    assert_pinned(json.loads(Path("metrics/palette.json").read_text()),
                  {"components": 1, "aic": 105.181, "train_mean_log_likelihood": 204.136,
                   "val_mean_log_likelihood": -749796.1, "sample_mean_l1": 0.0260275})


def test_levels_chain_from_init_and_the_final_level_is_evaluated(prepared, monkeypatch, capsys):
    for command in ("init", "4", "8", "evaluate"):
        run_layout(monkeypatch, command)
    assert Path("outputs/layout/8/checkpoint.pt").is_file()
    level_metrics = json.loads(Path("metrics/layout/8.json").read_text())
    assert set(level_metrics) >= {"ema_tmae", "raw_tmae", "reference_tmae", "ema_mae"}
    final = json.loads(Path("metrics/layout.json").read_text())
    assert final["level"] == 8 and final["ema_tmae"] == level_metrics["ema_tmae"]
    rows = Path("metrics/layout/8.tsv").read_text().splitlines()
    assert rows[0].startswith("step\tphase\talpha") and len(rows) == 1 + 4  # fade + stabilise, 2 steps each
    assert "entropy_4" in rows[0] and "spread_8" in rows[0]
    # Pinned for the seeded tiny networks on the fixture (see conftest.assert_pinned for the tolerance).
    assert_pinned({k: level_metrics[k] for k in ("ema_tmae", "raw_tmae", "reference_tmae")},
                  {"ema_tmae": 0.00793267, "raw_tmae": 0.00830469, "reference_tmae": 0.0281657})
    assert_pinned(tsv_row("metrics/layout/8.tsv", -1, "d_loss", "g_regularization", "batch_tmae"),
                  {"d_loss": 6.63661, "g_regularization": 3.10614, "batch_tmae": 0.00676715})

    # A completed level trains again when re-run (forced, or after a code change).
    capsys.readouterr()
    run_layout(monkeypatch, "8")
    assert "resuming" not in capsys.readouterr().out


def test_a_killed_level_resumes_from_its_last_checkpoint(prepared, monkeypatch, capsys, kill_after_checkpoint):
    run_layout(monkeypatch, "init")
    disarm = kill_after_checkpoint(1)
    with pytest.raises(KeyboardInterrupt):
        run_layout(monkeypatch, "4")
    assert not Path("outputs/layout/4").exists()
    disarm()
    capsys.readouterr()
    run_layout(monkeypatch, "4")
    assert "resuming at step 1" in capsys.readouterr().out
    assert Path("outputs/layout/4/checkpoint.pt").is_file()


def test_a_schedule_that_does_not_end_at_the_final_level_is_refused(prepared, monkeypatch, capsys, write_params, cityscapes_root):
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, layout={**TINY_LAYOUT, "final_level": 4},
                 partial={**TINY_LAYOUT, "spade_hidden": 4})
    with pytest.raises(SystemExit):
        run_layout(monkeypatch, "init")
    assert "layout.schedule has levels ['4', '8']; it must have exactly ['4']" in capsys.readouterr().err


def test_the_completor_levels_chain_and_report_band_errors(prepared, monkeypatch):
    for command in ("init", "4", "8", "evaluate"):
        run_layout(monkeypatch, command, kind="partial")
    metrics = json.loads(Path("metrics/partial.json").read_text())
    assert metrics["level"] == 8
    assert 0 <= metrics["ema_outside_unchanged"] <= 1
    assert {"ema_band_tmae", "raw_band_tmae", "reference_band_tmae"} <= set(metrics)
    assert Path("outputs/partial/8/checkpoint.pt").is_file() and Path("metrics/partial/8.tsv").is_file()
    # The fixture's val layouts hold one class, so every band error is 0; the training log is pinned.
    assert metrics["ema_band_tmae"] == metrics["reference_band_tmae"] == 0
    assert_pinned(tsv_row("metrics/partial/8.tsv", -1, "d_loss", "g_regularization", "merged_entropy_8", "batch_tmae"),
                  {"d_loss": 7.82998, "g_regularization": 4.47612, "merged_entropy_8": 1.22254, "batch_tmae": 0.00650703})
