"""End-to-end fine-tuning on tiny networks: where gradients go, which networks train, both variants."""
import copy

import numpy as np
import pytest
import torch

from conftest import assert_pinned
from image.finetune import FinetuneModel, FinetuneSettings, evaluate_finetune, finetune_step
from image.train import ImageModel, ImageNetworkConfig, to_uint8
from layout.layouts import discretize
from layout.train import CompletionTask, GenerationTask, LayoutModel, NetworkConfig, TrainConfig, sample_batch

C, LATENT, LEVEL = 5, 8, 2  # layouts and images 16×32

CONFIG = TrainConfig(steps=1, batch_size=3, lr=1e-4, beta1=0.0, beta2=0.99, gp_weight=10.0, ema_decay=0.9,
                     loss_terms=("entropy", "spread"), loss_weights={"entropy": 1.0, "spread": 1.0, "recover": 1.0},
                     soft_sigma=0.7, soft_mix=0.5, flip=True, seed=0, log_every=1, image_every=1, checkpoint_every=1)
TASKS = {"full": GenerationTask(), "partial": CompletionTask()}


def tiny_finetune_model(kind: str) -> FinetuneModel:
    torch.manual_seed(0)
    layout = LayoutModel.create(NetworkConfig(C, LATENT, 2, LEVEL + 1, 32, 8, "standard", completor=kind == "partial",
                                              spade_hidden=4), 1e-4, (0.0, 0.99))
    image = ImageModel.create(ImageNetworkConfig(C, 16, 32, 4, 2, 4, critic_channels=4))
    return FinetuneModel.create(layout, image, d_lr=4e-4, betas=(0.0, 0.9))


def data(seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, (6, 16, 32)).astype(np.uint8)
    labels[:, 8:] = 0
    images = rng.integers(0, 256, (6, 16, 32, 3)).astype(np.uint8)
    return labels, images


def a_batch(kind: str, seed: int = 0):
    labels, images = data()
    rng = np.random.default_rng(seed)
    return sample_batch(torch.from_numpy(labels), lambda n, r: r.dirichlet(np.ones(C), n).astype(np.float32), TASKS[kind],
                        CONFIG, C, LATENT, rng, torch.Generator().manual_seed(seed), "cpu",
                        images=torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1)


def test_the_batch_images_are_the_real_layouts_images_mirrored_with_them():
    labels, images = data()
    chosen, _, _, batch_images = a_batch("full", seed=3)
    pixels = torch.from_numpy(to_uint8(batch_images))
    for label, image in zip(chosen, pixels):
        matches = [k for k in range(len(labels)) if np.array_equal(labels[k], label.numpy())
                   or np.array_equal(labels[k][:, ::-1], label.numpy())]
        assert any(np.array_equal(images[k], image.numpy()) or np.array_equal(images[k][:, ::-1], image.numpy())
                   for k in matches)


def layout_generator_after_one_step(kind: str, settings: FinetuneSettings) -> dict:
    model = tiny_finetune_model(kind)
    _, batch, z, images = a_batch(kind)
    finetune_step(model, LEVEL, batch, z, images, CONFIG, settings, torch.Generator().manual_seed(0))
    return model.layout.generator.state_dict()


@pytest.mark.parametrize("kind", ["full", "partial"])
def test_the_image_critic_term_reaches_the_layout_generator(kind):
    without = layout_generator_after_one_step(kind, FinetuneSettings(d2_weight=0.0))
    with_term = layout_generator_after_one_step(kind, FinetuneSettings(d2_weight=1.0))
    assert any(not torch.equal(without[k], with_term[k]) for k in without)


def test_the_soft_layout_carries_gradients_into_the_image_generator_and_straight_through_too():
    model = tiny_finetune_model("full")
    _, batch, z, images = a_batch("full")
    for discretization in ("none", "max"):
        seg = model.layout.generator(z, batch.palette, LEVEL)[-1].seg
        model.image.generate(discretize(seg, discretization), images).mean().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.layout.generator.parameters())
        model.layout.generator.zero_grad(set_to_none=True)


PINNED_LOSSES = {  # one fine-tuning step of the tiny seeded networks
    ("full", False): {"layout_adversarial": -0.0710681, "layout_regularization": 1.67263, "d2_g_hinge": -1.05793e-05, "g_hinge": 0.000399625, "feature_matching": 6.02843, "d_hinge": 2.0007, "d2_hinge": 1.99941, "layout_critic": 7.7392},
    ("full", True): {"d2_g_hinge": -1.05793e-05, "g_hinge": 0.000399625, "feature_matching": 6.02843, "d_hinge": 2.0007, "d2_hinge": 1.99941},
    ("partial", False): {"layout_adversarial": 0.0543715, "layout_regularization": 1.62796, "d2_g_hinge": 1.01727e-05, "g_hinge": -0.00539509, "feature_matching": 6.21773, "d_hinge": 1.99989, "d2_hinge": 2.00076, "layout_critic": 7.05434},
    ("partial", True): {"d2_g_hinge": 8.5064e-06, "g_hinge": -0.00539509, "feature_matching": 6.21773, "d_hinge": 1.99989, "d2_hinge": 2.00096},
}


@pytest.mark.parametrize("kind", ["full", "partial"])
def test_one_step_trains_every_network_and_a_frozen_layout_stays_put(kind):
    for frozen in (False, True):
        model = tiny_finetune_model(kind)
        before = copy.deepcopy(model.state_dict())
        _, batch, z, images = a_batch(kind)
        losses = finetune_step(model, LEVEL, batch, z, images, CONFIG, FinetuneSettings(freeze_layout=frozen),
                               torch.Generator().manual_seed(0))
        assert_pinned(losses, PINNED_LOSSES[kind, frozen])
        after = model.state_dict()
        assert not torch.equal(before["image_critic"]["critics.0.blocks.0.0.weight"],
                               after["image_critic"]["critics.0.blocks.0.0.weight"])
        assert not torch.equal(before["image"]["generator"]["to_image.weight"], after["image"]["generator"]["to_image.weight"])
        assert not torch.equal(before["image"]["discriminator"]["critics.0.blocks.0.0.weight"],
                               after["image"]["discriminator"]["critics.0.blocks.0.0.weight"])
        layout_weights = [torch.equal(before["layout"]["generator"][k], after["layout"]["generator"][k])
                          for k in before["layout"]["generator"]]
        critic_weights = [torch.equal(before["layout"]["discriminator"][k], after["layout"]["discriminator"][k])
                          for k in before["layout"]["discriminator"]]
        if frozen:
            assert all(layout_weights) and all(critic_weights)
            assert "layout_critic" not in losses and "layout_adversarial" not in losses
        else:
            assert not all(layout_weights) and not all(critic_weights)
            assert {"layout_adversarial", "layout_regularization", "layout_critic"} <= set(losses)
        assert {"d2_g_hinge", "g_hinge", "feature_matching", "d_hinge", "d2_hinge"} <= set(losses)
        assert all(np.isfinite(v) for v in losses.values())


def test_the_d2_weight_scales_only_the_generator_side():
    model = tiny_finetune_model("full")
    _, batch, z, images = a_batch("full")
    weighted = finetune_step(copy.deepcopy(model), LEVEL, batch, z, images, CONFIG, FinetuneSettings(d2_weight=0.5),
                             torch.Generator().manual_seed(0))
    unit = finetune_step(copy.deepcopy(model), LEVEL, batch, z, images, CONFIG, FinetuneSettings(d2_weight=1.0),
                         torch.Generator().manual_seed(0))
    assert weighted["d2_g_hinge"] == pytest.approx(0.5 * unit["d2_g_hinge"], rel=1e-5)
    assert weighted["d2_hinge"] == pytest.approx(unit["d2_hinge"], rel=1e-5)


def test_a_saved_state_reloads_into_identical_networks():
    model = tiny_finetune_model("partial")
    _, batch, z, images = a_batch("partial")
    finetune_step(model, LEVEL, batch, z, images, CONFIG, FinetuneSettings(), torch.Generator().manual_seed(0))
    loaded = FinetuneModel.from_state_dict(model.state_dict(), layout_lr=1e-4, layout_betas=(0.0, 0.99))
    for original, copy_ in ((model.layout.ema, loaded.layout.ema), (model.image.generator, loaded.image.generator),
                            (model.image_critic, loaded.image_critic)):
        for a, b in zip(original.state_dict().values(), copy_.state_dict().values()):
            assert torch.equal(a, b)
    assert loaded.image_critic_optimizer.state_dict()["state"].keys() == model.image_critic_optimizer.state_dict()["state"].keys()


@pytest.mark.parametrize("kind", ["full", "partial"])
def test_the_evaluation_reports_the_layout_and_image_figures(kind):
    model = tiny_finetune_model(kind)
    labels, images = data()
    palettes = np.random.default_rng(0).dirichlet(np.ones(C), 6).astype(np.float32)
    metrics = evaluate_finetune(model, TASKS[kind], LEVEL, labels, images, palettes, soft_sigma=0.7, soft_mix=0.5, seed=0)
    assert set(metrics) == {"layout_tmae", "real_layout_colour_error", "generated_layout_colour_distance",
                            "real_colour_distance"}
    assert all(np.isfinite(v) and v >= 0 for v in metrics.values())
    assert model.image.generator.training and model.layout.generator.training


def test_with_a_feature_extractor_the_evaluation_adds_fid_of_both_kinds_of_images():
    import test_evaluate  # noqa: F401 (registers the colour-statistics stand-in for Inception)
    from image.fidelity import ImageFeatures, to_uint8_chw
    model = tiny_finetune_model("full")
    labels, images = data()
    features = ImageFeatures(None, extractor="colour-statistics", feature="colour")
    palettes = np.random.default_rng(0).dirichlet(np.ones(C), 6).astype(np.float32)
    metrics = evaluate_finetune(model, TASKS["full"], LEVEL, labels, images, palettes, soft_sigma=0.7, soft_mix=0.5,
                                seed=0, features=features, real_features=features(to_uint8_chw(images)))
    assert metrics["fid_generated_layouts"] > 0 and metrics["fid_real_layouts"] > 0
