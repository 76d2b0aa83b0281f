"""Every generation metric against a value computed independently here (a closed form, a hand-worked case,
or a few lines of NumPy/SciPy that take another route than the implementation), on inputs where every
term and every special rule of the definition changes the result."""
import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import optimize, spatial, special, stats

from conftest import REPO
from data.labels import LabelSpace
from image.fidelity import ImageFeatures, fid, kid
from palette.comparison import divergences, earth_movers_distance, frechet_distance
from palette.gmm import PaletteGMM
from palette.metrics import proportion_errors
from segment.metrics import confusion_matrix, iou_scores
from segment.train import evaluate_segmenter
from stages.evaluate import measure
from stages.params import load_params
from test_evaluate import ColourStatistics  # noqa: F401 (registers the colour-statistics extractor)


def frechet_reference(a, b, ridge=0.0):
    """‖μa - μb‖² + Tr Σa + Tr Σb - 2 Σ √λ(Σa^½ Σb Σa^½): the symmetric form, with Σa^½ from an
    eigen-decomposition (the implementations take scipy's sqrtm or the eigenvalues of Σa Σb)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)

    def covariance(x):
        centred = x - x.mean(0)
        return centred.T @ centred / (len(x) - 1) + ridge * np.eye(x.shape[1])

    sigma_a, sigma_b = covariance(a), covariance(b)
    values, vectors = np.linalg.eigh(sigma_a)
    root_a = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sigma_b @ root_a), 0, None)).sum()
    shift = a.mean(0) - b.mean(0)
    return float(shift @ shift), float(np.trace(sigma_a) + np.trace(sigma_b) - 2 * cross)


def bhattacharyya_reference(x, y, eps=1e-6):
    return -math.log(min(max(sum(math.sqrt(u * v) for u, v in zip(x, y)), eps), 1.0))


def kl_reference(requested, obtained, eps=1e-6):
    """Mean over rows of scipy's relative entropy against the eps-smoothed, renormalised second argument."""
    return float(np.mean([stats.entropy(p, (q + eps) / (q + eps).sum()) for p, q in zip(requested, obtained)]))


def palettes_with_zeros():
    """Requested and obtained palettes over 4 classes, each with zeros where the other has mass."""
    requested = np.array([[0.5, 0.0, 0.3, 0.2], [0.1, 0.4, 0.4, 0.1], [0.3, 0.3, 0.2, 0.2]])
    obtained = np.array([[0.4, 0.2, 0.2, 0.2], [0.2, 0.5, 0.0, 0.3], [0.0, 0.4, 0.3, 0.3]])
    return requested, obtained


def test_frechet_distance_of_palettes_with_different_covariances_and_a_ridge_that_matters():
    rng = np.random.default_rng(0)
    a = rng.dirichlet([4, 2, 1, 1], 30)
    a[:, 3] = 0  # a class that never varies on one side: Σa is singular without the ridge
    a /= a.sum(1, keepdims=True)
    b = rng.dirichlet([1, 1, 3, 2], 25)
    ridge = 1e-3
    mean_term, covariance_term = frechet_reference(a, b, ridge)
    assert mean_term > 0.05 and covariance_term > 0.02  # both terms carry weight
    assert frechet_distance(a, b, ridge) == pytest.approx(mean_term + covariance_term, rel=1e-9)
    # The ridge changes the value by far more than the tolerance, and the default one by almost nothing.
    assert abs(sum(frechet_reference(a, b, 0.0)) - (mean_term + covariance_term)) > 1e-4
    assert frechet_distance(a, b) == pytest.approx(sum(frechet_reference(a, b, 1e-6)), rel=1e-7)
    assert frechet_distance(b, b, ridge) == pytest.approx(0, abs=1e-9)


def test_emd_with_equal_sets_is_the_best_permutation_and_with_unequal_sets_a_transport_plan():
    rng = np.random.default_rng(1)
    a = rng.dirichlet(np.ones(4) * 0.7, 5)
    b = rng.dirichlet(np.ones(4) * 0.7, 5)
    a[0], b[4] = [1, 0, 0, 0], [0, 0, 1, 0]  # sky against no sky: some pair costs -log(eps)
    cost = [[bhattacharyya_reference(x, y) for y in b] for x in a]
    best = min(sum(cost[i][j] for i, j in enumerate(order)) / 5 for order in itertools.permutations(range(5)))
    assert earth_movers_distance(a, b) == pytest.approx(best, rel=1e-12)
    assert earth_movers_distance(a[:1], b[4:]) == pytest.approx(-math.log(1e-6))

    # Unequal sizes: five rows of mass 1/5 against three of mass 1/3; the plan is solved here with
    # inequality constraints (every row ships at most its mass, every column receives at least its own).
    a3 = b[:3]
    cost = np.array([[bhattacharyya_reference(x, y) for y in a3] for x in a])
    ships = np.zeros((5, 15))
    receives = np.zeros((3, 15))
    for i, j in itertools.product(range(5), range(3)):
        ships[i, 3 * i + j] = 1
        receives[j, 3 * i + j] = -1
    plan = optimize.linprog(cost.ravel(), A_ub=np.vstack([ships, receives]),
                            b_ub=np.concatenate([np.full(5, 1 / 5), np.full(3, -1 / 3)]), method="highs-ipm")
    assert plan.status == 0
    assert earth_movers_distance(a, a3) == pytest.approx(plan.fun, rel=1e-7)
    # Not the assignment of the first three rows, nor the mean cost of the cheapest column for each row.
    assert earth_movers_distance(a, a3) - cost.min(1).mean() > 0.01
    assert abs(earth_movers_distance(a, a3) - earth_movers_distance(a[:3], a3)) > 0.01


def test_kl_is_requested_against_smoothed_obtained_with_zeros_on_each_side():
    requested, obtained = palettes_with_zeros()
    result = divergences(requested, obtained)
    assert result["kl"] == pytest.approx(kl_reference(requested, obtained), rel=1e-12)
    # The smoothed zeros dominate it (0.4 · log(0.4 / 1e-6) in row 1); the other direction is another number.
    assert result["kl"] > 2 and abs(result["kl"] - kl_reference(obtained, requested)) > 0.5
    assert divergences(requested, obtained, eps=1e-3)["kl"] == pytest.approx(
        kl_reference(requested, obtained, 1e-3), rel=1e-12)


def test_js_is_scipy_jensen_shannon_squared_and_its_midpoint_is_smoothed():
    requested, obtained = palettes_with_zeros()
    scipy_js = np.mean([spatial.distance.jensenshannon(p, q) ** 2 for p, q in zip(requested, obtained)])
    assert divergences(requested, obtained)["js"] == pytest.approx(scipy_js, abs=1e-5)  # eps = 1e-6 smoothing
    assert scipy_js > 0.05
    # With a large eps the smoothing of the midpoint is visible: worked by hand on one row.
    p, q, eps = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5]), 0.1
    m = (np.array([0.25, 0.5, 0.25]) + eps) / (1 + 3 * eps)  # [0.35, 0.6, 0.35] / 1.3
    by_hand = 0.5 * (0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1])) \
        + 0.5 * (0.5 * math.log(0.5 / m[1]) + 0.5 * math.log(0.5 / m[2]))
    assert divergences(p[None], q[None], eps=eps)["js"] == pytest.approx(by_hand, rel=1e-12)
    assert abs(by_hand - spatial.distance.jensenshannon(p, q) ** 2) > 1e-3


def test_mae_and_tmae_worked_by_hand_with_the_threshold_excluding_entries():
    requested = np.array([[0.60, 0.39, 0.01, 0.00],
                          [0.20, 0.005, 0.795, 0.00],
                          [0.50, 0.50, 0.00, 0.00]])
    obtained = np.array([[0.50, 0.30, 0.20, 0.00],
                         [0.40, 0.30, 0.30, 0.00],
                         [0.50, 0.40, 0.00, 0.10]])
    result = proportion_errors(requested, obtained)
    errors = [[0.10, 0.09, 0.19, 0.00], [0.20, 0.295, 0.495, 0.00], [0.00, 0.10, 0.00, 0.10]]
    assert result["mae"] == pytest.approx(sum(map(sum, errors)) / 12, rel=1e-12)
    # Class 0: all three rows asked; class 1: rows 0 and 2 (0.005 is below 0.01); class 2: row 1 only
    # (0.01 is not above the threshold); class 3: nobody asks, it counts as 0 in the mean over classes.
    per_class = [(0.10 + 0.20 + 0.00) / 3, (0.09 + 0.10) / 2, 0.495, 0.0]
    assert result["tmae"] == pytest.approx(sum(per_class) / 4, rel=1e-12)
    # A threshold of 0.45 leaves class 0 with rows 0 and 2, class 1 with row 2 and class 2 with row 1.
    assert proportion_errors(requested, obtained, threshold=0.45)["tmae"] == pytest.approx(
        ((0.10 + 0.00) / 2 + 0.10 + 0.495 + 0) / 4, rel=1e-12)


def test_gmm_log_likelihood_is_scipy_logsumexp_of_weighted_normal_densities_far_into_the_tails():
    covariances = np.array([[[0.02, 0.01, 0.0], [0.01, 0.03, -0.005], [0.0, -0.005, 0.01]],
                            [[0.05, -0.02, 0.01], [-0.02, 0.04, 0.0], [0.01, 0.0, 0.02]]])
    means = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    weights = np.array([0.3, 0.7])
    model = PaletteGMM(weights, means, covariances, ("road", "sky", "car"))
    points = np.array([[0.45, 0.35, 0.2], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4], [8.0, -6.0, 1.0]])  # the last far out
    per_component = np.stack([stats.multivariate_normal(means[k], covariances[k]).logpdf(points) + np.log(weights[k])
                              for k in range(2)])
    expected = special.logsumexp(per_component, axis=0)
    assert expected[-1] < -500  # a naive log(sum(exp)) would be -inf there
    np.testing.assert_allclose(model.log_likelihood(points), expected, rtol=1e-12)
    # Both components contribute at the middle point.
    assert np.exp(per_component[:, 2] - expected[2]).min() > 0.05


def miou_reference(truth, predicted, eval_ids):
    """IoU per evaluated class from pixel masks: pixels of a non-evaluated (void) truth class are dropped
    from the predictions; a class with an empty union has no IoU."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    scored = np.isin(truth, eval_ids)
    iou = {}
    for c in eval_ids:
        in_truth, in_prediction = truth == c, (predicted == c) & scored
        union = (in_truth | in_prediction).sum()
        if union:
            iou[c] = (in_truth & in_prediction).sum() / union
    return iou, float(np.mean(list(iou.values())))


def scene_pairs(seed, count=3):
    """Label maps over 6 classes (0 and 5 void, eval classes 1-4) and predictions in which class 4 is
    absent from the truth and predicted only on void pixels, class 3 absent from the truth but predicted,
    and void predicted on evaluated pixels."""
    rng = np.random.default_rng(seed)
    truth = rng.choice([0, 1, 2, 5], size=(count, 4, 8), p=[0.2, 0.4, 0.3, 0.1])
    predicted = np.where(rng.random(truth.shape) < 0.6, truth, rng.choice([0, 1, 2, 3], size=truth.shape))
    predicted[truth == 0] = np.where(rng.random((truth == 0).sum()) < 0.5, 4, 1)
    return truth, predicted


EVAL_IDS = (1, 2, 3, 4)


def test_miou_against_pixel_masks_with_void_pixels_and_absent_classes():
    truth, predicted = scene_pairs(4)
    iou, miou = miou_reference(truth, predicted, EVAL_IDS)
    assert 4 not in iou and iou[3] == 0  # absent from both (once void pixels are dropped), predicted only
    scores = iou_scores(confusion_matrix(torch.from_numpy(truth), torch.from_numpy(predicted), 6), EVAL_IDS)
    assert scores["absent"] == [4]
    assert scores["iou"] == pytest.approx(iou, rel=1e-12)
    assert scores["miou"] == pytest.approx(miou, rel=1e-12)
    # Swapping truth and prediction, counting void pixels or averaging over all classes all change it.
    assert abs(miou_reference(predicted, truth, EVAL_IDS)[1] - miou) > 0.01
    assert abs(miou_reference(truth, predicted, range(6))[1] - miou) > 0.01


class ColourCodeSegmenter(torch.nn.Module):
    """A segmenter whose prediction is written in the red channel: class c where red is 40·c (in [-1, 1]:
    40c/127.5 - 1). Logits peak at the nearest class."""

    def __init__(self, num_classes):
        super().__init__()
        self.register_buffer("classes", torch.arange(num_classes, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, images):
        code = (images[:, :1] + 1) * 127.5 / 40
        return {"out": -(code - self.classes) ** 2}


def coded_images(predicted, rng):
    """uint8 N×H×W×3 images whose red channel encodes `predicted` and whose other channels are noise."""
    images = rng.integers(0, 256, (*predicted.shape, 3)).astype(np.uint8)
    images[..., 0] = 40 * predicted
    return images


def test_gan_train_scores_the_synthetic_segmenter_on_real_pairs_over_uneven_batches():
    truth, predicted = scene_pairs(5, count=5)
    images = coded_images(predicted, np.random.default_rng(0))
    scores = evaluate_segmenter(ColourCodeSegmenter(6), truth.astype(np.uint8), images, 6, EVAL_IDS, batch_size=2)
    iou, miou = miou_reference(truth, predicted, EVAL_IDS)
    assert scores["iou"] == pytest.approx(iou, rel=1e-12) and scores["miou"] == pytest.approx(miou, rel=1e-12)
    assert abs(miou_reference(truth[4:], predicted[4:], EVAL_IDS)[1] - miou) > 0.01  # every batch counts


def test_a_draw_measured_gives_each_metric_of_its_generated_pairs():
    """`measure` on one draw: GAN-test scores the real segmenter's prediction on the generated images
    against the generated layouts, the palette metrics take requested and obtained in that order, FSD
    is restricted to the evaluation classes, FID and KID take the generated images' features."""
    rng = np.random.default_rng(6)
    space = LabelSpace("toy", ("void", "road", "sky", "car", "person", "static"), ((0, 0, 0),) * 6, EVAL_IDS, ())
    labels, predicted = scene_pairs(7, count=8)
    images = torch.from_numpy(coded_images(predicted, rng)).permute(0, 3, 1, 2).float() / 127.5 - 1
    obtained = np.stack([np.bincount(layout.ravel(), minlength=6) / layout.size for layout in labels])
    requested = rng.dirichlet(np.ones(6), 8)
    real_palettes = rng.dirichlet(np.ones(6) * 0.5, 10)
    gmm = PaletteGMM(np.array([1.0]), obtained.mean(0, keepdims=True), np.eye(6)[None] * 0.05, space.class_names)
    features = ImageFeatures(None, extractor="colour-statistics", feature="colour")
    real_features = features(torch.from_numpy(rng.integers(0, 256, (8, 3, 4, 8)).astype(np.uint8)))
    defaults = load_params(REPO / "params.yaml")
    params = dataclasses.replace(defaults, evaluate=dataclasses.replace(defaults.evaluate, kid_subset_size=50,
                                                                        fsd_ridge=1e-3))
    row = measure(requested, torch.from_numpy(labels), images, space=space, real_palettes=real_palettes,
                  real_features=real_features, features=features, gmm=gmm, real_segmenter=ColourCodeSegmenter(6),
                  params=params, seed=0, device="cpu")

    iou, miou = miou_reference(labels, predicted, EVAL_IDS)
    assert row["gan_test_miou"] == pytest.approx(miou, rel=1e-12)
    assert {k: v for k, v in row.items() if k.startswith("gan_test_iou_")} == pytest.approx(
        {f"gan_test_iou_{space.class_names[c]}": v for c, v in iou.items()}, rel=1e-12)
    assert row["kl"] == pytest.approx(kl_reference(requested, obtained), rel=1e-6)
    assert row["mae"] == pytest.approx(np.abs(requested - obtained).mean(), rel=1e-6)
    errors = np.abs(requested - obtained)
    asked = [errors[requested[:, c] > 0.01, c] for c in range(6)]  # per class, the rows that ask for it
    assert row["tmae"] == pytest.approx(np.mean([e.mean() if len(e) else 0.0 for e in asked]), rel=1e-6)
    columns = list(EVAL_IDS)
    assert row["fsd"] == pytest.approx(sum(frechet_reference(real_palettes[:, columns], obtained[:, columns], 1e-3)),
                                       rel=1e-6)
    assert row["emd"] == pytest.approx(earth_movers_distance(real_palettes, obtained), rel=1e-6)
    normal = stats.multivariate_normal(gmm.means[0], gmm.covariances[0])
    assert row["log_likelihood"] == pytest.approx(normal.logpdf(obtained).mean(), rel=1e-6)
    generated = features(((images + 1) * 127.5).round().to(torch.uint8))
    assert row["fid"] == pytest.approx(sum(frechet_reference(real_features.numpy(), generated.numpy())), rel=1e-6)
    assert row["kid"] == pytest.approx(kid_reference(real_features.numpy(), generated.numpy()), rel=1e-6)
    assert row["prop_diff_pp_sky"] == pytest.approx(100 * (real_palettes[:, 2].mean() - obtained[:, 2].mean()))


def kid_reference(x, y, unbiased=True):
    """MMD² with the cubic kernel k(u, v) = (u·v / d + 1)³, summed pair by pair. Unbiased (KID): the
    within-set sums leave out i = j, the cross sum keeps every pair; biased: every pair everywhere."""
    d, m, n = x.shape[1], len(x), len(y)

    def k(u, v):
        return (u @ v / d + 1) ** 3

    def within(z):
        pairs = [k(z[i], z[j]) for i in range(len(z)) for j in range(len(z)) if i != j or not unbiased]
        return sum(pairs) / len(pairs)

    return within(x) + within(y) - 2 * sum(k(u, v) for u in x for v in y) / (m * n)


def feature_sets(seed):
    """Two sets of 3-d features with different means and covariances."""
    rng = np.random.default_rng(seed)
    real = rng.normal(0, 1, (12, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 0.8, 0.2], [0.0, 0.0, 0.5]])
    fake = rng.normal(0, 1, (12, 3)) @ np.array([[0.6, 0.0, 0.0], [0.4, 1.2, 0.0], [0.0, 0.3, 0.9]]) + [0.5, 0, -0.3]
    return real, fake


def test_fid_on_feature_sets_with_different_means_and_covariances():
    real, fake = feature_sets(8)
    mean_term, covariance_term = frechet_reference(real, fake)
    assert mean_term > 0.1 and covariance_term > 0.1
    assert fid(torch.from_numpy(real), torch.from_numpy(fake)) == pytest.approx(mean_term + covariance_term, rel=1e-9)
    assert fid(torch.from_numpy(real[:9]), torch.from_numpy(fake)) == pytest.approx(
        sum(frechet_reference(real[:9], fake)), rel=1e-9)


def test_kid_is_the_unbiased_polynomial_mmd_and_its_subsets_shrink_to_the_smaller_set():
    real, fake = feature_sets(9)
    expected = kid_reference(real, fake)
    assert abs(kid_reference(real, fake, unbiased=False) - expected) > 0.1
    # Subsets of 12 out of 12 are permutations of both sets: every one gives the full-set estimate.
    assert kid(torch.from_numpy(real), torch.from_numpy(fake), subset_size=50, subsets=5) == pytest.approx(
        expected, rel=1e-9)
    # With 9 generated rows the subsets are 9 of the 12 real ones; their mean tends to the full-set estimate.
    # Over 3000 subsets the mean's spread is about 0.005 here (seeds 0, 1, 2 give 0.159, 0.168, 0.164 for
    # 0.160); the biased estimate would be 0.84.
    many = kid(torch.from_numpy(real), torch.from_numpy(fake[:9]), subset_size=50, subsets=3000)
    assert many == pytest.approx(kid_reference(real, fake[:9]), abs=0.02)
