"""`segment@<mix>` on the tiny Cityscapes fixture: every mix runs, a killed run resumes, bad params."""
import json
from pathlib import Path

import pytest

from conftest import assert_pinned, tsv_row
from stages.common import run_stage
from stages.segment import main as segment_main, real_subset
from test_finetune_stage import trained, trained_outputs, write_tiny  # noqa: F401 (fixtures)
from test_layout_stages import prepared  # noqa: F401 (fixture)

PINNED_LOSSES = {"real": {"real_loss": 3.52932}, "synthetic": {"synthetic_loss": 3.89866},
                 "real_synthetic": {"real_loss": 2.50271, "synthetic_loss": 2.55725},
                 "real_partial": {"real_loss": 2.6646, "partial_loss": 1.9086}}
TINY_SEGMENT = {"steps": 2, "batch_size": 2, "log_every": 1, "eval_every": 1, "checkpoint_every": 1}


@pytest.fixture
def separate_chain(trained, write_tiny):
    write_tiny(chain={"finetuned": False}, segment=TINY_SEGMENT)


def run_segment(monkeypatch, mix):
    monkeypatch.setattr("sys.argv", ["stages.segment", mix])
    run_stage(segment_main)


@pytest.mark.parametrize("mix", ["real", "synthetic", "real_synthetic", "real_partial"])
def test_every_mix_trains_and_reports_flat_iou_metrics(separate_chain, monkeypatch, capsys, mix):
    run_segment(monkeypatch, mix)
    assert Path(f"outputs/segment/{mix}/checkpoint.pt").is_file()
    metrics = json.loads(Path(f"metrics/segment/{mix}.json").read_text())
    assert 0 <= metrics["miou"] <= 1 and all(isinstance(v, (int, float)) for v in metrics.values())
    assert any(key.startswith("iou_") for key in metrics)
    header = Path(f"metrics/segment/{mix}.tsv").read_text().splitlines()[0].split("\t")
    expected = {"real": ["real_loss"], "synthetic": ["synthetic_loss"], "real_synthetic": ["real_loss", "synthetic_loss"],
                "real_partial": ["real_loss", "partial_loss"]}[mix]
    assert header == ["step", "lr", *expected]
    # The fixture's val layouts are one class the tiny segmenter does not predict after 2 steps (mIoU 0),
    # so the training losses are what is pinned.
    assert_pinned(tsv_row(f"metrics/segment/{mix}.tsv", -1, *expected), PINNED_LOSSES[mix])
    assert len(Path(f"metrics/segment/{mix}_eval.tsv").read_text().splitlines()) == 1 + 2
    out = capsys.readouterr().out
    assert "backbone from scratch" in out and "left out:" in out


def test_a_killed_segmenter_resumes(separate_chain, monkeypatch, capsys, kill_after_checkpoint):
    disarm = kill_after_checkpoint(1)
    with pytest.raises(KeyboardInterrupt):
        run_segment(monkeypatch, "real_synthetic")
    assert not Path("outputs/segment/real_synthetic").exists()
    disarm()
    capsys.readouterr()
    run_segment(monkeypatch, "real_synthetic")
    assert "segment@real_synthetic: resuming at step 1" in capsys.readouterr().out
    assert len(Path("metrics/segment/real_synthetic.tsv").read_text().splitlines()) == 1 + 2


def test_the_real_fraction_picks_a_seeded_subset():
    assert len(real_subset(400, 0.1, seed=0)) == 40
    assert real_subset(400, 0.1, seed=0)[:6].tolist() == [0, 5, 24, 26, 31, 62]  # sorted, drawn from the seed
    assert set(real_subset(400, 0.1, seed=0)) != set(real_subset(400, 0.1, seed=1))
    assert len(real_subset(5, 0.01, seed=0)) == 1


@pytest.mark.parametrize("segment, expected", [({"real_fraction": 0}, "segment.real_fraction = 0"),
                                              ({"backbone": "vgg"}, "segment.backbone = 'vgg'")])
def test_bad_segment_params_stop_with_one_line(separate_chain, write_tiny, monkeypatch, capsys, segment, expected):
    write_tiny(chain={"finetuned": False}, segment={**TINY_SEGMENT, **segment})
    with pytest.raises(SystemExit):
        run_segment(monkeypatch, "real")
    assert expected in capsys.readouterr().err
    assert not Path("outputs/segment/real").exists()
