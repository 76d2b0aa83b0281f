import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_pinned
from layout.layouts import discretize, one_hot, soften
from layout.losses import check_loss_terms, regularization
from layout.networks import LayoutDiscriminator, LayoutGenerator, palette_activation
from layout.train import LayoutModel, NetworkConfig, TrainConfig, train_level
from palette.metrics import proportion_errors

C, LEVELS, LATENT = 7, 3, 8  # 7 classes, layouts up to 16×32


def tiny_model(seed=0) -> LayoutModel:
    torch.manual_seed(seed)
    config = NetworkConfig(num_classes=C, latent_dim=LATENT, aspect=2, num_levels=LEVELS, channel_base=32,
                           channel_max=8, pixel_norm="standard")
    return LayoutModel.create(config, lr=1e-3, betas=(0.0, 0.99))


def palettes(batch, seed=0):
    return torch.distributions.Dirichlet(torch.ones(C) * 0.5).sample((batch,))


@pytest.fixture
def inputs():
    torch.manual_seed(0)
    return torch.randn(3, LATENT), palettes(3)


def test_class_masks_average_to_the_palette_and_pixels_sum_to_one(inputs):
    z, palette = inputs
    G = tiny_model().generator
    for level in range(LEVELS):
        for alpha in (None, 0.3):
            for out in G(z, palette, level, alpha):
                torch.testing.assert_close(out.masks.mean(dim=(2, 3)), palette, atol=1e-6, rtol=0)
                torch.testing.assert_close(out.seg.sum(dim=1), torch.ones_like(out.seg[:, 0]), atol=1e-6, rtol=0)


def test_activation_normalises_the_palette_at_the_generator_boundary(inputs):
    z, palette = inputs
    G = tiny_model().generator
    out = G(z, palette * 3, 1)[-1]
    torch.testing.assert_close(out.masks.mean(dim=(2, 3)), palette, atol=1e-6, rtol=0)


def test_one_output_per_level_with_the_right_shapes(inputs):
    z, palette = inputs
    G = tiny_model().generator
    for level in range(LEVELS):
        outs = G(z, palette, level)
        assert [tuple(o.seg.shape) for o in outs] == [(3, C, 4 * 2**i, 8 * 2**i) for i in range(level + 1)]


def test_discriminator_scores_each_sample_in_plain_and_fade_passes():
    D = tiny_model().discriminator
    for level in range(LEVELS):
        layout = torch.rand(5, C, 4 * 2**level, 8 * 2**level)
        assert D(layout, level).shape == (5, 1)
        if level:
            assert D(layout, level, alpha=0.5).shape == (5, 1)


def test_fade_endpoints_are_the_upsampled_coarse_head_and_the_fine_head(inputs):
    z, palette = inputs
    G = tiny_model().generator
    coarse = G(z, palette, 1)[-1]
    start = G(z, palette, 2, alpha=0.0)[-1]
    for name in ("seg", "masks"):
        upsampled = F.interpolate(getattr(coarse, name), scale_factor=2, mode="nearest")
        torch.testing.assert_close(getattr(start, name), upsampled, atol=1e-5, rtol=1e-5)
    end = G(z, palette, 2, alpha=1.0)[-1]
    torch.testing.assert_close(end.seg, G(z, palette, 2)[-1].seg)


def test_soften_keeps_distributions_and_is_centred():
    layout = torch.zeros(1, 2, 9, 9)
    layout[0, 1] = 1
    layout[0, :, 4, 4] = torch.tensor([1.0, 0.0])  # one pixel of class 0 in the middle
    soft = soften(layout, sigma=1.0, mix=0.5)
    torch.testing.assert_close(soft.sum(1), torch.ones(1, 9, 9))
    spot = soft[0, 0]
    assert spot.argmax() == 4 * 9 + 4
    torch.testing.assert_close(spot, spot.flip(0).flip(1))  # symmetric: no shift
    assert soften(layout, sigma=0.0, mix=0.5) is layout


def test_straight_through_argmax_is_one_hot_with_the_soft_gradient():
    seg = torch.softmax(torch.randn(2, C, 4, 8), dim=1).requires_grad_(True)
    hard = discretize(seg, "max")
    torch.testing.assert_close(hard, one_hot(seg.argmax(1), C), atol=1e-6, rtol=0)  # up to float rounding
    (hard * torch.arange(C).view(1, C, 1, 1)).sum().backward()
    assert seg.grad.abs().sum() > 0
    gumbel = discretize(seg.detach(), "gumbel", 0.5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(gumbel.sum(1), torch.ones(2, 4, 8))


def test_loss_terms_are_validated_and_inter_applies_them_at_every_scale(inputs):
    with pytest.raises(ValueError, match="unknown loss term 'entropies'"):
        check_loss_terms(["entropies"])
    z, palette = inputs
    outs = tiny_model().generator(z, palette, 2)
    weights = {"entropy": 1.0, "spread": 1.0, "recover": 1.0}
    _, final_only = regularization(outs, palette, ["entropy", "spread"], weights)
    _, every_scale = regularization(outs, palette, ["entropy", "spread", "inter"], weights)
    assert sorted(final_only) == ["entropy_16", "spread_16"]
    assert sorted(every_scale) == sorted(f"{n}_{h}" for n in ("entropy", "spread") for h in (4, 8, 16))


def test_proportion_errors_by_hand():
    requested = np.array([[0.5, 0.5, 0.0], [0.9, 0.005, 0.095]])
    obtained = np.array([[0.4, 0.6, 0.0], [0.8, 0.1, 0.1]])
    errors = proportion_errors(requested, obtained)
    assert errors["mae"] == pytest.approx((0.1 + 0.1 + 0 + 0.1 + 0.095 + 0.005) / 6)
    # class 0: both samples ask (0.1, 0.1); class 1: only the first (0.1); class 2: only the second (0.005)
    assert errors["tmae"] == pytest.approx((0.1 + 0.1 + 0.005) / 3)


def train_config(steps=4, **changes) -> TrainConfig:
    config = TrainConfig(steps=steps, batch_size=4, lr=1e-3, beta1=0.0, beta2=0.99, gp_weight=10.0, ema_decay=0.9,
                         loss_terms=("entropy", "spread", "inter"), loss_weights={"entropy": 1.0, "spread": 1.0, "recover": 1.0},
                         soft_sigma=0.7, soft_mix=0.5, flip=True, seed=0, log_every=1, image_every=100, checkpoint_every=3)
    return config.__class__(**{**config.__dict__, **changes})


def sample_palettes(count, rng):
    return rng.dirichlet(np.ones(C) * 0.5, size=count).astype(np.float32)


def reals(level):
    rng = np.random.default_rng(level)
    return rng.integers(0, C, (10, 4 * 2**level, 8 * 2**level)).astype(np.uint8)


PINNED = [  # the last logged row of one step per level, tiny seeded networks
    {"g_adversarial": 0.00412928, "g_regularization": 1.3667, "d_loss": 1.94549, "wasserstein": 0.015663, "gradient_penalty": 0.196115, "entropy_4": 1.09317, "spread_4": 0.273535, "batch_tmae": 0.0562992},
    {"g_adversarial": 0.0139023, "g_regularization": 3.11115, "d_loss": 6.92879, "wasserstein": 0.00279999, "gradient_penalty": 0.693159, "entropy_4": 1.25859, "entropy_8": 1.35003, "spread_4": 0.352307, "spread_8": 0.150221, "batch_tmae": 0.0688502},
    {"g_adversarial": 0.0126657, "g_regularization": 4.41629, "d_loss": 8.94067, "wasserstein": 0.015652, "gradient_penalty": 0.895632, "entropy_4": 1.24054, "entropy_8": 1.28921, "entropy_16": 1.33914, "spread_4": 0.224568, "spread_8": 0.176138, "spread_16": 0.146696, "batch_tmae": 0.102254},
]


@pytest.mark.parametrize("level", range(LEVELS))
def test_one_training_step_per_level_gives_the_pinned_losses_and_moves_the_weights(level):
    model = tiny_model()
    before = copy.deepcopy(model.state_dict())
    history = train_level(model, level, reals(level), sample_palettes, train_config(steps=1))
    assert len(history) == (1 if level == 0 else 2)
    assert history[-1]["phase"] == "stabilise"
    assert_pinned({k: v for k, v in history[-1].items() if k not in ("step", "phase", "alpha")}, PINNED[level])
    after = model.state_dict()
    for name in ("generator", "discriminator", "ema"):
        head = f"heads.{level}.weight" if name != "discriminator" else f"from_layout.{level}.weight"
        assert not torch.equal(before[name][head], after[name][head]), name


def test_a_resumed_level_continues_exactly_from_its_saved_step():
    saved = {}

    def keep(step, history):
        saved.setdefault(step, (copy.deepcopy(model.state_dict()), list(history)))

    model = tiny_model()
    train_level(model, 1, reals(1), sample_palettes, train_config(), checkpoint=keep)
    uninterrupted = model.state_dict()
    assert sorted(saved) == [3, 6, 8]

    state, history = saved[3]
    model = LayoutModel.from_state_dict(state, lr=1e-3, betas=(0.0, 0.99))
    resumed_history = train_level(model, 1, reals(1), sample_palettes, train_config(), start_step=3, history=history)
    assert [row["step"] for row in resumed_history] == list(range(1, 9))
    for name in ("generator", "discriminator", "ema"):
        for key, value in uninterrupted[name].items():
            torch.testing.assert_close(model.state_dict()[name][key], value, rtol=0, atol=0)


def test_square_layouts_for_faces():
    G = LayoutGenerator(19, latent_dim=LATENT, aspect=1, num_levels=3, channel_base=32, channel_max=8)
    D = LayoutDiscriminator(19, aspect=1, num_levels=3, channel_base=32, channel_max=8)
    palette = torch.distributions.Dirichlet(torch.ones(19)).sample((2,))
    outs = G(torch.randn(2, LATENT), palette, 2, alpha=0.5)
    assert [tuple(o.seg.shape[-2:]) for o in outs] == [(4, 4), (8, 8), (16, 16)]
    assert D(outs[-1].seg, 2, alpha=0.5).shape == (2, 1)
