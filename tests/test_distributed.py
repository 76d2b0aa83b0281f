"""Data-parallel training under torchrun (gloo, 2 CPU processes): every trainer's weights after its steps
are identical on both processes and equal, to float tolerance, to one process on the whole batch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from data.training import Distributed, TrainingDiverged, autocast, full_precision, stop_if_diverged

ROOT = Path(__file__).resolve().parents[1]
TRAINERS = ("layout", "partial", "spade", "sean", "finetune", "segment")
# The segmenter is deep and its batch-norm statistics come from 2-4 images, so rounding grows most there.
TOLERANCE = {"segment": 1e-4}


def run_steps(out: Path, processes: int) -> None:
    out.mkdir()
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([*launcher, str(ROOT / "tests/distributed_steps.py"), str(out)], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    run_steps(root / "one", 1)
    run_steps(root / "two", 2)
    return root


@pytest.mark.parametrize("trainer", TRAINERS)
def test_two_processes_train_like_one_process_on_the_whole_batch(weights, trainer):
    single = torch.load(weights / f"one/{trainer}_0.pt")
    ranks = [torch.load(weights / f"two/{trainer}_{rank}.pt") for rank in (0, 1)]
    for network, state in single.items():
        for key, value in state.items():
            assert torch.equal(ranks[0][network][key], ranks[1][network][key]), f"{network}.{key} differs between ranks"
            if value.is_floating_point():
                difference = (ranks[0][network][key] - value).abs().max().item()
                assert difference <= TOLERANCE.get(trainer, 1e-5), f"{network}.{key}: {difference}"


def test_the_training_stages_are_launched_with_the_process_count_param():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("layout", "partial", "image", "finetune", "finetune_partial", "segment"):
        command = stages[name]["do"]["cmd"] if "do" in stages[name] else stages[name]["cmd"]
        assert command.startswith("python -m stages.launch ${processes} stages."), name
        parameters = stages[name]["do"]["params"] if "do" in stages[name] else stages[name]["params"]
        assert {"processes", "precision"} <= set(parameters), name


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_stage_stopped_by_bad_input_ends_with_its_error_line_and_no_launcher_traceback(tmp_path, processes):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["image"]["decay_start"] = 10**6
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, "-m", "stages.launch", processes, "stages.image"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert 1 <= len(errors) <= int(processes)  # each process meets the bad input; torchrun may stop one first
    assert set(errors) == {"error: image.decay_start = 1000000; use a step between 0 and image.steps = 500"}
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    with pytest.raises(ValueError, match="a batch of 5 does not split over 2 processes"):
        Distributed(rank=1, world_size=2).shard(torch.zeros(5))
    assert Distributed(rank=1, world_size=2).shard(torch.arange(4)).tolist() == [2, 3]


def test_a_non_finite_loss_names_the_step_and_the_kept_checkpoint():
    with pytest.raises(TrainingDiverged) as caught:
        with stop_if_diverged(step=37, last_checkpoint=25):
            Distributed().check_finite({"g_hinge": torch.tensor(1.0), "d_hinge": torch.tensor(float("nan"))})
    assert str(caught.value).startswith("non-finite d_hinge loss at step 37; training stopped before that step and "
                                        "the checkpoint of step 25 is kept")


def test_bf16_autocast_runs_on_cpu_and_full_precision_regions_stay_fp32():
    convolution, x = torch.nn.Conv2d(2, 2, 3), torch.zeros(1, 2, 4, 4)
    with autocast("cpu", "bf16"):
        assert convolution(x).dtype == torch.bfloat16
        with full_precision("cpu"):
            assert convolution(x).dtype == torch.float32
    with autocast("cpu", "fp32"):
        assert convolution(x).dtype == torch.float32


@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_trainer_trains_in_bf16_on_cpu_close_to_fp32(trainer, monkeypatch):
    """The bf16 path of each trainer (autocast regions, fp32 gradient penalty and reductions, fp32
    weights and optimizer state) on the CPU: convolutions run in bf16, and every network ends finite,
    stored in fp32, and within bf16 rounding of the fp32 run (relative L2 distance of its tensors)."""
    import distributed_steps

    dtypes, real_convolution = set(), torch.nn.functional.conv2d

    def recorded(*args, **kwargs):
        output = real_convolution(*args, **kwargs)
        dtypes.add(output.dtype)
        return output

    monkeypatch.setattr(torch.nn.functional, "conv2d", recorded)
    full = distributed_steps.TRAINERS[trainer](Distributed(), "fp32")
    assert dtypes == {torch.float32}
    dtypes.clear()
    mixed = distributed_steps.TRAINERS[trainer](Distributed(), "bf16")
    assert torch.bfloat16 in dtypes
    for network, state in full.items():
        floats = [key for key, value in state.items() if value.is_floating_point()]
        assert all(mixed[network][key].dtype == state[key].dtype for key in state), network
        assert all(torch.isfinite(mixed[network][key]).all() for key in floats), network
        distance = sum((mixed[network][key] - state[key]).norm() ** 2 for key in floats) ** 0.5
        size = sum(state[key].norm() ** 2 for key in floats) ** 0.5
        # Measured: 2e-6 (layout), 7e-4 (SPADE), 1e-2 (the segmenter, whose batch norm sees 4 images).
        assert 0 < distance / size < 3e-2, f"{network}: {distance / size:.2e}"
