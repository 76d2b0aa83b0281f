"""Does synthetic data help a segmenter when real pairs are scarce? Trains `segment` mixes for several
seeds at a given real-data fraction, from the pipeline's trained synthesis chain (run `dvc repro`
first), and prints the val mIoU of each run with the mean and standard deviation per mix. Nothing is
written to the pipeline's outputs.

    python benchmarks/augmentation.py --real-fraction 0.05 --seeds 0 1 2 --mixes real real_synthetic
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np
import torch

from data.prepared import open_prepared_split
from machine import cpu_description
from segment.model import build_segmenter
from segment.train import SegmentConfig, evaluate_segmenter, make_optimizer, train_segmenter
from stages.common import resolve_device
from stages.params import load_params
from stages.segment import MIXES, PREPARED, make_streams


def run(params, mix: str, train, val, device) -> float:
    segment = params.segment
    streams, _ = make_streams(params, mix, train, device)
    config = SegmentConfig(steps=segment.steps, batch_size=segment.batch_size, lr=segment.lr, momentum=segment.momentum,
                           weight_decay=segment.weight_decay, poly_power=segment.poly_power,
                           aux_weight=segment.aux_weight, seed=params.seed, log_every=segment.log_every,
                           eval_every=segment.steps, checkpoint_every=segment.steps)
    torch.manual_seed(params.seed)
    space = train.label_space
    model = build_segmenter(segment.backbone, space.num_classes, segment.backbone_weights).to(device)
    train_segmenter(model, make_optimizer(model, config), streams, config, evaluate=lambda step: None, device=device,
                    description=f"{mix} seed {params.seed}")
    scores = evaluate_segmenter(model, np.array(val.layouts), np.array(val.images), space.num_classes, space.eval_ids,
                                device=device)
    return scores["miou"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-fraction", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mixes", nargs="+", default=["real", "real_synthetic"], choices=MIXES)
    parser.add_argument("--steps", type=int, help="default: segment.steps")
    args = parser.parse_args()
    params = load_params()
    segment = dataclasses.replace(params.segment, real_fraction=args.real_fraction,
                                  steps=args.steps or params.segment.steps)
    device = resolve_device(params.device)
    train, val = open_prepared_split(PREPARED / "train"), open_prepared_split(PREPARED / "val")
    results = {mix: [] for mix in args.mixes}
    start = time.perf_counter()
    for seed in args.seeds:
        for mix in args.mixes:
            run_params = dataclasses.replace(params, seed=seed, segment=segment)
            results[mix].append(run(run_params, mix, train, val, device))
    print(f"Machine: {cpu_description()}, device {device}; {time.perf_counter() - start:.0f} s")
    print(f"real_fraction {args.real_fraction} ({round(args.real_fraction * len(train))} real pairs), "
          f"{segment.steps} steps, {segment.backbone}, chain.finetuned {params.chain.finetuned}\n")
    print("| mix | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean ± std |")
    print("|---|" + "---|" * (len(args.seeds) + 1))
    for mix, values in results.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"| `{mix}` | " + " | ".join(f"{v:.4f}" for v in values) + f" | {statistics.mean(values):.4f} ± {spread:.4f} |")


if __name__ == "__main__":
    main()
