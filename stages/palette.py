"""`palette` stage: fits the palette GMM to the prepared train palettes.

Writes `outputs/palette/gmm.npz` (a sampler that later stages load with `PaletteGMM.load`), the AIC
curve `metrics/palette_aic.tsv` (a DVC plot) and `metrics/palette.json`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from data.errors import InputError
from data.io import atomic_output_dir, atomic_write_bytes, atomic_write_json
from data.labels import LabelSpace
from data.prepared import open_prepared_split
from palette.gmm import fit_palette_gmm
from stages.common import class_id, run_stage
from stages.params import PaletteParams, Params

PREPARED = Path("outputs/prepared")
OUT = Path("outputs/palette")
METRICS = Path("metrics/palette.json")
AIC_PLOT = Path("metrics/palette_aic.tsv")
SAMPLES_FOR_CHECK = 10_000


def sampling_constraints(params: PaletteParams, space: LabelSpace) -> tuple[np.ndarray, np.ndarray]:
    """palette.min_proportions and palette.removed_classes as per-class arrays, validated."""
    minimum = np.zeros(space.num_classes)
    removed = np.zeros(space.num_classes, dtype=bool)
    for name, proportion in params.min_proportions.items():
        if not 0.0 <= proportion < 1.0:
            raise InputError(f"palette.min_proportions:{name} = {proportion}; use a proportion in [0, 1)")
        minimum[class_id(space, name, "palette.min_proportions")] = proportion
    for name in params.removed_classes:
        removed[class_id(space, name, "palette.removed_classes")] = True
    if minimum.sum() >= 1.0:
        raise InputError(f"palette.min_proportions add up to {minimum.sum():g}; they must add up to less than 1")
    if (removed & (minimum > 0)).any():
        name = space.class_names[int(np.flatnonzero(removed & (minimum > 0))[0])]
        raise InputError(f"class {name!r} is both in palette.removed_classes and palette.min_proportions; keep one")
    if removed.all():
        raise InputError("palette.removed_classes removes every class; keep at least one")
    return minimum, removed


def check_selection_range(params: PaletteParams, train_count: int) -> None:
    if params.min_components < 1:
        raise InputError(f"palette.min_components = {params.min_components}; it must be at least 1")
    if params.max_components < params.min_components:
        raise InputError(f"palette.max_components = {params.max_components} is below palette.min_components = "
                         f"{params.min_components}; raise it")
    if params.max_components > train_count:
        raise InputError(f"palette.max_components = {params.max_components} exceeds the {train_count} train "
                         f"palettes; a mixture needs at least one palette per component")
    for key in ("n_init", "max_iter"):
        if getattr(params, key) < 1:
            raise InputError(f"palette.{key} = {getattr(params, key)}; it must be at least 1")
    if params.reg_covar <= 0:
        raise InputError(f"palette.reg_covar = {params.reg_covar}; it must be positive (e.g. 1.0e-6)")


def main(params: Params) -> None:
    p = params.palette
    train = open_prepared_split(PREPARED / "train")
    val = open_prepared_split(PREPARED / "val")
    space = train.label_space
    check_selection_range(p, len(train))
    minimum, removed = sampling_constraints(p, space)

    model, steps = fit_palette_gmm(
        train.palettes, space.class_names, min_components=p.min_components, max_components=p.max_components,
        n_init=p.n_init, seed=params.seed, reg_covar=p.reg_covar, max_iter=p.max_iter,
    )
    model = dataclasses.replace(model, projection=p.projection, min_proportions=minimum, removed=removed)

    samples, _ = model.sample(SAMPLES_FOR_CHECK, np.random.default_rng(params.seed))
    metrics = {
        "components": model.num_components,
        "aic": min(step.aic for step in steps),
        "train_mean_log_likelihood": float(model.log_likelihood(train.palettes).mean()),
        "val_mean_log_likelihood": float(model.log_likelihood(val.palettes).mean()),
        # How far the sampler's mean palette is from the real one (L1), a cheap check of the fit.
        "sample_mean_l1": float(np.abs(samples.mean(0) - train.palettes.mean(0)).sum()),
    }
    with atomic_output_dir(OUT) as folder:
        model.save(folder / "gmm.npz")
    rows = ["n_components\taic\tmean_log_likelihood\tconverged"]
    rows += [f"{s.components}\t{s.aic:.4f}\t{s.mean_log_likelihood:.6f}\t{int(s.converged)}" for s in steps]
    atomic_write_bytes(AIC_PLOT, ("\n".join(rows) + "\n").encode())
    atomic_write_json(METRICS, metrics)
    print(f"palette: {model.num_components} components chosen by AIC over "
          f"{p.min_components}..{p.max_components}; mean log-likelihood train "
          f"{metrics['train_mean_log_likelihood']:.1f}, val {metrics['val_mean_log_likelihood']:.1f}")


if __name__ == "__main__":
    run_stage(main)
