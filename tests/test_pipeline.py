"""The DVC pipeline end to end, in a copy of the repository with tiny params."""
import json
import re
import subprocess
import sys
import time

import numpy as np
import yaml
from PIL import Image

from repository import ENV, dvc, sh, tiny_repository


def test_repro_then_nothing_to_do_then_experiments_rerun_only_what_their_params_change(tmp_path):
    repo = tiny_repository(tmp_path / "repo")

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

    # A two-value sweep through DVC's queue, run by a background worker in copies of the repository that
    # take the unchanged stages' outputs from the cache: only the segmenters and the evaluation rerun.
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "palette sweep")
    out = dvc(repo, "exp", "run", "--queue", "-S", "segment.real_fraction=0.5,0.75")
    assert out.count("Queued experiment") == 2
    dvc(repo, "queue", "start")
    status = wait_for_queue(repo, timeout=900)
    assert status.count("Success") == 2, status
    baseline = next(row for row in json.loads(dvc(repo, "exp", "show", "--json")) if row["experiments"])
    runs = {}
    for experiment in baseline["experiments"]:
        data = experiment["revs"][0]["data"]
        fraction = data["params"]["params.yaml"]["data"]["segment"]["real_fraction"]
        runs[fraction] = data["metrics"]["metrics/segment/real.json"]["data"]["miou"]
        log = dvc(repo, "queue", "logs", experiment["revs"][0]["name"])
        assert set(re.findall(r"Running stage '([^']+)'", log)) == {
            "segment@real", "segment@synthetic", "segment@real_synthetic", "segment@real_partial", "evaluate"}
    assert sorted(runs) == [0.5, 0.75] and all(0 <= miou <= 1 for miou in runs.values())


def wait_for_queue(repo, timeout: float) -> str:
    """`dvc queue status` once no experiment is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        status = dvc(repo, "queue", "status")
        if not re.search(r"\b(Queued|Running)\b", status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(2)


def test_a_stage_stopped_by_bad_input_says_how_to_restore_its_last_good_outputs(tmp_path):
    repo = tiny_repository(tmp_path / "repo", toy={"city_train": 4, "city_val": 2, "faces_count": 2})
    dvc(repo, "repro", "prepare")
    good = {p.relative_to(repo): p.read_bytes() for p in sorted((repo / "outputs/prepared").rglob("*.npy"))}

    # A label replaced by a colour PNG of its ids: the next run of prepare stops on it, after DVC removed
    # the stage's outputs.
    label = sorted((repo / "datasets/toycity/gtFine/train").rglob("*_gtFine_labelIds.png"))[0]
    with Image.open(label) as ids:
        colour = ids.convert("RGB")
    label.unlink()  # a new file, not a write through a link into DVC's cache
    colour.save(label)
    failed = subprocess.run([sys.executable, "-m", "dvc", "repro", "-s", "prepare"], cwd=repo, env=ENV,
                            capture_output=True, text=True)
    assert failed.returncode != 0
    errors = [line for line in (failed.stdout + failed.stderr).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "a PNG with 3 channels (mode RGB)" in errors[0], failed.stderr
    assert errors[0].endswith("(dvc repro removed the previous outputs of prepare; `dvc checkout prepare` "
                              "restores those of its last successful run)")
    assert not (repo / "outputs/prepared").exists()

    dvc(repo, "checkout", "prepare")
    assert {p.relative_to(repo): p.read_bytes() for p in sorted((repo / "outputs/prepared").rglob("*.npy"))} == good
