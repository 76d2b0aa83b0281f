"""The authors' released networks as the pipeline's synthesis chain: in a copy of the repository with a
tiny Cityscapes dataset at their 128×256, `dvc repro` imports the reference full-layout folder and runs
generation, a demo, a segmenter and the evaluation on it without any training stage."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from conftest import REPO
from formats import write_cityscapes_pair
from image.chain import SynthesisChain
from repository import ENV, dvc, sh, tiny_repository

REFERENCE = REPO.parent / "shared" / "reference" / "authors-checkpoints" / "cityscapes-full"
pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} not found")
RELEASE = "cityscapes-full-128x256"
TRAINING = re.compile(r"^(layout|partial|image|finetune)")


def cityscapes_at_128x256(root, rng) -> None:
    """4 train and 2 val frames: sky over buildings over road, a car, in Cityscapes label ids."""
    for split, stems in (("train", [f"aachen_00000{k}_000019" for k in range(4)]),
                         ("val", [f"lindau_00000{k}_000019" for k in range(2)])):
        for stem in stems:
            labels = np.full((128, 256), 7)  # road
            labels[:rng.integers(30, 50)] = 23  # sky
            labels[40:rng.integers(60, 80)] = 11  # building
            left = rng.integers(0, 200)
            labels[85:105, left:left + 40] = 26  # car
            write_cityscapes_pair(root, split, stem, labels, rng)


def levels_to_128() -> dict:
    return {str(4 * 2**k): {"previous": "init" if k == 0 else str(2 * 2**k), "steps": 1, "batch_size": 2}
            for k in range(6)}


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory):
    """The repository copy after `dvc repro evaluate demo@palette_interpolation` on the imported chain
    (the authors preset with the folder copied where the README says to unzip it), and DVC's output."""
    tmp = tmp_path_factory.mktemp("authors")
    cityscapes_at_128x256(tmp / "cityscapes", np.random.default_rng(0))
    preset = yaml.safe_load((REPO / "presets" / "authors-cityscapes-full.yaml").read_text())
    repo = tiny_repository(
        tmp / "repo", data={"root": str(tmp / "cityscapes"), "height": 128, "width": 256},
        layout={"final_level": 128, "schedule": levels_to_128()},
        partial={"final_level": 128, "schedule": levels_to_128()},
        chain=preset["chain"], demo={"names": ["palette_interpolation"], "frames": 2, "samples": 1, "scale": 1},
        segment={"steps": 1, "batch_size": 2, "eval_every": 1}, evaluate={"samples": 2, "repeats": 1, "kid_subset_size": 2})
    folder = repo / preset["chain"]["authors"][RELEASE]
    folder.mkdir(parents=True)
    for path in REFERENCE.glob("*_net_*.pth"):
        shutil.copy(path, folder / path.name)
    shutil.copy(REFERENCE / "cond_estimator.pkl", folder)
    started = time.perf_counter()
    out = dvc(repo, "repro", "evaluate", "demo@palette_interpolation")
    print(f"dvc repro on the imported chain: {time.perf_counter() - started:.0f} s")
    return repo, out


def stages_run(out: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", out))


def test_no_training_stage_runs_downstream_of_the_import(imported_run):
    repo, out = imported_run
    assert stages_run(out) == {f"authors@{RELEASE}", "prepare", "palette", "reference", "segment@real",
                               "segment@synthetic", "evaluate", "demo@palette_interpolation"}
    assert not any(TRAINING.match(stage) for stage in stages_run(out))
    assert not (repo / "outputs" / "layout").exists() and not (repo / "outputs" / "image").exists()


def test_evaluate_measures_the_imported_chain_and_says_which_methods_it_has_not(imported_run):
    repo, out = imported_run
    table = pd.read_csv(repo / "metrics" / "generation.csv")
    assert table["method"].tolist() == ["reference", "full"]
    folder = f"outputs/authors/{RELEASE}"
    assert f"evaluate: partial: left out, its networks are not in chain.partial = {folder}, chain.image = " \
           f"{folder}/image" in out
    assert f"evaluate: finetuned: left out, its networks are not in chain.finetune = {folder}" in out
    assert table["gan_train_miou"].notna().tolist() == [False, True]  # chain.finetuned false: the full chain's
    assert table.loc[1, ["emd", "js"]].tolist() == pytest.approx([0.388560, 0.234438], rel=1e-3)


def test_generate_draws_from_the_imported_networks(imported_run):
    repo, _ = imported_run
    printed = sh(repo, sys.executable, "-m", "stages.generate", "generate", "--from-gmm", "2", "--seed", "0",
                 "--out", "generated")
    assert "generate: 2 scenes in generated/ (chain.finetuned: False)" in printed
    table = pd.read_csv(repo / "generated" / "proportions.csv")
    classes = list(table.columns[2:])
    requested = table[table["palette"] == "requested"][classes].to_numpy(np.float32)
    imported = repo / "outputs" / "authors" / RELEASE
    chain = SynthesisChain.from_stages(imported / "layout" / "128" / "checkpoint.pt", imported / "image" / "checkpoint.pt")
    labels, _ = chain.sample(requested, seed=0)
    for k in range(2):
        assert np.array_equal(np.array(Image.open(repo / "generated" / f"{k}_labels.png")), labels[k].numpy())
    # Pinned for the seeded tiny data: the GMM's first palette and what the reference networks make of it.
    obtained = table[table["palette"] == "obtained"].iloc[0]
    assert [requested[0, classes.index("road")], obtained["road"], obtained["building"]] == \
        pytest.approx([0.365961, 0.991486, 0.006927], rel=1e-3, abs=1e-4)


def test_the_demo_ran_on_the_imported_chain(imported_run):
    repo, _ = imported_run
    demo = pd.read_csv(repo / "outputs" / "demos" / "palette_interpolation" / "proportions.csv")
    assert demo[demo["palette"] == "obtained"]["road"].tolist() == pytest.approx([0.998596, 0.999695], abs=1e-4)


def test_the_demo_needing_a_completor_names_the_folder_without_one(imported_run):
    repo, _ = imported_run
    result = subprocess.run([sys.executable, "-m", "stages.demo", "partial_editing"], cwd=repo, env=ENV,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: outputs/authors/{RELEASE}/128/checkpoint.pt not found; chain.partial = "
                                     f"outputs/authors/{RELEASE} does not hold that network; name the folder that does")


def test_fine_tuning_starts_from_the_imported_networks_and_trains_nothing_else(imported_run):
    repo, _ = imported_run
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["chain"].update(finetuned=True, finetune="outputs/finetune")
    params["finetune"].update(steps=1, batch_size=2, eval_samples=2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(repo, "repro", "finetune")
    assert stages_run(out) == {"finetune"}
    critic = torch.load(repo / "outputs" / "authors" / RELEASE / "image" / "image_critic.pt", weights_only=True)
    tuned = torch.load(repo / "outputs" / "finetune" / "checkpoint.pt", weights_only=True)["model"]
    # One step away from the authors' image-only critic (img_d2), which fine-tuning starts from as theirs does.
    name = next(key for key in critic["image_critic"] if key.endswith(".weight"))
    assert (tuned["image_critic"][name] - critic["image_critic"][name]).abs().max() < 0.01
