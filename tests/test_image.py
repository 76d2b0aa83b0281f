import copy

import numpy as np
import pytest
import torch
from torchvision.models import vgg19

from data.errors import InputError
from image.losses import critic_hinge, feature_matching, generator_hinge, load_vgg_loss
from image.networks import MultiscaleDiscriminator, SPADEGenerator
from image.train import ImageModel, ImageNetworkConfig, evaluate_images, train_step
from conftest import assert_pinned
from layout.layouts import one_hot

C = 5


def layouts(batch, height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return one_hot(torch.randint(0, C, (batch, height, width), generator=generator), C)


@pytest.mark.parametrize("height, width, upsamplings", [(32, 64, 3), (32, 32, 3), (16, 32, 2)])
def test_images_have_the_layout_size_and_lie_in_minus_one_one(height, width, upsamplings):
    torch.manual_seed(0)
    G = SPADEGenerator(C, height=height, width=width, base_channels=4, num_upsamplings=upsamplings, spade_hidden=8)
    image = G(layouts(2, height, width))
    assert image.shape == (2, 3, height, width)
    assert image.min() >= -1 and image.max() <= 1


def test_a_resolution_the_latent_grid_cannot_divide_is_refused():
    with pytest.raises(ValueError, match="not divisible by 2\\^3"):
        SPADEGenerator(C, height=20, width=40, base_channels=4, num_upsamplings=3, spade_hidden=8)


def test_changing_one_region_of_the_layout_changes_the_image_mostly_there():
    torch.manual_seed(0)
    G = SPADEGenerator(C, height=32, width=64, base_channels=4, num_upsamplings=3, spade_hidden=8)
    with torch.no_grad():  # normalisation statistics as training would leave them
        for seed in range(30):
            G(layouts(8, 32, 64, seed))
    G.eval()
    before = torch.zeros(1, 32, 64, dtype=torch.long)
    after = before.clone()
    after[:, 8:24, 40:56] = 3
    with torch.no_grad():
        change = (G(one_hot(after, C)) - G(one_hot(before, C))).abs().mean(dim=1)[0]
    inside = torch.zeros_like(change, dtype=torch.bool)
    inside[8:24, 40:56] = True
    assert change[inside].mean() > change[~inside].mean()
    # Low-resolution blocks carry some of the change everywhere; 16+ columns away it is small.
    assert change[inside].mean() > 3 * change[:, :24].mean()


def test_the_discriminator_returns_every_layer_at_every_scale_with_the_authors_shapes():
    D = MultiscaleDiscriminator(C, base_channels=4)
    scales = D(torch.randn(1, 3, 128, 256), layouts(1, 128, 256))
    assert [[tuple(f.shape[-2:]) for f in scale] for scale in scales] == [
        [(65, 129), (33, 65), (17, 33), (18, 34)], [(33, 65), (17, 33), (9, 17), (10, 18)]]
    unconditional = MultiscaleDiscriminator(0, base_channels=4)
    assert len(unconditional(torch.randn(1, 3, 32, 64))) == 2


def test_hinge_and_feature_matching_by_hand():
    real = [[torch.zeros(1), torch.tensor([2.0, 0.0])]]
    fake = [[torch.ones(1), torch.tensor([-2.0, 0.5])]]
    assert critic_hinge(real, fake).item() == pytest.approx((0 + 1) / 2 + (0 + 1.5) / 2)
    assert generator_hinge(fake).item() == pytest.approx(0.75)
    assert feature_matching(fake, real).item() == pytest.approx(1.0)


def test_the_perceptual_loss_is_off_without_a_path_and_a_wrong_path_is_a_clear_error(tmp_path):
    assert load_vgg_loss("") is None
    with pytest.raises(InputError, match="VGG19 weights not found at .*nowhere.pth.*empty path to turn"):
        load_vgg_loss(str(tmp_path / "nowhere.pth"))
    (tmp_path / "junk.pth").write_bytes(b"")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(InputError, match="is not a torchvision VGG19 state dict"):
        load_vgg_loss(str(tmp_path / "junk.pth"))


def test_the_perceptual_loss_loads_local_weights_and_compares_images(tmp_path):
    torch.manual_seed(0)
    features = vgg19(weights=None).features.eval()
    saved = {f"features.{k}": v for k, v in features.state_dict().items()}
    torch.save(saved, tmp_path / "vgg.pth")
    loss = load_vgg_loss(str(tmp_path / "vgg.pth"))
    # The 13 convolutions up to relu5_1 (features[:30]) are the file's; nothing else is loaded.
    loaded = {key.split(".", 2)[2]: value for key, value in loss.state_dict().items()}  # slices.<i>.<index>.*
    assert len(loaded) == 26 and all(torch.equal(value, saved[f"features.{key}"]) for key, value in loaded.items())
    image, other = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    assert loss(image, image).item() == 0
    # Independently: run VGG19 layer by layer and weigh the L1 distances at relu1_1 ... relu5_1.
    x, y, expected = image, other, 0.0
    with torch.no_grad():
        for index, layer in enumerate(features[:30]):
            x, y = layer(x), layer(y)
            if index in (1, 6, 11, 20, 29):
                expected += {1: 1 / 32, 6: 1 / 16, 11: 1 / 8, 20: 1 / 4, 29: 1.0}[index] * (x - y).abs().mean().item()
    assert loss(image, other).item() == pytest.approx(expected, rel=1e-5)
    assert all(not p.requires_grad for p in loss.parameters())


def test_one_training_step_gives_the_pinned_losses_and_moves_both_networks():
    torch.manual_seed(0)
    model = ImageModel.create(ImageNetworkConfig(C, 16, 32, base_channels=4, num_upsamplings=2, spade_hidden=8,
                                                 critic_channels=4))
    before = copy.deepcopy(model.state_dict())
    losses = train_step(model, layouts(2, 16, 32), torch.rand(2, 3, 16, 32) * 2 - 1)
    assert_pinned(losses, {"g_hinge": -0.000655773, "feature_matching": 5.93378, "d_hinge": 2.00095})
    after = model.state_dict()
    # Adam's first step moves every weight by about its rate, against the gradient's sign.
    step = (after["generator"]["to_image.weight"] - before["generator"]["to_image.weight"]).flatten()[:4]
    assert step.tolist() == pytest.approx([-1e-4, -1e-4, -1e-4, -1e-4], rel=1e-4)
    assert not torch.equal(before["generator"]["to_image.weight"], after["generator"]["to_image.weight"])
    assert not torch.equal(before["discriminator"]["critics.0.blocks.0.0.weight"],
                           after["discriminator"]["critics.0.blocks.0.0.weight"])
    assert model.g_optimizer.param_groups[0]["lr"] * 4 == model.d_optimizer.param_groups[0]["lr"]


def test_the_class_colour_error_compares_each_class_region_with_the_real_one_and_the_shuffled_layouts():
    """A generator that paints every class in its real colour scores 0; from the other image's layout
    (the shuffled figure) each class region gets the mean colour of the other layout's classes there."""
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40], [0, 0, 0]], dtype=np.float64)
    labels = np.zeros((2, 16, 32), dtype=np.uint8)
    labels[0, :, 16:] = 1  # image 0: class 0 left, class 1 right
    labels[1, :8], labels[1, 8:] = 2, 3  # image 1: class 2 top, class 3 bottom
    images = colours[labels].astype(np.uint8)
    torch.manual_seed(0)
    model = ImageModel.create(ImageNetworkConfig(C, 16, 32, base_channels=2, num_upsamplings=2, spade_hidden=4,
                                                 critic_channels=4))
    palette = torch.from_numpy(colours).float()
    model.generate = lambda layouts, reference: torch.einsum("bchw,ck->bkhw", layouts, palette) / 127.5 - 1
    figures = evaluate_images(model, labels, images)
    assert figures["class_colour_error"] == pytest.approx(0, abs=1e-3)
    c = colours
    shuffled = [np.linalg.norm((c[2] + c[3]) / 2 - c[0]), np.linalg.norm((c[2] + c[3]) / 2 - c[1]),
                np.linalg.norm((c[0] + c[1]) / 2 - c[2]), np.linalg.norm((c[0] + c[1]) / 2 - c[3])]
    assert figures["shuffled_class_colour_error"] == pytest.approx(np.mean(shuffled), rel=1e-5)
