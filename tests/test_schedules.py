"""The learning rate every optimizer of every trainer actually steps with, at the first step, during
decay and at the last step, against each schedule written out here; and whether an optimizer starts
with fresh moments or goes on with saved ones."""
from dataclasses import dataclass

import pytest
import torch

from stages.common import run_stage
from stages.image import main as image_main
from test_finetune_stage import TINY_FINETUNE, run_finetune, trained, trained_outputs, write_tiny  # noqa: F401
from test_image_stage import TINY_IMAGE
from test_layout_stages import TINY_LAYOUT, prepared, run_layout  # noqa: F401 (fixture)
from test_segment_stage import TINY_SEGMENT, run_segment


@dataclass
class Step:
    kind: str  # Adam | SGD
    lrs: list[float]  # of every parameter group
    betas: tuple | None
    fresh: bool  # no moments yet when this step ran


@pytest.fixture
def optimizer_steps(monkeypatch) -> list[Step]:
    """Every optimizer step taken from now on, in order, as the optimizer saw it just before stepping."""
    steps = []
    for optimizer_class in (torch.optim.Adam, torch.optim.SGD):
        def recorded(self, *args, __step=optimizer_class.step, **kwargs):
            steps.append(Step(type(self).__name__, [group["lr"] for group in self.param_groups],
                              self.param_groups[0].get("betas"), not any(self.state.values())))
            return __step(self, *args, **kwargs)
        monkeypatch.setattr(optimizer_class, "step", recorded)
    return steps


def rates(steps: list[Step]) -> list[float]:
    assert all(len(set(step.lrs)) == 1 for step in steps), "every parameter group steps at one rate"
    return [step.lrs[0] for step in steps]


def test_layout_levels_step_at_the_configured_rate_and_carry_their_moments_to_the_next_level(
        prepared, monkeypatch, optimizer_steps, write_tiny):
    write_tiny(layout={**TINY_LAYOUT, "lr": 2e-3, "beta2": 0.95})
    run_layout(monkeypatch, "init")
    run_layout(monkeypatch, "4")
    level_4 = list(optimizer_steps)
    run_layout(monkeypatch, "8")
    level_8 = optimizer_steps[len(level_4):]
    # 2 iterations at the first level, 2 fade + 2 stabilise above; each a critic then a generator step.
    assert (len(level_4), len(level_8)) == (4, 8)
    assert rates(optimizer_steps) == pytest.approx([2e-3] * 12, rel=1e-12)
    assert {step.betas for step in optimizer_steps} == {(0.0, 0.95)}
    assert [step.fresh for step in level_4] == [True, True, False, False]
    assert not any(step.fresh for step in level_8)  # as the authors: one optimizer per network across levels


def test_the_image_stage_decays_both_rates_linearly_to_zero_after_decay_start(prepared, optimizer_steps, write_tiny):
    write_tiny(image={**TINY_IMAGE, "steps": 4, "decay_start": 1, "g_lr": 1e-4, "d_lr": 4e-4})
    run_stage(image_main)
    # lr_t = lr · min(1, (steps - t) / (steps - decay_start)) for the 0-based step t; generator first.
    scale = [1, 1, 2 / 3, 1 / 3]
    expected = [lr * s for s in scale for lr in (1e-4, 4e-4)]
    assert rates(optimizer_steps) == pytest.approx(expected, rel=1e-12)
    assert [step.fresh for step in optimizer_steps] == [True, True] + [False] * 6
    assert {step.betas for step in optimizer_steps} == {(0.0, 0.9)}


@pytest.mark.parametrize("kind", ["layout", "partial"])
def test_fine_tuning_starts_every_optimizer_fresh_at_its_configured_rate(trained, monkeypatch, optimizer_steps,
                                                                        write_tiny, kind):
    write_tiny(finetune={**TINY_FINETUNE, "layout_lr": 3e-5})
    run_finetune(monkeypatch, kind)
    # Per step: the image and layout generators, then the image critic, D2 and the layout critic. The
    # image stage's checkpoint ends its schedule at 1/(steps - decay_start) of its rates: none of that
    # decay, and none of its moments, carry over (as the authors: fresh optimizers).
    per_step = [1e-4, 3e-5, 4e-4, 4e-4, 3e-5]
    assert rates(optimizer_steps) == pytest.approx(per_step * TINY_FINETUNE["steps"], rel=1e-12)
    assert [step.fresh for step in optimizer_steps] == [True] * 5 + [False] * 5 * (TINY_FINETUNE["steps"] - 1)
    assert [step.betas for step in optimizer_steps[:5]] == [(0.0, 0.9), (0.0, 0.99), (0.0, 0.9), (0.0, 0.9), (0.0, 0.99)]


def test_a_resumed_fine_tuning_goes_on_with_its_own_saved_moments(trained, monkeypatch, optimizer_steps,
                                                                 kill_after_checkpoint):
    disarm = kill_after_checkpoint(2)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(monkeypatch, "layout")
    disarm()
    del optimizer_steps[:]
    run_finetune(monkeypatch, "layout")
    assert len(optimizer_steps) == 5 and not any(step.fresh for step in optimizer_steps)
    assert rates(optimizer_steps) == pytest.approx([1e-4, 1e-4, 4e-4, 4e-4, 1e-4], rel=1e-12)


def test_the_segmenter_steps_on_the_poly_schedule(trained, write_tiny, monkeypatch, optimizer_steps):
    write_tiny(chain={"finetuned": False}, segment={**TINY_SEGMENT, "steps": 4, "lr": 0.02, "poly_power": 0.9})
    run_segment(monkeypatch, "real")
    # lr_t = lr · (1 - t/steps)^power for the 0-based step t, floored at 1e-6 (the authors' rule).
    expected = [max(0.02 * (1 - t / 4) ** 0.9, 1e-6) for t in range(4)]
    assert rates(optimizer_steps) == pytest.approx(expected, rel=1e-12)
    assert expected[-1] == pytest.approx(0.02 * 0.25 ** 0.9)
    assert [step.kind for step in optimizer_steps] == ["SGD"] * 4
