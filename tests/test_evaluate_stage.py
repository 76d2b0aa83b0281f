"""`reference` and `evaluate` on the tiny Cityscapes fixture: both files, every method, the FID fallback."""
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from stages.common import run_stage
from stages.evaluate import SUMMARY, main as evaluate_main
from stages.finetune import main as finetune_main
from stages.segment import main as segment_main
from test_finetune_stage import trained, trained_outputs, write_tiny  # noqa: F401 (fixtures)
from test_layout_stages import prepared  # noqa: F401 (fixture)
from test_segment_stage import TINY_SEGMENT

TINY_EVALUATE = {"samples": 4, "repeats": 2, "kid_subset_size": 2}


@pytest.fixture
def everything(trained, monkeypatch, write_tiny, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no cached Inception weights
    write_tiny(segment=TINY_SEGMENT, evaluate=TINY_EVALUATE)
    for module, arguments in ((finetune_main, ["layout"]), (finetune_main, ["partial"]), (segment_main, ["real"]),
                              (segment_main, ["synthetic"])):
        monkeypatch.setattr("sys.argv", ["stage", *arguments])
        run_stage(module)


def run_evaluate(monkeypatch, *arguments):
    monkeypatch.setattr("sys.argv", ["stages.evaluate", *arguments])
    run_stage(evaluate_main)


def test_every_method_gets_every_metric_in_the_csv_and_flat_json(everything, monkeypatch, capsys):
    run_evaluate(monkeypatch, "reference")
    assert json.loads(Path("outputs/reference/info.json").read_text())["features"] is False
    run_evaluate(monkeypatch)
    table = pd.read_csv("metrics/generation.csv")
    assert table["method"].tolist() == ["reference", "full", "partial", "finetuned", "finetuned_partial"]
    assert list(table.columns[:3]) == ["method", "samples", "repeats"]
    assert {"fsd", "emd", "log_likelihood", "kl", "js", "mae", "tmae", "gan_test_miou", "d_fsd", "d_tmae",
            "prop_diff_pp_road", "prop_diff_pp_sky"} <= set(table.columns)
    assert table["fid"].isna().all()  # no Inception weights here
    gan_train = table.set_index("method")["gan_train_miou"]
    assert gan_train.notna().tolist() == [False, False, False, True, False]  # the synthetic segmenter's chain
    flat = json.loads(Path("metrics/generation.json").read_text())
    assert all(isinstance(v, float) for v in flat.values())
    assert {"reference_fsd", "full_tmae", "full_d_tmae", "finetuned_gan_train_miou"} <= set(flat)
    methods = table["method"].tolist()
    assert set(flat) <= {f"{method}_{std}{key}" for method in methods for std in ("", "d_") for key in SUMMARY}
    out = capsys.readouterr().out
    assert "FID and KID unavailable" in out and "evaluate: finetuned_partial:" in out


def test_evaluation_needs_the_reference_step_first(everything, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        run_evaluate(monkeypatch)
    assert "run `dvc repro reference` first" in capsys.readouterr().err
    assert not Path("metrics/generation.csv").exists()
