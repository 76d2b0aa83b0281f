"""Same seed, same machine, same bytes: toy data and prepared arrays (test_toy_city, test_toy_faces,
test_prepare), and here the fitted GMM and, on CPU, the weights of a trained stage."""
import shutil
from pathlib import Path

import torch

from stages.common import run_stage
from stages.palette import main as palette_main
from test_layout_stages import prepared, run_layout  # noqa: F401 (prepared is a fixture)


def tensors(state) -> list:
    if isinstance(state, dict):
        return [t for value in state.values() for t in tensors(value)]
    if isinstance(state, (list, tuple)):
        return [t for value in state for t in tensors(value)]
    return [state]


def test_the_gmm_and_two_trained_levels_are_identical_when_rerun(prepared, monkeypatch):  # noqa: F811
    runs = []
    for _ in range(2):
        run_stage(palette_main)
        for command in ("init", "4", "8"):
            run_layout(monkeypatch, command)
        runs.append((Path("outputs/palette/gmm.npz").read_bytes(),
                     torch.load("outputs/layout/8/checkpoint.pt", weights_only=True)["model"]))
        for level in ("init", "4", "8"):
            shutil.rmtree(f"outputs/layout/{level}")
    (gmm, model), (gmm_again, model_again) = runs
    assert gmm == gmm_again
    first, second = tensors(model), tensors(model_again)
    assert len(first) == len(second) and len(first) > 50
    for a, b in zip(first, second):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
