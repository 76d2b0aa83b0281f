import copy

import numpy as np
import pytest
import torch

from conftest import assert_pinned
from image.networks import ACE, RegionStyleEncoder, SEANGenerator, SPADEGenerator
from image.style import StyleBank, extract_styles
from image.train import ImageModel, ImageNetworkConfig, train_step
from layout.layouts import one_hot

C, S = 4, 16


def tiny_sean(**kwargs):
    torch.manual_seed(0)
    return SEANGenerator(C, style_dim=S, height=16, width=16, base_channels=4, num_upsamplings=2, spade_hidden=8,
                         **kwargs)


def warmed_up(G):
    """Normalisation statistics as training would leave them, then eval mode."""
    G.train()
    with torch.no_grad():
        for seed in range(20):
            generator = torch.Generator().manual_seed(seed)
            layout = one_hot(torch.randint(0, C, (4, 16, 16), generator=generator), C)
            G(layout, G.encode(torch.rand(4, 3, 16, 16, generator=generator) * 2 - 1, layout))
    return G.eval()


def halves():
    """A layout with class 1 on the left and class 2 on the right, and an image red left, blue right."""
    labels = torch.ones(1, 16, 16, dtype=torch.long)
    labels[:, :, 8:] = 2
    image = -torch.ones(1, 3, 16, 16)
    image[:, 0, :, :8] = 1
    image[:, 2, :, 8:] = 1
    return one_hot(labels, C), image


def test_sean_renders_images_of_the_layout_size_in_minus_one_one():
    G = tiny_sean()
    layout, image = halves()
    styles = G.encode(image, layout)
    assert styles.shape == (1, C, S)
    out = G(layout, styles)
    assert out.shape == (1, 3, 16, 16) and out.min() >= -1 and out.max() <= 1


def test_region_codes_are_averages_over_each_class_and_zero_for_absent_classes():
    encoder = RegionStyleEncoder(S)
    layout, image = halves()
    features = encoder.features(image)
    codes = encoder(image, layout)
    assert torch.allclose(codes[0, 1], features[0, :, :, :4].mean(dim=(1, 2)), atol=1e-6)
    assert torch.allclose(codes[0, 2], features[0, :, :, 4:].mean(dim=(1, 2)), atol=1e-6)
    assert torch.equal(codes[0, 0], torch.zeros(S)) and torch.equal(codes[0, 3], torch.zeros(S))


def test_a_class_style_changes_the_normalisation_only_inside_that_class():
    torch.manual_seed(0)
    ace = ACE(6, C, 8, S, use_style=True).eval()
    layout, _ = halves()
    x, styles = torch.randn(1, 6, 16, 16), torch.randn(1, C, S)
    changed = styles.clone()
    changed[0, 2] = torch.randn(S)
    difference = (ace(x, layout, changed) - ace(x, layout, styles)).abs().sum(dim=1)[0]
    assert difference[:, :7].max() == 0  # the 3×3 style convolutions reach one pixel across the border
    assert (difference[:, 8:] > 0).all()
    # Without styles (the last block) the layer is SPADE on the layout.
    plain = ACE(6, C, 8, S, use_style=False).eval()
    assert torch.equal(plain(x, layout, styles), plain.spade(x, layout))


def test_the_style_blocks_and_only_they_are_ace_with_styles():
    G = tiny_sean()
    uses_style = [m.use_style for m in G.modules() if isinstance(m, ACE)]
    assert uses_style and any(uses_style) and not all(uses_style)
    assert all(not m.use_style for m in G.stages[-1].modules() if isinstance(m, ACE))


def test_the_middle_block_keeps_the_resolution_like_the_authors_normal_topology():
    G = SPADEGenerator(C, height=32, width=32, base_channels=4, num_upsamplings=3, spade_hidden=8, middle_blocks=1)
    assert G.upsample_before == [True, False, True, True]
    assert [stage.conv_1.out_channels for stage in G.stages] == [16, 16, 8, 4]
    assert G(one_hot(torch.zeros(1, 32, 32, dtype=torch.long), C)).shape == (1, 3, 32, 32)


def test_one_sean_training_step_trains_the_encoder_and_the_class_layers():
    torch.manual_seed(0)
    model = ImageModel.create(ImageNetworkConfig(C, 16, 16, 4, 2, 8, critic_channels=4, model="sean", style_dim=S))
    before = copy.deepcopy(model.generator.state_dict())
    layout, image = halves()
    losses = train_step(model, layout.repeat(2, 1, 1, 1), image.repeat(2, 1, 1, 1))
    assert_pinned(losses, {"g_hinge": 0.00152771, "feature_matching": 8.65146, "d_hinge": 1.99897})
    after = model.generator.state_dict()
    assert not torch.equal(before["encoder.features.1.weight"], after["encoder.features.1.weight"])
    assert not torch.equal(before["head.norm_0.class_weight"], after["head.norm_0.class_weight"])


def test_style_codes_round_trip_through_the_bank(tmp_path):
    G = tiny_sean()
    layout, image = halves()
    labels = layout.argmax(dim=1).repeat(3, 1, 1).numpy()
    labels[1] = 3
    images = image.repeat(3, 1, 1, 1)
    codes, present = extract_styles(G, labels, images, batch_size=2)
    assert present.tolist() == [[False, True, True, False], [False, False, False, True], [False, True, True, False]]
    bank = StyleBank(["a", "b", "c", "d"], ["k0", "k1", "k2"], codes, present)
    bank.save(tmp_path)
    loaded = StyleBank.load(tmp_path)
    assert loaded.keys == ["k0", "k1", "k2"] and loaded.class_names == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(loaded.codes, codes)
    np.testing.assert_array_equal(loaded.present, present)
    np.testing.assert_allclose(loaded.means[1], codes[[0, 2], 1].mean(axis=0), rtol=1e-6)
    assert not loaded.means[0].any()
    assert (tmp_path / "index.csv").read_text().splitlines()[1:] == ["0,k0,b;c", "1,k1,d", "2,k2,b;c"]
    # Rendering from the bank's codes equals rendering from the encoder.
    G = warmed_up(G)
    warm_codes = extract_styles(G, labels, images)[0]
    torch.manual_seed(1)
    direct = G(layout, G.encode(image, layout))
    torch.manual_seed(1)
    from_bank = G(layout, torch.from_numpy(warm_codes[:1]))
    assert torch.allclose(direct, from_bank, atol=1e-5)
    random = loaded.random_styles(np.random.default_rng(0))
    np.testing.assert_array_equal(random[3], codes[1, 3])  # only image 1 has class d


def test_a_missing_bank_is_a_clear_error(tmp_path):
    from data.errors import InputError
    with pytest.raises(InputError, match="is not a style bank.*style.splits: \\[train\\]"):
        StyleBank.load(tmp_path)


def test_a_sean_chain_styles_generated_layouts_from_real_images():
    from image.chain import SynthesisChain
    from layout.train import LayoutModel, NetworkConfig
    torch.manual_seed(0)
    layout = LayoutModel.create(NetworkConfig(C, 8, 1, 3, 32, 8, "standard"), 1e-3, (0.0, 0.99))
    image = ImageModel.create(ImageNetworkConfig(C, 16, 16, 4, 2, 8, critic_channels=4, model="sean", style_dim=S))
    chain = SynthesisChain(layout.ema, 2, image)
    palettes = np.full((3, C), 1 / C, np.float32)
    with pytest.raises(ValueError, match="needs style codes or style images"):
        chain.sample(palettes, seed=0)
    chain.style_images = halves()[1].repeat(4, 1, 1, 1)
    labels, images = chain.sample(palettes, seed=0)
    assert images.shape == (3, 3, 16, 16)
    torch.manual_seed(5)  # ACE noise
    again = chain.render(labels, seed=0)
    torch.manual_seed(5)
    assert torch.equal(chain.render(labels, seed=0), again)
