"""`reference` and `evaluate` on the tiny Cityscapes fixture: both files, every method, the FID fallback, and
every row recomputed from the pairs its draws produced."""
import json
import shutil
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import stages.evaluate
from data.prepared import open_prepared_split
from image.fidelity import ImageFeatures, fid, kid, to_uint8_chw
from palette.comparison import divergences, earth_movers_distance, frechet_distance
from palette.gmm import PaletteGMM
from palette.metrics import proportion_errors
from segment.metrics import confusion_matrix, iou_scores
from segment.model import predict
from segment.train import evaluate_segmenter
from stages.common import run_stage
from stages.evaluate import SUMMARY, main as evaluate_main
from stages.finetune import main as finetune_main
from stages.params import load_params
from stages.segment import main as segment_main
from test_evaluate import ColourStatistics  # noqa: F401 (registers the colour-statistics extractor)
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


class ConstantSegmenter(torch.nn.Module):
    """Predicts one class everywhere."""

    def __init__(self, label, num_classes):
        super().__init__()
        self.label, self.num_classes = label, num_classes

    def forward(self, images):
        logits = torch.zeros(len(images), self.num_classes, *images.shape[2:])
        logits[:, self.label] = 1
        return {"out": logits}


def test_every_row_is_the_metrics_of_its_generated_pairs(everything, monkeypatch, write_tiny):
    """The stage's figures against the metric functions applied here to the pairs each draw produced
    (caught on their way out of `draw`), with the real segmenter for GAN-test and the synthetic one for
    GAN-train, the val split as the real side and the evaluation classes for FSD and mIoU.

    The fixture's val layouts are all building, which no generated layout contains; so that swapping the
    real and the generated side shows, val becomes the last two of the three road-and-sky train pairs. The
    two-step segmenters predict nothing right; they are replaced by one that says sky everywhere (real)
    and one that says road (synthetic), so that taking one for the other shows. Inception is stood in for
    by colour statistics, so that FID and KID are computed. Three draws, so that a median is not the mean."""
    repeats = 3
    write_tiny(segment=TINY_SEGMENT, evaluate={**TINY_EVALUATE, "repeats": repeats})
    shutil.copytree("outputs/prepared/train", "outputs/prepared/val", dirs_exist_ok=True)
    for name in ("layouts", "images", "palettes"):
        np.save(f"outputs/prepared/val/{name}.npy", np.load(f"outputs/prepared/train/{name}.npy")[1:])
    pairs = []
    draw = stages.evaluate.draw

    def caught_draw(method, *arguments):
        pairs.append((method, *draw(method, *arguments)))
        return pairs[-1][1:]

    space = open_prepared_split("outputs/prepared/val").label_space
    segmenters = {"real": ConstantSegmenter(space.class_id("sky"), space.num_classes),
                  "synthetic": ConstantSegmenter(space.class_id("road"), space.num_classes)}
    monkeypatch.setattr(stages.evaluate, "draw", caught_draw)
    monkeypatch.setattr(stages.evaluate, "load_segmenter", lambda path, *_: segmenters[path.parent.name])
    features = ImageFeatures(None, extractor="colour-statistics", feature="colour")
    monkeypatch.setattr(stages.evaluate, "inception_weights", lambda path: ("colour", "colour statistics"))
    monkeypatch.setattr(stages.evaluate, "ImageFeatures", lambda weights, device: features)
    run_evaluate(monkeypatch, "reference")
    run_evaluate(monkeypatch)
    table = pd.read_csv("metrics/generation.csv").set_index("method")

    def palettes(layouts):
        return np.stack([np.bincount(layout.ravel(), minlength=space.num_classes) / layout.size for layout in layouts])

    val, ridge = open_prepared_split("outputs/prepared/val"), load_params().evaluate.fsd_ridge
    eval_ids, real, gmm = list(space.eval_ids), palettes(val.layouts), PaletteGMM.load("outputs/palette/gmm.npz")
    real_features = features(torch.from_numpy(np.array(val.images)).permute(0, 3, 1, 2))
    expected = {}
    for method, requested, labels, images in pairs:
        fake_features, repeat = features(to_uint8_chw(images)), len(expected.get(method, []))
        obtained = palettes(labels.numpy())
        confusion = confusion_matrix(labels, predict(segmenters["real"], images), space.num_classes)
        expected.setdefault(method, []).append({
            "log_likelihood": gmm.log_likelihood(obtained).mean(), "emd": earth_movers_distance(real, obtained),
            "fsd": frechet_distance(real[:, eval_ids], obtained[:, eval_ids], ridge),
            "gan_test_miou": iou_scores(confusion, eval_ids)["miou"], "fid": fid(real_features, fake_features),
            "kid": kid(real_features, fake_features, TINY_EVALUATE["kid_subset_size"], seed=repeat),
            **divergences(requested, obtained), **proportion_errors(requested, obtained)})
    assert list(expected) == table.index.tolist() and all(len(d) == repeats for d in expected.values())
    for method, draws in expected.items():
        for key in draws[0]:
            values = [d[key] for d in draws]
            assert table.loc[method, key] == pytest.approx(statistics.mean(values), rel=1e-9, abs=1e-12), (method, key)
            assert table.loc[method, f"d_{key}"] == pytest.approx(statistics.pstdev(values), rel=1e-6, abs=1e-12)
    gan_train = evaluate_segmenter(segmenters["synthetic"], np.array(val.layouts), np.array(val.images),
                                   space.num_classes, space.eval_ids)["miou"]
    assert table.loc["finetuned", "gan_train_miou"] == pytest.approx(gan_train, rel=1e-9)
    assert gan_train == 0.3125  # road everywhere: the mean of IoU 10/16 on road and 0 on sky

    # The reference row for the fixed seed: real train pairs asked for GMM palettes. Its figures come from
    # NumPy, SciPy and scikit-learn in float64 (no network), so platforms agree to ~1e-12; rel 1e-6 is
    # far below what any real change moves (one pixel of the 8×16 layouts shifts a palette by 1/128).
    pinned = {"log_likelihood": 204.07393432796346, "emd": 0.00508967261518286, "fsd": 0.010937225171603194,
              "kl": 0.15619337010470366, "mae": 0.010331535744130755, "gan_test_miou": 0.18229166666666666}
    assert table.loc["reference", list(pinned)].to_dict() == pytest.approx(pinned, rel=1e-6)
