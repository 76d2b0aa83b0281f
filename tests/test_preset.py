import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from stages.params import load_params


@pytest.fixture
def repo_copy(tmp_path, monkeypatch):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "presets", tmp_path / "presets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def preset(*arguments):
    return subprocess.run([sys.executable, "-m", "stages.preset", *arguments], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})


def test_the_cityscapes_preset_gives_the_authors_configuration(repo_copy):
    result = preset("presets/cityscapes-128x256.yaml", "data.root=/data/cityscapes")
    assert result.returncode == 0, result.stderr
    params = load_params("params.yaml")
    assert (params.data.root, params.data.height, params.data.width) == ("/data/cityscapes", 128, 256)
    assert list(params.layout.schedule) == ["4", "8", "16", "32", "64", "128"]
    assert params.layout.schedule["128"].batch_size == 8 and params.layout.channel_max == 512
    assert params.partial.schedule["128"].batch_size == 6 and params.partial.spade_hidden == 128
    assert params.toy.city_train == 400  # keys the preset does not name are kept
    assert "# working resolution" in (repo_copy / "params.yaml").read_text()  # comments survive


def test_a_bad_override_leaves_params_untouched(repo_copy):
    before = (repo_copy / "params.yaml").read_text()
    result = preset("presets/cityscapes-128x256.yaml", "layout.final_level=100")
    assert result.returncode == 1 and "error: " in result.stderr
    result = preset("presets/cityscapes-128x256.yaml", "data.heigth=64")
    assert result.returncode == 1 and "unknown key 'heigth'" in result.stderr
    assert (repo_copy / "params.yaml").read_text() == before
