"""Comparing sets of palettes: how close generated layouts' compositions are to real ones (Fréchet
distance, earth mover's distance), and how far obtained palettes are from requested ones (KL, JS).
Palettes are rows of class proportions."""
from __future__ import annotations

import numpy as np
from scipy import linalg, optimize


def frechet_distance(a: np.ndarray, b: np.ndarray, ridge: float = 1e-6) -> float:
    """‖μa - μb‖² + Tr(Σa + Σb - 2 (Σa Σb)^½) between Gaussians fitted to the rows of `a` and `b`
    (unbiased covariances), each with `ridge`·I added: palettes have classes that never vary."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    eye = ridge * np.eye(a.shape[1])
    sigma_a, sigma_b = np.atleast_2d(np.cov(a, rowvar=False)) + eye, np.atleast_2d(np.cov(b, rowvar=False)) + eye
    covmean = linalg.sqrtm(sigma_a @ sigma_b)
    difference = a.mean(axis=0) - b.mean(axis=0)
    return float(difference @ difference + np.trace(sigma_a + sigma_b - 2 * covmean.real))


def bhattacharyya_costs(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """-log(Σ_c √(a_c b_c)) for every pair of rows, as one matrix product. The coefficient is clipped to
    [eps, 1] (the authors added eps), so identical palettes cost exactly 0 and disjoint ones -log(eps)."""
    coefficients = np.sqrt(np.clip(a, 0, None)) @ np.sqrt(np.clip(b, 0, None)).T
    return -np.log(np.clip(coefficients, eps, 1.0))


def earth_movers_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Exact optimal-transport cost between the uniform empirical distributions of the rows of `a` and
    `b` under the Bhattacharyya ground cost: an assignment for equal sizes, a linear program otherwise."""
    costs = bhattacharyya_costs(np.asarray(a, np.float64), np.asarray(b, np.float64))
    n, m = costs.shape
    if n == m:
        rows, columns = optimize.linear_sum_assignment(costs)
        return float(costs[rows, columns].mean())
    # Transport plan P (n×m, row-major): each row sums to 1/n, each column to 1/m.
    row_sums = np.kron(np.eye(n), np.ones(m))
    column_sums = np.kron(np.ones(n), np.eye(m))
    result = optimize.linprog(costs.ravel(), A_eq=np.vstack([row_sums, column_sums]),
                              b_eq=np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)]), bounds=(0, None),
                              method="highs")
    return float(result.fun)


def divergences(requested: np.ndarray, obtained: np.ndarray, eps: float = 1e-6) -> dict[str, float]:
    """Mean KL(requested ‖ obtained) and Jensen-Shannon divergence over rows, in nats, over every class;
    the second argument of each KL is smoothed by `eps` and renormalised (the authors' convention)."""
    p, q = np.asarray(requested, np.float64), np.asarray(obtained, np.float64)

    def kl(x, y):
        y = (y + eps) / (y + eps).sum(axis=1, keepdims=True)
        terms = np.where(x > 0, x * np.log(np.where(x > 0, x, 1) / y), 0.0)
        return terms.sum(axis=1)

    middle = (p + q) / 2
    return {"kl": float(kl(p, q).mean()), "js": float((kl(p, middle) / 2 + kl(q, middle) / 2).mean())}


def mean_proportion_difference(real: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Per class, the real mean proportion minus the generated one, in percentage points."""
    return 100 * (np.asarray(real).mean(axis=0) - np.asarray(generated).mean(axis=0))
