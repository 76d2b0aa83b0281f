"""The `image` stage on the tiny Cityscapes fixture (a run, a killed run that resumes, bad params), and SEAN
with its style bank on the tiny CelebAMask-HQ fixture."""
import json
import sys
from pathlib import Path

import pytest
import torch

import image.train
from conftest import assert_pinned, levels_at, tsv_row
from stages.common import run_stage
from stages.image import main as image_main
from stages.prepare import main as prepare_main
from stages.style import main as style_main
from image.style import StyleBank

TINY_IMAGE = {"base_channels": 2, "num_upsamplings": 1, "spade_hidden": 4, "critic_channels": 4, "steps": 3,
              "batch_size": 2, "decay_start": 1, "log_every": 1, "image_every": 2, "checkpoint_every": 1,
              "eval_samples": 2}


@pytest.fixture
def prepared(cityscapes_root, write_params):
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, image=TINY_IMAGE, device="cpu",
                 **levels_at(8))
    run_stage(prepare_main)


def test_the_stage_writes_a_checkpoint_a_sample_grid_and_image_metrics(prepared, capsys):
    run_stage(image_main)
    assert Path("outputs/image/checkpoint.pt").is_file() and Path("outputs/image/samples.png").is_file()
    metrics = json.loads(Path("metrics/image.json").read_text())
    assert set(metrics) == {"class_colour_error", "shuffled_class_colour_error", "critic_real_hinge", "critic_fake_hinge"}
    assert len(Path("metrics/image.tsv").read_text().splitlines()) == 1 + 3
    assert "perceptual loss off" in capsys.readouterr().out
    # The fixture's val layouts hold one class, so shuffling them changes nothing.
    assert_pinned(metrics, {"class_colour_error": 16.8213, "shuffled_class_colour_error": 16.8213,
                            "critic_real_hinge": 1.00352, "critic_fake_hinge": 0.999024})
    assert_pinned(tsv_row("metrics/image.tsv", -1, "g_hinge", "feature_matching", "d_hinge"),
                  {"g_hinge": 0.00464832, "feature_matching": 1.9008, "d_hinge": 1.99974})


def test_a_killed_run_resumes_from_its_last_checkpoint(prepared, kill_after_checkpoint, capsys):
    disarm = kill_after_checkpoint(1)
    with pytest.raises(KeyboardInterrupt):
        run_stage(image_main)
    assert not Path("outputs/image").exists()
    disarm()
    capsys.readouterr()
    run_stage(image_main)
    assert "image: resuming at step 1" in capsys.readouterr().out
    assert Path("outputs/image/checkpoint.pt").is_file()


def test_a_non_finite_loss_stops_the_stage_and_keeps_the_last_good_checkpoint(cityscapes_root, write_params,
                                                                            monkeypatch, capsys):
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, **levels_at(8),
                 image={**TINY_IMAGE, "steps": 4, "checkpoint_every": 2}, device="cpu")
    run_stage(prepare_main)
    real_losses, calls = image.train.generator_losses, []

    def diverging_at_step_3(*args, **kwargs):
        fake, losses = real_losses(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            losses["g_hinge"] = losses["g_hinge"] * float("nan")
        return fake, losses

    monkeypatch.setattr(image.train, "generator_losses", diverging_at_step_3)
    with pytest.raises(SystemExit):
        run_stage(image_main)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert errors == ["error: non-finite g_hinge loss at step 3; training stopped before that step and the checkpoint "
                      "of step 2 is kept (lower the learning rate or check the data, then re-run)"]
    assert torch.load("outputs/image_resume.pt", weights_only=True)["step"] == 2
    assert not Path("outputs/image").exists() and not Path("metrics/image.json").exists()


@pytest.mark.parametrize("image, expected", [
    ({"vgg_weights": "missing/vgg19.pth"}, "VGG19 weights not found at missing/vgg19.pth"),
    ({"num_upsamplings": 4}, "image.num_upsamplings = 4 needs data.height and data.width divisible by 16"),
    ({"decay_start": 9}, "image.decay_start = 9"),
])
def test_bad_image_params_stop_with_one_line(prepared, write_params, cityscapes_root, capsys, image, expected):
    write_params(data={"root": str(cityscapes_root), "height": 8, "width": 16}, image={**TINY_IMAGE, **image},
                 **levels_at(8))
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run_stage(image_main)
    assert expected in capsys.readouterr().err
    assert not Path("outputs/image").exists()


def test_sean_trains_on_faces_and_its_codes_fill_a_style_bank(celeba_root, write_params, monkeypatch, capsys):
    write_params(data={"dataset": "celeba", "root": str(celeba_root), "height": 8, "width": 8}, device="cpu",
                 **levels_at(8), image={**TINY_IMAGE, "model": "sean", "style_dim": 16, "middle_blocks": 1}, style={"splits": ["train"]})
    run_stage(prepare_main)
    run_stage(image_main)
    assert "SEAN: each image in its own styles" in capsys.readouterr().out
    assert_pinned(json.loads(Path("metrics/image.json").read_text()),
                  {"class_colour_error": 5.61079, "shuffled_class_colour_error": 5.61081, "critic_real_hinge": 0.999202,
                   "critic_fake_hinge": 1.00041})
    assert_pinned(tsv_row("metrics/image.tsv", -1, "feature_matching", "d_hinge"),
                  {"feature_matching": 0.714051, "d_hinge": 2.00019})
    monkeypatch.setattr(sys, "argv", ["stages.style", "train"])
    run_stage(style_main)
    bank = StyleBank.load("outputs/style/train")
    train_count = json.loads(Path("outputs/prepared/train/manifest.json").read_text())["count"]
    assert bank.codes.shape == (train_count, 19, 16)
    assert bank.present[:, [1, 13]].all() and not bank.present[:, 14].any()  # skin and hair, no hat
    assert bank.means[1].any() and not bank.means[14].any()


def test_a_style_bank_of_a_spade_model_is_refused(prepared, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["stages.style", "train"])
    with pytest.raises(SystemExit):
        run_stage(style_main)
    assert "style banks need SEAN style codes but image.model = 'spade'" in capsys.readouterr().err
    assert not Path("outputs/style").exists()
