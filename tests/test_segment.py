"""mIoU by hand, the pair streams, and the segmenter trainer on tiny sizes."""
import numpy as np
import pytest
import torch

from conftest import assert_pinned
from image.chain import SynthesisChain
from image.train import ImageModel, ImageNetworkConfig
from layout.train import LayoutModel, NetworkConfig
from segment.data import PartialPairs, RealPairs, SyntheticPairs
from segment.metrics import confusion_matrix, iou_scores
from segment.model import build_segmenter, predict
from segment.train import SegmentConfig, make_optimizer, poly_learning_rate, train_segmenter

C = 5


def test_iou_from_a_hand_computed_confusion_matrix():
    # rows: truth, columns: prediction; class 0 is void (not evaluated), class 4 appears nowhere
    confusion = np.array([[9, 1, 0, 0, 0],
                          [0, 3, 1, 0, 0],
                          [2, 1, 4, 0, 0],
                          [0, 0, 0, 0, 0],
                          [0, 0, 0, 0, 0]])
    confusion[3, 1] = 2  # class 3 is in the truth but never predicted
    scores = iou_scores(confusion, [1, 2, 3, 4])
    # class 1: tp 3, truth 4, predicted on evaluated pixels 3 + 1 + 2 = 6 (the void pixel's is ignored)
    assert scores["iou"][1] == pytest.approx(3 / (4 + 6 - 3))
    # class 2: tp 4, truth 7 (its 2 pixels predicted void are misses), predicted 5
    assert scores["iou"][2] == pytest.approx(4 / (7 + 5 - 4))
    assert scores["iou"][3] == 0.0
    assert scores["absent"] == [4] and 4 not in scores["iou"]
    assert scores["miou"] == pytest.approx((3 / 7 + 4 / 8 + 0) / 3)


def test_a_perfect_prediction_scores_one_and_the_confusion_counts_pixels():
    truth = torch.tensor([[[0, 1, 2], [2, 2, 1]]])
    confusion = confusion_matrix(truth, truth, C)
    assert confusion.sum() == 6 and confusion[2, 2] == 3 and confusion.trace() == 6
    assert iou_scores(confusion, [1, 2, 3])["miou"] == 1.0
    assert iou_scores(confusion, [1, 2, 3])["absent"] == [3]


def tiny_chains():
    torch.manual_seed(0)
    layout = LayoutModel.create(NetworkConfig(C, 8, 2, 3, 32, 8, "standard"), 1e-3, (0.0, 0.99))
    completor = LayoutModel.create(NetworkConfig(C, 8, 2, 3, 32, 8, "standard", completor=True, spade_hidden=4),
                                   1e-3, (0.0, 0.99))
    image = ImageModel.create(ImageNetworkConfig(C, 16, 32, 4, 2, 4, critic_channels=4))
    return SynthesisChain(layout.ema, 2, image), SynthesisChain(completor.ema, 2, image)


def real_pairs(count=6):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, (count, 16, 32)).astype(np.uint8)
    return RealPairs(labels, rng.integers(0, 256, (count, 16, 32, 3)).astype(np.uint8))


def test_every_stream_yields_images_and_label_ids_of_the_right_shapes():
    full, partial = tiny_chains()
    palettes = lambda n, rng: rng.dirichlet(np.ones(C), n).astype(np.float32)  # noqa: E731
    streams = [real_pairs(), SyntheticPairs(full, palettes, flip=True),
               PartialPairs(partial, real_pairs(), min_band_fraction=0.5, soft_sigma=0.7, soft_mix=0.5)]
    for stream in streams:
        images, labels = stream.batch(3, np.random.default_rng(1))
        assert images.shape == (3, 3, 16, 32) and labels.shape == (3, 16, 32) and labels.dtype == torch.long
        assert images.abs().max() <= 1 and 0 <= labels.min() and labels.max() < C
        again = stream.batch(3, np.random.default_rng(1))
        assert torch.equal(again[1], labels) and torch.allclose(again[0], images)  # drawn from the rng only


def test_the_poly_rate_starts_at_the_base_and_falls_to_the_floor():
    config = SegmentConfig(steps=10, batch_size=2, lr=0.01, momentum=0.9, weight_decay=5e-4, poly_power=0.9,
                           aux_weight=0.4, seed=0, log_every=1, eval_every=5, checkpoint_every=5)
    assert poly_learning_rate(config, 0) == 0.01
    assert poly_learning_rate(config, 5) == pytest.approx(0.01 * 0.5**0.9)
    assert poly_learning_rate(config, 10) == 1e-6


def test_one_step_on_two_streams_updates_the_segmenter_and_evaluates_at_the_end():
    torch.manual_seed(0)
    model = build_segmenter("mobilenet_v3_large", C)
    config = SegmentConfig(steps=1, batch_size=2, lr=0.01, momentum=0.9, weight_decay=5e-4, poly_power=0.9,
                           aux_weight=0.4, seed=0, log_every=1, eval_every=1, checkpoint_every=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluated = []
    history = train_segmenter(model, make_optimizer(model, config), {"real": real_pairs(), "also_real": real_pairs()},
                              config, evaluate=evaluated.append)
    assert evaluated == [1] and history[0]["step"] == 1
    assert_pinned({k: v for k, v in history[0].items() if k != "step"}, {"lr": 0.01, "real_loss": 2.35428, "also_real_loss": 2.34726})
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert predict(model, torch.zeros(1, 3, 16, 32)).shape == (1, 16, 32) and model.training


def test_backbone_weights_load_from_a_local_file_and_a_wrong_one_is_a_clear_error(tmp_path):
    from torchvision.models import mobilenet_v3_large
    from data.errors import InputError
    torch.manual_seed(0)
    saved = mobilenet_v3_large(weights=None).state_dict()
    torch.save(saved, tmp_path / "mobilenet.pth")
    torch.manual_seed(1)
    loaded = build_segmenter("mobilenet_v3_large", C, str(tmp_path / "mobilenet.pth")).backbone.state_dict()
    # Every backbone tensor is the file's `features.*` entry; the classifier head of the file is left out.
    assert len(loaded) == sum(key.startswith("features.") for key in saved) > 300
    assert all(torch.equal(value, saved[f"features.{key}"]) for key, value in loaded.items())
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(InputError, match="does not fit"):
        build_segmenter("mobilenet_v3_large", C, str(tmp_path / "junk.pth"))
    with pytest.raises(InputError, match="backbone weights not found"):
        build_segmenter("mobilenet_v3_large", C, str(tmp_path / "missing.pth"))
    with pytest.raises(InputError, match="segment.backbone = 'vgg'"):
        build_segmenter("vgg", C)


def test_every_normalisation_tracks_statistics_with_the_authors_momentum():
    model = build_segmenter("mobilenet_v3_large", C)
    momenta = {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.1}
