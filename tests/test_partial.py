import copy

import numpy as np
import pytest
import torch

from conftest import assert_pinned
from layout.layouts import one_hot, soften
from layout.losses import novelty
from layout.masking import band_masks, class_masks, completion_inputs, region_proportions
from layout.networks import LayoutCompletor, LayoutOutput
from layout.train import CompletionTask, LayoutModel, NetworkConfig, TrainConfig, train_level

C, LEVELS, LATENT = 6, 3, 8


def completor() -> LayoutCompletor:
    torch.manual_seed(0)
    return LayoutCompletor(C, spade_hidden=4, latent_dim=LATENT, aspect=2, num_levels=LEVELS, channel_base=32, channel_max=8)


def labels_and_region(height=16, width=32, seed=0):
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(rng.integers(0, C, (2, height, width)))
    region = torch.from_numpy(band_masks(2, height, width, 0.5, rng))
    return labels, region


def test_merged_output_sums_to_one_per_pixel_at_every_level_and_in_fades():
    labels, region = labels_and_region()
    condition, palette = completion_inputs(one_hot(labels, C), soften(one_hot(labels, C), 0.7, 0.5), region, "real")
    net = completor()
    for level in range(LEVELS):
        for alpha in (None, 0.4):
            for out in net(torch.randn(2, LATENT), palette, level, alpha, condition=condition):
                torch.testing.assert_close(out.seg.sum(1), torch.ones_like(out.seg[:, 0]), atol=1e-5, rtol=0)
                torch.testing.assert_close(out.raw.sum(1), torch.ones_like(out.raw[:, 0]), atol=1e-5, rtol=0)
                assert out.seg.shape[1] == C and out.raw.shape[1] == C + 1


def test_outside_the_mask_the_input_is_kept_when_the_keep_entry_dominates():
    labels, region = labels_and_region()
    condition, _ = completion_inputs(one_hot(labels, C), one_hot(labels, C), region, "real")
    keep_everything = torch.zeros(2, C + 1)
    keep_everything[:, C] = 1
    out = completor()(torch.randn(2, LATENT), keep_everything, LEVELS - 1, condition=condition)[-1]
    assert torch.equal(out.seg.argmax(1)[~region], labels[~region])


def test_band_palette_plus_keep_sums_to_one_and_is_the_band_content_over_the_image():
    labels, region = labels_and_region()
    source = one_hot(labels, C)
    condition, palette = completion_inputs(source, source, region, "real")
    torch.testing.assert_close(palette.sum(1), torch.ones(2))
    area = region.float().mean(dim=(1, 2))
    torch.testing.assert_close(palette[:, C], 1 - area)
    torch.testing.assert_close(palette[:, :C], region_proportions(source, region) * area[:, None])
    inside = region[:, None].expand_as(condition)
    assert torch.all(condition[inside] == 1 / C) and torch.equal(condition[~inside], source[~inside])


@pytest.mark.parametrize("min_fraction", [0.5, 0.8, 1.0])
def test_band_width_respects_the_minimum_fraction(min_fraction):
    masks = band_masks(500, 4, 40, min_fraction, np.random.default_rng(0))
    columns = masks[:, 0, :]
    widths = columns.sum(1)
    assert widths.min() >= round(min_fraction * 40) and widths.max() <= 40
    assert (masks == masks[:, :1, :]).all()  # full height
    starts = columns.argmax(1)
    assert all(columns[i, starts[i]:starts[i] + widths[i]].all() for i in range(len(masks)))  # one contiguous band
    if min_fraction < 1:
        assert widths.max() == 40 or widths.max() > widths.min()


def test_class_regions_and_the_add_content_palette():
    labels = torch.tensor([[[0, 1, 1, 2]]])
    region = torch.from_numpy(class_masks(labels.numpy(), [1]))
    assert region.tolist() == [[[False, True, True, False]]]
    target = torch.tensor([[0.25, 0.25, 0.25, 0.25, 0.0, 0.0]])
    _, palette = completion_inputs(one_hot(labels, C), one_hot(labels, C), region, "add", target)
    # the image has 1/4 class 0, 1/2 class 1, 1/4 class 2: only class 3 is missing from the target
    torch.testing.assert_close(palette[0, :C], torch.tensor([0.0, 0.0, 0.0, 0.25, 0.0, 0.0]))
    torch.testing.assert_close(palette[0, C], torch.tensor(0.75))


def test_a_region_palette_shares_out_the_regions_area():
    labels = torch.tensor([[[0, 1, 1, 2]]])
    region = torch.from_numpy(class_masks(labels.numpy(), [1]))  # half the image
    target = torch.tensor([[0.0, 0.0, 0.0, 0.75, 0.25, 0.0]])  # of the region
    _, palette = completion_inputs(one_hot(labels, C), one_hot(labels, C), region, "region", target)
    torch.testing.assert_close(palette[0], torch.tensor([0.0, 0.0, 0.0, 0.375, 0.125, 0.0, 0.5]))


def test_novelty_is_bounded_and_only_counts_the_edited_region():
    source = one_hot(torch.zeros(1, 4, 8, dtype=torch.long), C)
    region = torch.zeros(1, 4, 8, dtype=torch.bool)
    region[..., :4] = True
    same = LayoutOutput(source, source, source)
    other = torch.zeros_like(source)
    other[:, 1, :, :4] = 1
    other[:, 0, :, 4:] = 1  # copies the source outside the region only
    assert novelty(same, source, region).item() == 1.0
    assert novelty(LayoutOutput(other, other, other), source, region).item() == 0.0


def tiny_model() -> LayoutModel:
    torch.manual_seed(0)
    config = NetworkConfig(C, LATENT, 2, LEVELS, 32, 8, "standard", completor=True, spade_hidden=4)
    return LayoutModel.create(config, 1e-3, (0.0, 0.99))


def config(steps=4) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, lr=1e-3, beta1=0.0, beta2=0.99, gp_weight=10.0, ema_decay=0.9,
                       loss_terms=("entropy", "merged_entropy", "spread", "inter"),
                       loss_weights={"entropy": 1.0, "merged_entropy": 1.0, "spread": 1.0, "recover": 1.0, "novelty": 1.0},
                       soft_sigma=0.7, soft_mix=0.5, flip=True, seed=0, log_every=1, image_every=100, checkpoint_every=3)


def reals(level):
    return np.random.default_rng(level).integers(0, C, (10, 4 * 2**level, 8 * 2**level)).astype(np.uint8)


def palettes(count, rng):
    return rng.dirichlet(np.ones(C), count).astype(np.float32)


PINNED = [  # the last logged row of one completion step per level, tiny seeded networks
    {"g_adversarial": 0.0160162, "g_regularization": 3.5115, "d_loss": 4.14429, "wasserstein": -0.0580521, "gradient_penalty": 0.408624, "entropy_4": 1.69259, "spread_4": 0.175556, "merged_entropy_4": 1.64336, "batch_tmae": 0.114435},
    {"g_adversarial": 0.249107, "g_regularization": 7.16069, "d_loss": 2.68946, "wasserstein": -0.0600426, "gradient_penalty": 0.262942, "entropy_4": 1.71568, "entropy_8": 1.71361, "spread_4": 0.132476, "spread_8": 0.250127, "merged_entropy_4": 1.67533, "merged_entropy_8": 1.67347, "batch_tmae": 0.0729167},
    {"g_adversarial": 0.250224, "g_regularization": 10.7964, "d_loss": 6.68269, "wasserstein": -0.0956181, "gradient_penalty": 0.658707, "entropy_4": 1.76719, "entropy_8": 1.73138, "entropy_16": 1.7738, "spread_4": 0.161498, "spread_8": 0.182653, "spread_16": 0.0975261, "merged_entropy_4": 1.7032, "merged_entropy_8": 1.68576, "merged_entropy_16": 1.6934, "batch_tmae": 0.0667871},
]


@pytest.mark.parametrize("level", range(LEVELS))
def test_one_completion_step_per_level_gives_the_pinned_losses_and_moves_the_weights(level):
    model = tiny_model()
    before = copy.deepcopy(model.state_dict())
    history = train_level(model, level, reals(level), palettes, config(steps=1), task=CompletionTask())
    assert_pinned({k: v for k, v in history[-1].items() if k not in ("step", "phase", "alpha")}, PINNED[level])
    head = f"heads.{level}.weight"
    assert not torch.equal(before["generator"][head], model.state_dict()["generator"][head])


def test_a_resumed_completor_level_continues_exactly():
    saved = {}
    model = tiny_model()
    train_level(model, 1, reals(1), palettes, config(), task=CompletionTask(),
                checkpoint=lambda step, rows: saved.setdefault(step, (copy.deepcopy(model.state_dict()), list(rows))))
    uninterrupted = model.state_dict()
    state, history = saved[3]
    resumed = LayoutModel.from_state_dict(state, 1e-3, (0.0, 0.99))
    train_level(resumed, 1, reals(1), palettes, config(), task=CompletionTask(), start_step=3, history=history)
    for name in ("generator", "discriminator", "ema"):
        for key, value in uninterrupted[name].items():
            torch.testing.assert_close(resumed.state_dict()[name][key], value, rtol=0, atol=0)
