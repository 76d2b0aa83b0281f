"""The DVC pipeline end to end, in a copy of the repository with tiny params."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from conftest import REPO

TINY = {
    "toy": {"city_train": 200, "city_val": 20, "city_height": 64, "city_width": 128, "faces_count": 6, "faces_size": 32},
    "data": {"height": 8, "width": 16},
    "palette": {"max_components": 4, "n_init": 2},
    "layout": {"final_level": 8, "latent_dim": 8, "channel_base": 16, "channel_max": 8, "eval_samples": 8,
               "schedule": {"4": {"previous": "init", "steps": 2, "batch_size": 4},
                            "8": {"previous": "4", "steps": 2, "batch_size": 4}}},
    "partial": {"final_level": 8, "latent_dim": 8, "channel_base": 16, "channel_max": 8, "eval_samples": 8,
                "spade_hidden": 4, "schedule": {"4": {"previous": "init", "steps": 2, "batch_size": 4},
                                                "8": {"previous": "4", "steps": 2, "batch_size": 4}}},
    "image": {"base_channels": 2, "num_upsamplings": 2, "spade_hidden": 4, "critic_channels": 4, "steps": 2,
              "batch_size": 2, "decay_start": 1, "eval_samples": 4},
    "finetune": {"steps": 2, "batch_size": 2, "eval_every": 1, "eval_samples": 4},
    "segment": {"steps": 2, "batch_size": 2, "eval_every": 1},
    "evaluate": {"samples": 4, "repeats": 1, "kid_subset_size": 2},
    "demo": {"frames": 3, "samples": 2, "scale": 1},
}
ENV = dict(os.environ, DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.com",
           GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.com")


def sh(cwd: Path, *args: str) -> str:
    result = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def dvc(cwd: Path, *args: str) -> str:
    return sh(cwd, sys.executable, "-m", "dvc", *args)


def copy_repository(destination: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and name != "dvc.lock" and not name.startswith("metrics/"):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def test_repro_then_nothing_to_do_then_a_palette_sweep_reruns_from_the_palette_on(tmp_path):
    repo = tmp_path / "repo"
    copy_repository(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "tiny")

    out = dvc(repo, "repro")
    for stage in ("toy", "prepare", "palette", "layout_init", "layout@4", "layout@8", "layout_eval",
                  "partial_init", "partial@4", "partial@8", "partial_eval", "image", "finetune", "finetune_partial",
                  "segment@real", "segment@synthetic", "segment@real_synthetic", "segment@real_partial",
                  "reference", "evaluate", "demo@partial_editing", "demo@palette_interpolation",
                  "demo@latent_interpolation"):
        assert f"Running stage '{stage}'" in out
    metrics = json.loads((repo / "metrics/palette.json").read_text())
    assert metrics["components"] >= 2  # the toy scene types make palettes multi-modal
    assert np.load(repo / "outputs/prepared/train/layouts.npy").shape == (200, 8, 16)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "lock")

    # Bytecode written by importing the packages must not count as a code change.
    sh(repo, sys.executable, "-B", "-c", "import compileall; compileall.compile_dir('.', quiet=1, force=True)")
    assert "Data and pipelines are up to date" in dvc(repo, "repro")

    out = dvc(repo, "exp", "run", "-S", "palette.max_components=3")
    ran = re.findall(r"Running stage '([^']+)'", out)
    assert ran[0] == "palette" and "toy" not in ran and "prepare" not in ran and "image" not in ran
    assert json.loads((repo / "metrics/layout.json").read_text())["level"] == 8
    assert yaml.safe_load((repo / "params.yaml").read_text())["palette"]["max_components"] == 3
    # The sweep's generation and segmenter metrics against the committed run, side by side.
    diff = dvc(repo, "metrics", "diff", "--all")
    for key in ("full_tmae", "finetuned_fsd", "reference_emd", "miou", "palette.json"):
        assert key in diff
