"""Palettes with some classes fixed: the other classes drawn from the GMM conditioned on the fixed ones."""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from palette.gmm import PaletteGMM


def sample_conditional(gmm: PaletteGMM, fixed: dict[int, float], count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` palettes (float32, rows on the simplex) whose classes in `fixed` have exactly the given
    proportions. The others are drawn from the mixture conditioned on those values (each component's
    Gaussian conditional, components reweighted by how likely they make the fixed values), clipped at 0
    and scaled to fill what the fixed classes leave."""
    num_classes = gmm.means.shape[1]
    known = np.array(sorted(fixed), dtype=int)
    free = np.array([c for c in range(num_classes) if c not in fixed], dtype=int)
    values = np.array([fixed[c] for c in known], dtype=np.float64)
    palettes = np.zeros((count, num_classes))
    palettes[:, known] = values
    remaining = 1.0 - values.sum()
    if len(free) == 0 or remaining <= 0:
        return palettes.astype(np.float32)

    log_weights, means, choleskies = [], [], []
    for weight, mean, covariance in zip(gmm.weights, gmm.means, gmm.covariances):
        known_cov = covariance[np.ix_(known, known)]
        cross = covariance[np.ix_(free, known)]
        gain = np.linalg.solve(known_cov, cross.T).T  # Σ_fk Σ_kk⁻¹
        offset = values - mean[known]
        chol = np.linalg.cholesky(known_cov)
        whitened = np.linalg.solve(chol, offset)
        log_density = -0.5 * (whitened @ whitened + 2 * np.log(np.diag(chol)).sum() + len(known) * np.log(2 * np.pi))
        log_weights.append(np.log(weight) + log_density)
        means.append(mean[free] + gain @ offset)
        conditional = covariance[np.ix_(free, free)] - gain @ cross.T
        choleskies.append(np.linalg.cholesky(conditional + 1e-9 * np.eye(len(free))))
    log_weights = np.array(log_weights)
    components = rng.choice(len(log_weights), size=count, p=np.exp(log_weights - logsumexp(log_weights)))
    noise = rng.standard_normal((count, len(free)))
    draws = np.clip(np.stack(means)[components] + np.einsum("nij,nj->ni", np.stack(choleskies)[components], noise), 0, None)
    totals = draws.sum(axis=1, keepdims=True)
    # A draw with nothing left for the free classes spreads the remainder evenly over them.
    draws = np.where(totals > 0, draws / np.where(totals > 0, totals, 1), 1.0 / len(free))
    palettes[:, free] = remaining * draws
    return palettes.astype(np.float32)
