import dataclasses

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from palette.gmm import PaletteGMM, fit_palette_gmm
from palette.palette import apply_class_constraints, palettes_from_layouts, project_euclidean


def two_scene_palettes(count: int, seed: int = 0) -> np.ndarray:
    """Palettes over 5 classes from two clearly different scene types (class 4 never appears)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.55, 0.3, 0.1, 0.05, 0.0], [0.1, 0.2, 0.3, 0.4, 0.0]])
    rows = centres[rng.integers(0, 2, count)] + rng.normal(0, 0.01, (count, 5)) * [1, 1, 1, 1, 0]
    rows = np.clip(rows, 0, None)
    return rows / rows.sum(1, keepdims=True)


def test_palettes_are_class_proportions():
    layouts = np.array([[[0, 0], [1, 2]], [[2, 2], [2, 2]]], dtype=np.uint8)
    palettes = palettes_from_layouts(layouts, 4)
    assert palettes.dtype == np.float32
    assert palettes.tolist() == [[0.5, 0.25, 0.25, 0.0], [0.0, 0.0, 1.0, 0.0]]


def test_euclidean_projection_matches_known_points_and_keeps_simplex_points():
    x = np.array([[0.5, 0.5, 0.5], [2.0, 0.0, 0.0], [-1.0, 0.2, 0.4], [0.2, 0.3, 0.5]])
    projected = project_euclidean(x)
    np.testing.assert_allclose(projected, [[1 / 3] * 3, [1, 0, 0], [0, 0.4, 0.6], [0.2, 0.3, 0.5]], atol=1e-12)


def test_class_constraints_hold_after_renormalisation():
    rng = np.random.default_rng(0)
    palettes = rng.dirichlet(np.ones(5) * 0.3, size=500)
    minimum = np.array([0.0, 0.2, 0.0, 0.1, 0.0])
    removed = np.array([False, False, True, False, False])
    constrained = apply_class_constraints(palettes, minimum, removed)
    np.testing.assert_allclose(constrained.sum(1), 1.0, atol=1e-12)
    assert (constrained[:, 2] == 0).all()
    assert (constrained >= minimum - 1e-12).all()
    # rows already meeting the constraints only lose the removed class's mass
    ok = (palettes[:, 1] >= 0.2 / (1 - palettes[:, 2])) & (palettes[:, 3] >= 0.1 / (1 - palettes[:, 2]))
    expected = np.where(removed, 0, palettes[ok]) / (1 - palettes[ok, 2:3])
    np.testing.assert_allclose(constrained[ok], expected, atol=1e-12)


def test_aic_selects_two_components_for_two_scene_types():
    palettes = two_scene_palettes(300)
    model, steps = fit_palette_gmm(palettes, tuple("abcde"), min_components=1, max_components=4,
                                   n_init=2, seed=0, reg_covar=1e-6, max_iter=100)
    assert model.num_components == 2
    assert [s.components for s in steps] == [1, 2, 3, 4]
    aics = [s.aic for s in steps]
    assert aics.index(min(aics)) == 1
    np.testing.assert_allclose(sorted(model.weights), [0.5, 0.5], atol=0.08)


def test_log_likelihood_matches_scikit_learn():
    palettes = two_scene_palettes(200)
    gmm = GaussianMixture(2, covariance_type="full", random_state=0).fit(palettes)
    model = PaletteGMM(gmm.weights_, gmm.means_, gmm.covariances_, tuple("abcde"))
    np.testing.assert_allclose(model.log_likelihood(palettes), gmm.score_samples(palettes), rtol=1e-8)


@pytest.mark.parametrize("projection", ["clip", "euclidean"])
def test_samples_are_palettes_in_random_component_order(projection):
    model, _ = fit_palette_gmm(two_scene_palettes(300), tuple("abcde"), min_components=2, max_components=2,
                               n_init=1, seed=0, reg_covar=1e-6, max_iter=100)
    model = dataclasses.replace(model, projection=projection)
    samples, components = model.sample(2000, np.random.default_rng(0))
    assert samples.dtype == np.float32 and samples.shape == (2000, 5)
    assert (samples >= 0).all()
    np.testing.assert_allclose(samples.sum(1), 1.0, atol=1e-5)
    assert 0 < components[:1000].mean() < 1  # not grouped by component
    np.testing.assert_allclose(samples.mean(0), two_scene_palettes(300).mean(0), atol=0.03)


def test_saved_model_reloads_without_pickle_and_samples_identically(tmp_path):
    model, _ = fit_palette_gmm(two_scene_palettes(300), tuple("abcde"), min_components=1, max_components=3,
                               n_init=1, seed=0, reg_covar=1e-6, max_iter=100)
    model = dataclasses.replace(model, min_proportions=np.array([0, 0, 0, 0, 0.05]),
                                removed=np.array([False, True, False, False, False]))
    model.save(tmp_path / "a.npz")
    model.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = PaletteGMM.load(tmp_path / "a.npz")
    assert loaded.class_names == tuple("abcde")
    first, _ = model.sample(50, np.random.default_rng(7))
    again, _ = loaded.sample(50, np.random.default_rng(7))
    np.testing.assert_array_equal(first, again)
    assert (again[:, 1] == 0).all() and (again[:, 4] >= 0.05 - 1e-6).all()
