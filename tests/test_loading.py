"""Loaded weights are the saved weights: every loader that rebuilds networks from a checkpoint gives
tensors equal to the file's, and leaves nothing at its random initialisation."""
import numpy as np
import pytest
import torch

from data.io import save_checkpoint
from image.chain import SynthesisChain
from image.finetune import FinetuneModel
from image.train import ImageModel, ImageNetworkConfig, load_image_model
from layout.train import LayoutModel, NetworkConfig, load_generator
from segment.model import build_segmenter
from stages.evaluate import load_segmenter

C = 35


def assert_same_tensors(module: torch.nn.Module, saved: dict) -> None:
    loaded = module.state_dict()
    assert loaded.keys() == saved.keys()
    different = [key for key, value in loaded.items() if not torch.equal(value, saved[key].to(value.device))]
    assert not different, f"loaded tensors differ from the file: {different[:5]}"


@pytest.fixture
def saved_states(tmp_path) -> dict:
    """A layout and an image checkpoint as the stages write them, with weights that differ from any fresh
    initialisation (seeded 1; loaders are then built under seed 2), and a fine-tuning checkpoint of both."""
    torch.manual_seed(1)
    layout = LayoutModel.create(NetworkConfig(C, latent_dim=8, aspect=2, num_levels=2, channel_base=16, channel_max=8,
                                              pixel_norm="standard"), 1e-3, (0.0, 0.99))
    layout.ema.load_state_dict({k: v + 0.5 for k, v in layout.generator.state_dict().items()})  # ema ≠ generator
    image = ImageModel.create(ImageNetworkConfig(C, 8, 16, base_channels=2, num_upsamplings=1, spade_hidden=4,
                                                 critic_channels=4))
    finetune = FinetuneModel.create(layout, image, d_lr=4e-4, betas=(0.0, 0.9))
    paths = {"layout": tmp_path / "layout.pt", "image": tmp_path / "image.pt", "finetune": tmp_path / "finetune.pt"}
    save_checkpoint(paths["layout"], {"model": layout.state_dict(), "level": 8, "label_space": "cityscapes"})
    save_checkpoint(paths["image"], {"model": image.state_dict(), "label_space": "cityscapes"})
    save_checkpoint(paths["finetune"], {"model": finetune.state_dict(), "level": 8, "label_space": "cityscapes"})
    torch.manual_seed(2)
    return {"paths": paths, "layout": layout.state_dict(), "image": image.state_dict(),
            "finetune": finetune.state_dict()}


def test_fine_tuning_starts_from_the_saved_networks_of_both_stages(saved_states):
    layout, image = saved_states["layout"], saved_states["image"]
    model = FinetuneModel.from_trained(layout, image, layout_lr=1e-4, layout_betas=(0.0, 0.99), g_lr=1e-4, d_lr=4e-4,
                                       image_betas=(0.0, 0.9))
    for name in ("generator", "discriminator", "ema"):
        assert_same_tensors(getattr(model.layout, name), layout[name])
    for name in ("generator", "discriminator"):
        assert_same_tensors(getattr(model.image, name), image[name])


def test_a_fine_tuning_state_reloads_every_network_and_optimizer(saved_states):
    state = saved_states["finetune"]
    model = FinetuneModel.from_state_dict(state, layout_lr=1e-4, layout_betas=(0.0, 0.99))
    assert_same_tensors(model.image_critic, state["image_critic"])
    for name in ("generator", "discriminator", "ema"):
        assert_same_tensors(getattr(model.layout, name), state["layout"][name])
    for name in ("generator", "discriminator"):
        assert_same_tensors(getattr(model.image, name), state["image"][name])
    assert model.image_critic_optimizer.state_dict()["param_groups"][0]["lr"] == 4e-4


def test_the_chain_loads_the_moving_average_and_the_image_generator_from_either_source(saved_states):
    paths = saved_states["paths"]
    separate = SynthesisChain.from_stages(paths["layout"], paths["image"])
    fine_tuned = SynthesisChain.from_finetune(paths["finetune"])
    for chain in (separate, fine_tuned):
        assert chain.level == 8
        assert_same_tensors(chain.layout, saved_states["layout"]["ema"])
        assert_same_tensors(chain.image.generator, saved_states["image"]["generator"])
    generator, level = load_generator(paths["layout"], ema=False)
    assert level == 8
    assert_same_tensors(generator, saved_states["layout"]["generator"])
    assert_same_tensors(load_image_model(paths["image"]).discriminator, saved_states["image"]["discriminator"])


def test_the_evaluation_loads_the_saved_segmenter(tmp_path):
    torch.manual_seed(3)
    segmenter = build_segmenter("mobilenet_v3_large", C)
    for buffer_name, buffer in segmenter.named_buffers():  # running statistics away from their initial values
        if buffer.is_floating_point():
            buffer.add_(torch.rand_like(buffer))
    path = tmp_path / "segment" / "real" / "checkpoint.pt"
    save_checkpoint(path, {"model": segmenter.state_dict(), "backbone": "mobilenet_v3_large"})
    torch.manual_seed(4)
    loaded = load_segmenter(path, C, "cpu")
    assert_same_tensors(loaded, segmenter.state_dict())
    assert not loaded.training
    images = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 32)).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(loaded(images)["out"], segmenter.eval()(images)["out"])
