"""The palette distribution: a full-covariance Gaussian mixture over real palettes.

Fitting uses scikit-learn; sampling and likelihoods are plain NumPy on the saved parameters, so a
saved model needs neither pickle nor a matching scikit-learn version, and the same seed gives the
same samples.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from data.errors import InputError
from data.io import save_npz
from palette.palette import apply_class_constraints, project_euclidean

PROJECTIONS = ("clip", "euclidean")


@dataclass(frozen=True)
class PaletteGMM:
    weights: np.ndarray  # K
    means: np.ndarray  # K×C
    covariances: np.ndarray  # K×C×C
    class_names: tuple[str, ...]
    # How raw Gaussian draws become palettes: `clip` (clip to [0, 1] then renormalise, the authors'
    # default) or `euclidean` (exact projection onto the simplex); then the class constraints.
    projection: str = "clip"
    min_proportions: np.ndarray = field(default=None)  # C, zeros where unconstrained
    removed: np.ndarray = field(default=None)  # C bool, classes that never appear in samples

    def __post_init__(self):
        num_classes = len(self.class_names)
        if self.min_proportions is None:
            object.__setattr__(self, "min_proportions", np.zeros(num_classes))
        if self.removed is None:
            object.__setattr__(self, "removed", np.zeros(num_classes, dtype=bool))
        if self.projection not in PROJECTIONS:
            raise InputError(f"palette.projection = {self.projection!r} is unknown; use one of: {', '.join(PROJECTIONS)}")

    @property
    def num_components(self) -> int:
        return len(self.weights)

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`count` palettes (float32, rows on the simplex) and the component each came from.

        Rows come in random order, not grouped by component as scikit-learn's sampler returns them.
        """
        components = rng.choice(self.num_components, size=count, p=self.weights)
        noise = rng.standard_normal((count, self.means.shape[1]))
        draws = self.means[components] + np.einsum("nij,nj->ni", self._cholesky()[components], noise)
        return self.project(draws).astype(np.float32), components

    def project(self, draws: np.ndarray) -> np.ndarray:
        if self.projection == "clip":
            clipped = np.clip(draws, 0.0, 1.0)
            # A draw with every entry <= 0 has no direction to keep; it falls back to the projection.
            empty = clipped.sum(axis=1) <= 0
            clipped[empty] = project_euclidean(draws[empty])
            on_simplex = clipped / clipped.sum(axis=1, keepdims=True)
        else:
            on_simplex = project_euclidean(draws)
        return apply_class_constraints(on_simplex, self.min_proportions, self.removed)

    def log_likelihood(self, palettes: np.ndarray) -> np.ndarray:
        """Log density of each row under the mixture (before any projection)."""
        x = np.asarray(palettes, dtype=np.float64)
        chol = self._cholesky()
        per_component = []
        for k in range(self.num_components):
            centred = np.linalg.solve(chol[k], (x - self.means[k]).T)
            log_det = 2.0 * np.log(np.diag(chol[k])).sum()
            per_component.append(
                np.log(self.weights[k]) - 0.5 * (x.shape[1] * np.log(2 * np.pi) + log_det + (centred**2).sum(0))
            )
        stacked = np.stack(per_component)
        top = stacked.max(axis=0)
        return top + np.log(np.exp(stacked - top).sum(axis=0))

    def _cholesky(self) -> np.ndarray:
        return np.linalg.cholesky(self.covariances)

    def save(self, path: str | Path) -> None:
        save_npz(
            path,
            weights=self.weights, means=self.means, covariances=self.covariances,
            class_names=np.array(self.class_names), projection=np.array(self.projection),
            min_proportions=self.min_proportions, removed=self.removed,
        )

    @classmethod
    def load(cls, path: str | Path) -> "PaletteGMM":
        with np.load(path, allow_pickle=False) as f:
            return cls(
                weights=f["weights"], means=f["means"], covariances=f["covariances"],
                class_names=tuple(str(n) for n in f["class_names"]), projection=str(f["projection"]),
                min_proportions=f["min_proportions"], removed=f["removed"],
            )


@dataclass(frozen=True)
class SelectionStep:
    components: int
    aic: float
    mean_log_likelihood: float
    converged: bool


def fit_palette_gmm(
    palettes: np.ndarray,
    class_names: tuple[str, ...],
    *,
    min_components: int,
    max_components: int,
    n_init: int,
    seed: int,
    reg_covar: float,
    max_iter: int,
) -> tuple[PaletteGMM, list[SelectionStep]]:
    """Chooses the number of components by AIC and returns the fitted mixture and the AIC curve.

    Each size is fitted once with the given seed; the winner is refitted with `n_init` restarts
    from the same seed and whichever of the two fits the data better is kept, so the saved model is
    never worse than the one that won the selection (the authors saved an unrelated refit).
    """
    x = np.asarray(palettes, dtype=np.float64)

    def fit(components: int, restarts: int) -> GaussianMixture:
        gmm = GaussianMixture(
            components, covariance_type="full", reg_covar=reg_covar, max_iter=max_iter,
            n_init=restarts, random_state=seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return gmm.fit(x)

    steps, fits = [], {}
    for components in range(min_components, max_components + 1):
        fits[components] = gmm = fit(components, 1)
        steps.append(SelectionStep(components, float(gmm.aic(x)), float(gmm.score(x)), bool(gmm.converged_)))
    best = min(steps, key=lambda step: step.aic).components
    refit = fit(best, n_init)
    chosen = refit if refit.score(x) >= fits[best].score(x) else fits[best]
    model = PaletteGMM(
        weights=chosen.weights_, means=chosen.means_, covariances=chosen.covariances_, class_names=tuple(class_names)
    )
    return model, steps
