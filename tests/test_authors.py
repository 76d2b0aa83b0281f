"""The authors' released networks in ours: their stored forward passes reproduced, the key mapping a
round trip, and complete at the released full widths."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from authors import verify
from authors.networks import KINDS, authors_state, load_authors_state, parameter_count
from conftest import REPO
from image.networks import MultiscaleDiscriminator
from image.train import ImageNetworkConfig, build_image_generator
from layout.train import NetworkConfig, build_critic, build_generator

REFERENCE = REPO.parent / "shared" / "reference" / "authors-checkpoints"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} not found")

# Largest relative error over every stored output, measured on the reference fixtures (2 CPU cores, AMD EPYC).
TOLERANCE = 1e-5


@needs_reference
@pytest.mark.parametrize("folder", list(verify.FOLDERS))
def test_converted_networks_reproduce_the_authors_forward_passes(folder):
    with torch.no_grad():
        fixtures = verify.read(REFERENCE / folder / "fixtures.pt")
        errors = {label: value for run in verify.FOLDERS[folder] for label, value in run(REFERENCE / folder, fixtures).items()}
    expected = {"cityscapes-full": ["seg_g", "seg_d", "img_g", "img_d", "img_d2"],
                "cityscapes-partial": ["seg_g", "seg_d"], "celeba-sean": ["img_g", "img_d"]}[folder]
    assert sorted(errors) == sorted(expected)
    assert max(errors.values()) < TOLERANCE, errors


@needs_reference
def test_our_defaults_do_not_reproduce_them():
    """The compatibility settings matter: GauGAN with our pixel-centre resize is far off."""
    folder = REFERENCE / "cityscapes-full"
    generator, config = verify.image_networks(folder, "spade", 128, 256, 6, 0)
    ours = build_image_generator(ImageNetworkConfig(**{**config.__dict__, "resize": "nearest-exact"}))
    ours.load_state_dict(generator.state_dict())
    g = verify.read(folder / "fixtures.pt")["img_g"]
    layouts = verify.soft_band(g["in.label"], 35, *g["in.band"].tolist())
    with torch.no_grad():
        assert verify.error(g, "out.img", generator(layouts)) < TOLERANCE
        assert verify.error(g, "out.img", ours.eval()(layouts)) > 0.05


def tiny_networks() -> dict[str, torch.nn.Module]:
    """One small network of each kind, with the compatibility settings on."""
    layout = NetworkConfig(num_classes=5, latent_dim=4, aspect=2, num_levels=4, channel_base=32, channel_max=8,
                           pixel_norm="authors", renormalize_palette=False, resize="nearest",
                           critic_score_gain=math.sqrt(2))
    completor = NetworkConfig(**{**layout.__dict__, "completor": True, "spade_hidden": 4})
    spade = ImageNetworkConfig(num_classes=5, height=64, width=128, base_channels=1, num_upsamplings=6, spade_hidden=4,
                               resize="nearest")
    sean = ImageNetworkConfig(num_classes=5, height=32, width=32, base_channels=1, num_upsamplings=5, spade_hidden=4,
                              model="sean", style_dim=16, middle_blocks=1, resize="nearest", regions="authors",
                              encoder_channels=2)
    return {"layout": build_generator(layout), "completor": build_generator(completor),
            "layout_critic": build_critic(layout), "spade": build_image_generator(spade),
            "sean": build_image_generator(sean), "image_critic": MultiscaleDiscriminator(5, base_channels=4)}


def perturbed(network: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter and float buffer moved by seeded noise (variances kept positive), so that no
    value is an initial one."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(network.named_parameters()) + list(network.named_buffers()):
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator))
                if name.endswith("running_var"):
                    tensor.abs_().add_(0.5)
    return network


def run(kind: str, network: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(0)  # SEAN's noise
    generator = torch.Generator().manual_seed(7)
    if kind in ("layout", "completor", "layout_critic"):
        layouts = torch.softmax(torch.randn(2, 5, 32, 64, generator=generator), 1)
        if kind == "layout_critic":
            return network(layouts, 3)
        palette = torch.softmax(torch.randn(2, 5 + network.palette_extra, generator=generator), 1)
        return network(torch.randn(2, 4, generator=generator), palette, 3, condition=layouts)[-1].seg
    height, width = (64, 128) if kind in ("spade", "image_critic") else (32, 32)
    layouts = torch.softmax(4 * torch.randn(2, 5, height, width, generator=generator), 1)
    if kind == "image_critic":
        return network(torch.randn(2, 3, height, width, generator=generator), layouts)[-1][-1]
    if kind == "sean":
        return network(layouts, network.encode(torch.randn(2, 3, height, width, generator=generator), layouts))
    return network(layouts)


@pytest.mark.parametrize("kind", list(KINDS))
def test_export_to_the_authors_layout_and_back_is_exact(kind):
    original = perturbed(tiny_networks()[kind], 0).eval()
    exported = authors_state(original, kind, released_levels=4)
    restored = tiny_networks()[kind].eval()
    dropped = load_authors_state(restored, kind, exported, "exported", released_levels=4)
    aliases = dropped["aliases"]
    assert dropped["unused"] == [] and len(aliases) == (6 if kind in ("layout", "completor") else 0)
    assert all(".assisted_blocks.0.to_mask." in name for name in aliases)
    for (name, a), (_, b) in zip(original.state_dict().items(), restored.state_dict().items()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        assert torch.equal(run(kind, original), run(kind, restored))
    assert len(exported) == len(original.state_dict()) + len(aliases) + (
        sum(len(v) - 1 for k, v in original.state_dict().items() if k.endswith(("class_weight", "class_bias"))))


ESTIMATOR = REFERENCE / "cityscapes-full" / "cond_estimator.pkl"


@needs_reference
def test_the_authors_palette_estimator_becomes_our_gmm_file_with_the_same_samples(tmp_path):
    from authors.gmm import authors_draws, read_authors_gmm
    from data.labels import label_space
    from palette.gmm import PaletteGMM

    read_authors_gmm(ESTIMATOR, label_space("cityscapes").class_names).save(tmp_path / "gmm.npz")
    gmm = PaletteGMM.load(tmp_path / "gmm.npz")
    fixture = verify.read(REFERENCE / "cityscapes-full" / "fixtures.pt")["cond_estimator"]
    assert gmm.num_components == int(fixture["gmm.n_components"]) == 11
    assert np.array_equal(gmm.means.astype(np.float32), fixture["gmm.means_"].numpy())
    # The authors' CondEstimator.sample after np.random.seed(9), draw for draw.
    draws, components = authors_draws(gmm, 16, seed=9)
    assert np.array_equal(draws, fixture["sample_default.raw_gmm_sample"].numpy())
    assert np.array_equal(components, fixture["sample_default.components"].numpy())
    assert np.array_equal(gmm.project(draws).astype(np.float32), fixture["sample_default.sem_cond"].numpy())


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_naming_anything_else_is_refused_without_running_it(tmp_path):
    import pickle

    from authors.gmm import read_authors_gmm
    from data.errors import InputError

    marker = tmp_path / "ran"
    hostile = tmp_path / "cond_estimator.pkl"
    hostile.write_bytes(pickle.dumps(RunsACommand(marker)))
    with pytest.raises(InputError, match=r"cond_estimator.pkl: the pickle names (posix|os|nt)\.system; a palette "
                                         r"estimator holds only a scikit-learn GaussianMixture"):
        read_authors_gmm(hostile, ("a", "b"))
    assert not marker.exists()
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"weights_": [1.0]}))
    with pytest.raises(InputError, match="other.pkl: the pickle holds a dict; expected a scikit-learn GaussianMixture"):
        read_authors_gmm(other, ("a", "b"))
    if ESTIMATOR.is_file():
        truncated = tmp_path / "truncated.pkl"
        truncated.write_bytes(ESTIMATOR.read_bytes()[:5000])
        with pytest.raises(InputError, match="truncated.pkl: not a readable pickle .*is the file truncated"):
            read_authors_gmm(truncated, ("a", "b"))


def full_width(kind: str) -> torch.nn.Module:
    """The released configurations' networks at full width (meta tensors: shapes only, nothing allocated)."""
    layout = NetworkConfig(num_classes=35, latent_dim=512, aspect=2, num_levels=9, channel_base=4096, channel_max=512,
                           pixel_norm="authors", renormalize_palette=False, resize="nearest",
                           critic_score_gain=math.sqrt(2))
    build = {
        "layout": lambda: build_generator(layout),
        "layout_critic": lambda: build_critic(layout),
        "completor": lambda: build_generator(NetworkConfig(**{**layout.__dict__, "completor": True, "spade_hidden": 128})),
        "spade": lambda: build_image_generator(ImageNetworkConfig(35, 128, 256, 64, 6, 128, resize="nearest")),
        "image_critic": lambda: MultiscaleDiscriminator(35),
        "image_only_critic": lambda: MultiscaleDiscriminator(0),
        "sean": lambda: build_image_generator(ImageNetworkConfig(
            19, 256, 256, 64, 5, 128, model="sean", style_dim=512, middle_blocks=1, resize="nearest", regions="authors",
            encoder_channels=32)),
        "sean_critic": lambda: MultiscaleDiscriminator(19),
    }[kind]
    with torch.device("meta"):
        return build()


# Parameters of the released networks (counted with the authors' code, reference README) and the keys of
# their files. SEAN's last block has 3 × 2 blend scalars its forward never uses, which ours leave out, and
# 18 × 3 unused `Spade.param_free_norm` buffers: 982 keys in their file.
RELEASED = {"layout": (28_743_275, 86), "layout_critic": (23_164_049, 56), "completor": (47_391_172, 346),
            "spade": (93_018_051, 234), "image_critic": (1_396_866, 20), "image_only_critic": (1_325_186, 20),
            "sean": (266_907_367 - 6, 982 - 6 - 54), "sean_critic": (1_364_098, 20)}


@pytest.mark.parametrize("network", list(RELEASED))
def test_the_mapping_covers_the_released_networks_at_full_width(network):
    model = full_width(network)
    kind = network if network in KINDS else "image_critic"
    names = authors_state(model, kind, released_levels=9)
    parameters, keys = RELEASED[network]
    assert (parameter_count(model), len(names)) == (parameters, keys)
    # Every exported name is one the import reads back: the mapping is one to one at full width too.
    assert len(set(names)) == len(names)
