"""Forward GFLOP per sample and seconds per training iteration (generator step + critic step) of the
SPADE image synthesizer, for the toy default (params.yaml) and the authors' Cityscapes configuration
(128×256, base width 64, 6 upsamplings, SPADE hidden 128, critic width 64).

    python benchmarks/image_speed.py [--iterations N] [--device cuda]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from image.train import ImageModel, ImageNetworkConfig, train_step
from layout.layouts import one_hot
from machine import cpu_description

CLASSES = 35


def configurations() -> dict[str, tuple[ImageNetworkConfig, int]]:
    params = yaml.safe_load(open("params.yaml"))
    image, data = params["image"], params["data"]
    toy = ImageNetworkConfig(CLASSES, data["height"], data["width"], image["base_channels"], image["num_upsamplings"],
                             image["spade_hidden"], image["critic_channels"], image["critic_scales"])
    authors = ImageNetworkConfig(CLASSES, 128, 256, 64, 6, 128, 64, 2)
    return {"toy (params.yaml)": (toy, image["batch_size"]), "authors (Cityscapes 128×256)": (authors, 1)}


def gflop(module, *inputs) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"Machine: {cpu_description()}, torch {torch.__version__}, device {device}\n")
    print("| configuration | G params | G GFLOP/sample | D GFLOP/sample | batch | s/iter |\n|---|---|---|---|---|---|")
    for name, (config, batch) in configurations().items():
        torch.manual_seed(0)
        model = ImageModel.create(config, device=device)
        layouts = one_hot(torch.randint(0, CLASSES, (batch, config.height, config.width)), CLASSES).to(device)
        images = torch.rand(batch, 3, config.height, config.width, device=device) * 2 - 1
        g = gflop(model.generator, layouts[:1])
        d = gflop(model.discriminator, images[:1], layouts[:1])
        train_step(model, layouts, images)  # warm-up
        times = []
        for _ in range(args.iterations):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            train_step(model, layouts, images)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        size = sum(p.numel() for p in model.generator.parameters()) / 1e6
        print(f"| {name} | {size:.1f} M | {g:.2f} | {d:.2f} | {batch} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
