"""The authors' palette estimator (`cond_estimator.pkl`, a pickled scikit-learn `GaussianMixture`) as our
non-pickle `PaletteGMM` file.

A pickle can run any callable it names, so the file is read by an unpickler that resolves only the
NumPy array constructors and the GaussianMixture class, and the latter to a plain stand-in that keeps
the object's attributes without running any scikit-learn code (which also reads the authors' 2020
pickles, whatever scikit-learn is installed). Anything else in the file is refused before it is built.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from data.errors import InputError
from palette.gmm import PaletteGMM

MIXTURE_MODULES = ("sklearn.mixture._gaussian_mixture", "sklearn.mixture.gaussian_mixture")
NUMPY_NAMES = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
}


class PickledGaussianMixture:
    """What a pickled GaussianMixture holds: its attributes, nothing run."""

    def __setstate__(self, state: dict) -> None:
        self.state = dict(state)


class EstimatorUnpickler(pickle.Unpickler):
    def __init__(self, file, source: Path):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if module in MIXTURE_MODULES and name == "GaussianMixture":
            return PickledGaussianMixture
        if (module, name) in NUMPY_NAMES:
            return super().find_class(module, name)
        raise InputError(f"{self.source}: the pickle names {module}.{name}; a palette estimator holds only a "
                         f"scikit-learn GaussianMixture and NumPy arrays, so it was not read (nothing of it ran)")

    def persistent_load(self, pid):
        raise InputError(f"{self.source}: the pickle refers to an external object; a palette estimator has none")


def read_authors_gmm(path: str | Path, class_names: tuple[str, ...]) -> PaletteGMM:
    """The mixture in the authors' `cond_estimator.pkl`, over the classes `class_names`."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            mixture = EstimatorUnpickler(file, path).load()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise InputError(f"{path}: not a readable pickle ({error}); expected the authors' cond_estimator.pkl, "
                         f"a pickled scikit-learn GaussianMixture (is the file truncated?)") from None
    if not isinstance(mixture, PickledGaussianMixture):
        raise InputError(f"{path}: the pickle holds a {type(mixture).__name__}; expected a scikit-learn GaussianMixture")
    state = mixture.state
    missing = [key for key in ("weights_", "means_", "covariances_") if key not in state]
    if missing:
        raise InputError(f"{path}: the GaussianMixture has no {', '.join(missing)}; it was saved before fitting")
    if state.get("covariance_type") != "full":
        raise InputError(f"{path}: covariance_type = {state.get('covariance_type')!r}; the authors fit 'full' "
                         f"covariances and only those are read")
    weights, means, covariances = (np.asarray(state[key], dtype=np.float64) for key in ("weights_", "means_", "covariances_"))
    count, classes = means.shape
    if weights.shape != (count,) or covariances.shape != (count, classes, classes):
        raise InputError(f"{path}: inconsistent shapes weights {weights.shape}, means {means.shape}, "
                         f"covariances {covariances.shape}")
    if classes != len(class_names):
        raise InputError(f"{path}: the mixture is over {classes} classes; this configuration has {len(class_names)}")
    return PaletteGMM(weights=weights, means=means, covariances=covariances, class_names=tuple(class_names))


def authors_draws(gmm: PaletteGMM, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw draws and their components as the authors' sampler gives them after `np.random.seed(seed)`
    (scikit-learn's `GaussianMixture.sample` on NumPy's legacy generator: counts per component from a
    multinomial, then each component's draws in turn, grouped by component)."""
    rng = np.random.RandomState(seed)
    per_component = rng.multinomial(count, gmm.weights)
    draws = [rng.multivariate_normal(mean, covariance, int(n))
             for mean, covariance, n in zip(gmm.means, gmm.covariances, per_component)]
    return np.vstack(draws), np.repeat(np.arange(gmm.num_components), per_component)
