"""A copy of the repository in a temporary git repo with tiny params, and the commands run in it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
    # lr 0.01 (the authors'): at the default 0.05, two SGD steps on batches of 2 at 8×16 can diverge.
    "segment": {"steps": 2, "batch_size": 2, "eval_every": 1, "lr": 0.01},
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


def tiny_repository(destination: Path, **overrides: dict) -> Path:
    """A git repo at `destination` holding the repository with the TINY params, updated by `overrides`
    (section -> values), committed."""
    copy_repository(destination)
    params = yaml.safe_load((destination / "params.yaml").read_text())
    for layer in (TINY, overrides):
        for section, values in layer.items():
            if isinstance(params.get(section), dict):
                params[section].update(values)
            else:
                params[section] = values
    (destination / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(destination, "git", "init", "-q")
    sh(destination, "git", "add", "-A")
    sh(destination, "git", "commit", "-q", "-m", "tiny")
    return destination
