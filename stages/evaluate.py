"""Generation metrics of every method against the real val split.

    python -m stages.evaluate reference   `reference`: Inception features of the real val images, once
    python -m stages.evaluate             `evaluate`: metrics/generation.json and metrics/generation.csv

Methods: `full` and `partial` (the layout generator or completor of `chain.layout`, `chain.partial` with
the image synthesizer of `chain.image`), `finetuned` and `finetuned_partial` (the fine-tuned networks of
`chain.finetune`, `chain.finetune_partial`; a method whose folder exists without its networks, such as an
import of a release without a completor, is left out and said so), and `reference` (real train pairs
asked for GMM palettes: the real-versus-real floor of the distribution metrics and the palette-ignoring
ceiling of the palette errors). Each is measured on `evaluate.repeats` independent draws of
`evaluate.samples` pairs; the JSON and CSV hold the mean and the standard deviation over the draws.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data.errors import InputError
from data.io import atomic_output_dir, atomic_write_bytes, atomic_write_json, load_checkpoint
from data.labels import LabelSpace
from data.prepared import open_prepared_split
from image.chain import SynthesisChain
from image.fidelity import ImageFeatures, fid, inception_weights, kid, to_uint8_chw
from layout.layouts import one_hot
from layout.masking import band_masks
from palette.comparison import divergences, earth_movers_distance, frechet_distance, mean_proportion_difference
from palette.gmm import PaletteGMM
from palette.metrics import proportion_errors
from segment.metrics import confusion_matrix, iou_scores
from segment.model import build_segmenter, predict
from segment.train import evaluate_segmenter
from stages.common import chain_available, chain_slots, load_synthesis_chain, resolve_device, run_stage
from stages.params import Params

PREPARED = Path("outputs/prepared")
REFERENCE = Path("outputs/reference")
GMM = Path("outputs/palette/gmm.npz")
METHODS = {"full": ("layout", False), "partial": ("partial", False),
           "finetuned": ("layout", True), "finetuned_partial": ("partial", True)}
SUMMARY = ("log_likelihood", "emd", "fsd", "fid", "kid", "gan_test_miou", "gan_train_miou", "kl", "js", "mae", "tmae")


def check_params(params: Params) -> None:
    evaluate = params.evaluate
    for key in ("samples", "repeats", "kid_subset_size"):
        if getattr(evaluate, key) < 1:
            raise InputError(f"evaluate.{key} = {getattr(evaluate, key)}; it must be at least 1")
    if evaluate.samples < 2:
        raise InputError("evaluate.samples must be at least 2 (covariances need two samples)")
    if evaluate.fsd_ridge < 0:
        raise InputError(f"evaluate.fsd_ridge = {evaluate.fsd_ridge}; it must be >= 0")


def reference(params: Params) -> None:
    """Features of the real val images, computed once and reused by every evaluation."""
    weights, source = inception_weights(params.evaluate.inception_weights)
    val = open_prepared_split(PREPARED / "val")
    with atomic_output_dir(REFERENCE) as folder:
        info = {"count": len(val), "inception": source, "features": weights is not None}
        if weights is not None:
            features = ImageFeatures(weights, device=resolve_device(params.device))(to_uint8_chw(np.array(val.images)))
            np.save(folder / "val_features.npy", features.numpy())
        atomic_write_json(folder / "info.json", info)
    print(f"reference: {len(val)} val images; {source}")


def load_segmenter(path: Path, num_classes: int, device) -> torch.nn.Module:
    if not path.is_file():
        raise InputError(f"{path} not found; run `dvc repro {path.parent.parent.name}@{path.parent.name}` first")
    state = load_checkpoint(path, device)
    model = build_segmenter(state["backbone"], num_classes).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


def draw(method: str, chain: SynthesisChain | None, params: Params, rng: np.random.Generator, gmm: PaletteGMM,
         train, val) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """One draw of a method: requested palettes (N×C), label maps (N×H×W) and images (N×3×H×W in [-1, 1])."""
    count, seed = params.evaluate.samples, int(rng.integers(2**31))
    if method == "reference":
        rows = rng.choice(len(train), count, replace=count > len(train))
        labels = torch.from_numpy(np.array(train.layouts)[rows]).long()
        images = torch.from_numpy(np.array(train.images)[rows]).permute(0, 3, 1, 2).float() / 127.5 - 1
        return gmm.sample(count, rng)[0], labels, images
    if METHODS[method][0] == "layout":
        requested = gmm.sample(count, rng)[0]
        labels, images = chain.sample(requested, seed)
        return requested, labels.long(), images
    # The completor redoes a band of val layouts to its own content: the whole layout's palette is asked.
    rows = rng.choice(len(val), count, replace=count > len(val))
    real = torch.from_numpy(np.array(val.layouts)[rows]).long()
    region = torch.from_numpy(band_masks(count, *real.shape[1:], params.partial.min_band_fraction, rng))
    labels = chain.complete(real, region, seed, soft_sigma=params.partial.soft_sigma,
                            soft_mix=params.partial.soft_mix).long()
    requested = one_hot(real, chain.layout.num_classes).mean(dim=(2, 3)).numpy()
    return requested, labels, chain.render(labels, seed=seed).cpu()


def measure(requested: np.ndarray, labels: torch.Tensor, images: torch.Tensor, *, space: LabelSpace,
            real_palettes: np.ndarray, real_features: torch.Tensor | None, features: ImageFeatures | None,
            gmm: PaletteGMM, real_segmenter: torch.nn.Module, params: Params, seed: int, device) -> dict:
    evaluate, eval_ids = params.evaluate, list(space.eval_ids)
    obtained = one_hot(labels, space.num_classes).mean(dim=(2, 3)).numpy()
    predicted = predict(real_segmenter, images.to(device)).cpu()
    gan_test = iou_scores(confusion_matrix(labels, predicted, space.num_classes), eval_ids)
    row = {"log_likelihood": float(gmm.log_likelihood(obtained).mean()),
           "emd": earth_movers_distance(real_palettes, obtained),
           "fsd": frechet_distance(real_palettes[:, eval_ids], obtained[:, eval_ids], evaluate.fsd_ridge),
           "gan_test_miou": gan_test["miou"],
           **divergences(requested, obtained), **proportion_errors(requested, obtained)}
    if features is not None:
        fake_features = features(to_uint8_chw(images))
        row["fid"] = fid(real_features, fake_features)
        row["kid"] = kid(real_features, fake_features, evaluate.kid_subset_size, seed=seed)
    row.update({f"gan_test_iou_{space.class_names[c]}": v for c, v in gan_test["iou"].items()})
    row.update({f"prop_diff_pp_{name}": v for name, v in
                zip(space.class_names, mean_proportion_difference(real_palettes, obtained))})
    return row


def summarize(draws: list[dict]) -> dict:
    """Mean over draws and, for the summary metrics, the standard deviation as `d_<metric>`."""
    keys = [k for k in draws[0] if all(k in d for d in draws)]
    summary = {k: statistics.mean(d[k] for d in draws) for k in keys}
    for key in SUMMARY:
        if key in summary:
            summary[f"d_{key}"] = statistics.pstdev(d[key] for d in draws) if len(draws) > 1 else 0.0
    return summary


def generation(params: Params) -> None:
    check_params(params)
    evaluate, device = params.evaluate, resolve_device(params.device)
    info = json.loads((REFERENCE / "info.json").read_text()) if (REFERENCE / "info.json").is_file() else None
    if info is None:
        raise InputError(f"{REFERENCE}/info.json not found; run `dvc repro reference` first")
    train, val = open_prepared_split(PREPARED / "train"), open_prepared_split(PREPARED / "val")
    space, gmm = train.label_space, PaletteGMM.load(GMM)
    real_palettes = np.asarray(val.palettes, np.float64)
    features = real_features = None
    if info["features"]:
        weights, _ = inception_weights(evaluate.inception_weights)
        features = ImageFeatures(weights, device=device)
        real_features = torch.from_numpy(np.load(REFERENCE / "val_features.npy"))
    real_segmenter = load_segmenter(Path("outputs/segment/real/checkpoint.pt"), space.num_classes, device)
    synthetic_segmenter = load_segmenter(Path("outputs/segment/synthetic/checkpoint.pt"), space.num_classes, device)
    gan_train = evaluate_segmenter(synthetic_segmenter, np.array(val.layouts), np.array(val.images), space.num_classes,
                                   space.eval_ids, device=device)["miou"]
    gan_train_method = "finetuned" if params.chain.finetuned else "full"

    rows = {}
    for method in ["reference", *METHODS]:
        chain = None
        if method != "reference":
            kind, finetuned = METHODS[method]
            if not chain_available(params, kind, finetuned):
                folders = ", ".join(f"chain.{slot} = {getattr(params.chain, slot)}" for slot in chain_slots(kind, finetuned))
                print(f"evaluate: {method}: left out, its networks are not in {folders}")
                continue
            chain = load_synthesis_chain(params, kind, device, finetuned)
        draws = []
        for repeat in range(evaluate.repeats):
            rng = np.random.default_rng([params.seed, 1000 + repeat])
            requested, labels, images = draw(method, chain, params, rng, gmm, train, val)
            draws.append(measure(requested, labels, images, space=space, real_palettes=real_palettes,
                                 real_features=real_features, features=features, gmm=gmm,
                                 real_segmenter=real_segmenter, params=params, seed=repeat, device=device))
        rows[method] = summarize(draws)
        if method == gan_train_method:
            rows[method].update(gan_train_miou=gan_train, d_gan_train_miou=0.0)
        print(f"evaluate: {method}: " + ", ".join(f"{k} {rows[method][k]:.4g}" for k in SUMMARY if k in rows[method]))

    table = pd.DataFrame([{"method": method, "samples": evaluate.samples, "repeats": evaluate.repeats, **row}
                          for method, row in rows.items()])
    leading = ["method", "samples", "repeats", *SUMMARY, *[f"d_{k}" for k in SUMMARY]]
    table = table.reindex(columns=leading + [c for c in table.columns if c not in leading])
    atomic_write_bytes(Path("metrics/generation.csv"), table.to_csv(index=False).encode())
    flat = {f"{method}_{key}": value for method, row in rows.items() for key, value in row.items()
            if key in SUMMARY or key.removeprefix("d_") in SUMMARY}
    atomic_write_json(Path("metrics/generation.json"), flat)
    if features is None:
        print(f"evaluate: {info['inception']}")


def main(params: Params) -> None:
    command = sys.argv[1:]
    if command == ["reference"]:
        reference(params)
    elif not command:
        generation(params)
    else:
        raise InputError(f"usage: python -m stages.evaluate [reference] (got {' '.join(command)!r})")


if __name__ == "__main__":
    run_stage(main)
