"""A training stage killed with SIGKILL under `dvc repro` continues from its last checkpoint when re-run,
and ends with the full number of steps; its outputs appear only once it completes."""
import os
import signal
import subprocess
import sys
import time

import torch

from repository import ENV, dvc, tiny_repository

STEPS, EVERY = 120, 10


def test_a_stage_killed_mid_run_resumes_under_dvc_repro_and_completes(tmp_path):
    image = {"steps": STEPS, "checkpoint_every": EVERY, "log_every": 1, "image_every": 1000}
    repo = tiny_repository(tmp_path / "repo", image=image, processes=2)
    dvc(repo, "repro", "prepare")
    resume = repo / "outputs/image_resume.pt"

    run = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "image"], cwd=repo, env=ENV, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (resume.is_file() and torch.load(resume, weights_only=True).get("step", 0) >= 2 * EVERY):
        assert run.poll() is None, "the stage ended before it could be killed; raise STEPS"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # dvc, torchrun and both training processes
    run.wait()
    killed_at = torch.load(resume, weights_only=True)["step"]
    assert 2 * EVERY <= killed_at < STEPS
    assert not (repo / "outputs/image").exists() and not (repo / "metrics/image.json").exists()

    out = dvc(repo, "repro", "image")
    assert f"image: resuming at step {killed_at}" in out
    steps = [int(line.split("\t")[0]) for line in (repo / "metrics/image.tsv").read_text().splitlines()[1:]]
    assert steps == list(range(1, STEPS + 1))  # nothing lost or repeated from the kept checkpoint on
    assert (repo / "outputs/image/checkpoint.pt").is_file() and (repo / "metrics/image.json").is_file()
    assert not resume.exists()  # a completed stage deletes its resume file, which is not a DVC output
    assert "up to date" in dvc(repo, "status", "image")
