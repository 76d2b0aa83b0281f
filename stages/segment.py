"""`segment@<mix>` stages: a DeepLabV3 segmenter trained on one data mix and scored on the val split.

    python -m stages.segment real|synthetic|real_synthetic|real_partial

`real`: real train pairs (the first `segment.real_fraction` of a seeded shuffle); `synthetic`: pairs
made on the fly by the synthesis chain; `real_synthetic`: one real and one synthetic batch per step;
`real_partial`: one real batch and one of real layouts with a band redone by the completor. Writes
`outputs/segment/<mix>/checkpoint.pt`, `metrics/segment/<mix>.json` (mIoU and per-class IoU over the
label space's evaluation classes), `metrics/segment/<mix>.tsv` and `metrics/segment/<mix>_eval.tsv`.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from data.errors import InputError
from data.io import atomic_output_dir, atomic_write_json, save_checkpoint
from data.prepared import open_prepared_split
from palette.gmm import PaletteGMM
from segment.data import PartialPairs, RealPairs, SyntheticPairs
from segment.model import build_segmenter
from segment.train import SegmentConfig, evaluate_segmenter, make_optimizer, train_segmenter
from stages.common import ResumeFile, chain_checkpoints, load_synthesis_chain, run_stage, start_training, write_tsv
from stages.params import Params

MIXES = ("real", "synthetic", "real_synthetic", "real_partial")
PREPARED = Path("outputs/prepared")
GMM = Path("outputs/palette/gmm.npz")


def check_params(params: Params) -> None:
    segment = params.segment
    for key in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every"):
        if getattr(segment, key) < 1:
            raise InputError(f"segment.{key} = {getattr(segment, key)}; it must be at least 1")
    if not 0 < segment.real_fraction <= 1:
        raise InputError(f"segment.real_fraction = {segment.real_fraction}; use a fraction in (0, 1]")
    if segment.lr <= 0 or segment.aux_weight < 0:
        raise InputError("segment.lr must be > 0 and segment.aux_weight >= 0")


def real_subset(count: int, fraction: float, seed: int) -> np.ndarray:
    """Rows of the real pairs a run may use: the first `fraction` of a seeded shuffle (at least one)."""
    order = np.random.default_rng([seed, 7]).permutation(count)
    return np.sort(order[:max(1, round(fraction * count))])


def make_streams(params: Params, mix: str, train, device) -> tuple[dict, int]:
    """The pair streams of a mix and how many real pairs it may use."""
    segment = params.segment
    rows = real_subset(len(train), segment.real_fraction, params.seed)
    real = RealPairs(np.array(train.layouts)[rows], np.array(train.images)[rows], flip=True)
    streams = {"real": real} if mix in ("real", "real_synthetic", "real_partial") else {}
    if mix in ("synthetic", "real_synthetic"):
        gmm = PaletteGMM.load(GMM)
        chain = load_synthesis_chain(params, "layout", device)
        streams["synthetic"] = SyntheticPairs(chain, lambda n, rng: gmm.sample(n, rng)[0], flip=segment.synthetic_flip)
    if mix == "real_partial":
        chain = load_synthesis_chain(params, "partial", device)
        streams["partial"] = PartialPairs(chain, real, min_band_fraction=params.partial.min_band_fraction,
                                          soft_sigma=params.partial.soft_sigma, soft_mix=params.partial.soft_mix,
                                          flip=segment.synthetic_flip)
    return streams, len(rows)


def flat_metrics(scores: dict, class_names: tuple[str, ...]) -> dict[str, float]:
    return {"miou": scores["miou"], "absent_classes": len(scores["absent"]),
            **{f"iou_{class_names[c]}": value for c, value in scores["iou"].items()}}


def main(params: Params) -> None:
    mix = (sys.argv[1:] or [""])[0]
    if mix not in MIXES:
        raise InputError(f"usage: python -m stages.segment {'|'.join(MIXES)} (got {mix!r})")
    check_params(params)
    segment = params.segment
    dist, device, precision = start_training(params, segment.batch_size)
    train, val = open_prepared_split(PREPARED / "train"), open_prepared_split(PREPARED / "val")
    space = train.label_space
    streams, real_count = make_streams(params, mix, train, device)
    config = SegmentConfig(steps=segment.steps, batch_size=segment.batch_size, lr=segment.lr,
                           momentum=segment.momentum, weight_decay=segment.weight_decay,
                           poly_power=segment.poly_power, aux_weight=segment.aux_weight, seed=params.seed,
                           log_every=segment.log_every, eval_every=segment.eval_every,
                           checkpoint_every=segment.checkpoint_every)
    if not segment.backbone_weights and dist.main:
        print(f"segment@{mix}: {segment.backbone} backbone from scratch (segment.backbone_weights is empty)")

    torch.manual_seed(params.seed)
    model = build_segmenter(segment.backbone, space.num_classes, segment.backbone_weights).to(device)
    optimizer = make_optimizer(model, config)
    if mix == "real":
        generators = []
    elif mix == "real_partial":
        generators = chain_checkpoints(params, "partial")
    else:
        generators = [GMM, *chain_checkpoints(params, "layout")]
    resume_file = ResumeFile(Path(f"outputs/segment_resume/{mix}.pt"),
                             {"segment": dataclasses.asdict(segment), "config": dataclasses.asdict(config),
                              "chain": dataclasses.asdict(params.chain)},
                             [PREPARED / "train/manifest.json", *generators],
                             list(Path(__file__).resolve().parents[1].glob("segment/*.py")))
    state = resume_file.load(device)
    start, history, evaluations = 0, [], []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history, evaluations = state["step"], state["history"], state["evaluations"]
        if dist.main:
            print(f"segment@{mix}: resuming at step {start}")
    dist.prepare(model)

    val_labels, val_images = np.array(val.layouts), np.array(val.images)
    scores = {}

    def evaluate(step: int) -> None:
        scores.update(evaluate_segmenter(model, val_labels, val_images, space.num_classes, space.eval_ids,
                                         device=device))
        evaluations.append({"step": step, "miou": scores["miou"]})

    def checkpoint(step: int, rows: list[dict]) -> None:
        resume_file.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                          "history": rows, "evaluations": evaluations})

    history = train_segmenter(model, optimizer, streams, config, evaluate=evaluate, start_step=start, history=history,
                              checkpoint=checkpoint, device=device, description=f"segment@{mix}", dist=dist,
                              precision=precision)
    if not dist.main:
        return
    if not scores:  # resumed after the last step's checkpoint: score the final weights
        evaluate(config.steps)
    metrics = flat_metrics(scores, space.class_names)
    with atomic_output_dir(Path(f"outputs/segment/{mix}")) as folder:
        save_checkpoint(folder / "checkpoint.pt", {"model": model.state_dict(), "backbone": segment.backbone,
                                                   "label_space": space.name, "mix": mix})
    atomic_write_json(Path(f"metrics/segment/{mix}.json"), metrics)
    write_tsv(Path(f"metrics/segment/{mix}.tsv"), history)
    write_tsv(Path(f"metrics/segment/{mix}_eval.tsv"), evaluations)
    resume_file.complete()
    absent = [space.class_names[c] for c in scores["absent"]]
    print(f"segment@{mix}: mIoU {metrics['miou']:.4f} over {len(space.eval_ids) - len(absent)} evaluation classes "
          f"({real_count} real pairs available); absent from truth and predictions, left out: "
          f"{', '.join(absent) or 'none'}")


if __name__ == "__main__":
    run_stage(main)
