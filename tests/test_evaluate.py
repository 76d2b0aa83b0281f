"""Generation metrics' invariants (zero for identical sets), FID/KID through torch-fidelity offline; their values
against independent references are in test_metrics_reference.py."""
import numpy as np
import pytest
import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from data.errors import InputError
from image.fidelity import INCEPTION_FILE, ImageFeatures, fid, inception_weights, kid, to_uint8_chw
from palette.comparison import (bhattacharyya_costs, divergences, earth_movers_distance, frechet_distance,
                                mean_proportion_difference)


class ColourStatistics(FeatureExtractorBase):
    """A stand-in for Inception: per-channel mean and standard deviation of the pixels."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)

    @staticmethod
    def get_provided_features_list():
        return ("colour",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "colour"

    @staticmethod
    def can_be_compiled():
        return False

    def forward(self, x):
        x = x.float() / 255
        return (torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1),)


if "colour-statistics" not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor("colour-statistics", ColourStatistics)


def random_images(seed, count=40, shift=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.clip(rng.integers(0, 200, (count, 3, 8, 16)) + shift, 0, 255).astype(np.uint8))


def test_fid_and_kid_through_torch_fidelity_are_zero_for_identical_sets_and_grow_with_a_shift():
    features = ImageFeatures(None, extractor="colour-statistics", feature="colour")
    real = features(random_images(0))
    assert real.shape == (40, 6)
    assert fid(real, real) == pytest.approx(0, abs=1e-9)
    same = kid(real, real, subset_size=20)  # unbiased: zero up to the subsets' sampling noise
    shifted = features(random_images(0, shift=40))
    other = features(random_images(1))
    assert fid(real, shifted) > fid(real, other) > 0
    assert kid(real, shifted, subset_size=100) > 100 * abs(same)  # the subset shrinks to the set size


def test_images_become_uint8_channels_first_without_cropping():
    floats = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 3, 1, 1).expand(1, 3, 4, 8)
    assert to_uint8_chw(floats)[0, :, 0, 0].tolist() == [0, 128, 255]
    assert to_uint8_chw(np.zeros((2, 4, 8, 3), np.uint8)).shape == (2, 3, 4, 8)


def test_missing_inception_weights_make_fid_unavailable_and_a_wrong_path_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    weights, reason = inception_weights("")
    assert weights is None and "FID and KID unavailable" in reason and "nothing is downloaded" in reason
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / INCEPTION_FILE).write_bytes(b"")
    assert inception_weights("")[0] == str(tmp_path / "checkpoints" / INCEPTION_FILE)
    with pytest.raises(InputError, match="Inception weights not found at nowhere.pth"):
        inception_weights("nowhere.pth")


def test_emd_and_fsd_are_zero_for_identical_sets_in_any_order():
    rng = np.random.default_rng(1)
    a = rng.dirichlet(np.ones(5), 30)
    assert earth_movers_distance(a, a) == pytest.approx(0, abs=1e-12)
    assert earth_movers_distance(a, a[::-1]) == pytest.approx(0, abs=1e-12)
    assert frechet_distance(a, a[::-1]) == pytest.approx(0, abs=1e-9)
    assert bhattacharyya_costs(a, a).diagonal() == pytest.approx(0, abs=1e-12)


def test_divergences_of_a_palette_with_itself_are_zero_and_proportion_differences_are_in_points():
    p, q = np.array([[0.5, 0.5, 0.0]]), np.array([[0.9, 0.1, 0.0]])
    assert divergences(p, p) == pytest.approx({"kl": 0, "js": 0}, abs=1e-5)
    assert mean_proportion_difference(p, q).tolist() == pytest.approx([-40, 40, 0])
