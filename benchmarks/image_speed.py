"""Forward GFLOP per sample and seconds per training iteration (generator step + critic step) of the
image synthesizer: SPADE for the toy default (params.yaml) and the authors' Cityscapes configuration
(128×256, base width 64, 6 upsamplings, SPADE hidden 128, critic width 64); SEAN for the toy faces
preset and the authors' CelebA-HQ configuration (256×256, 5 upsamplings + 1 middle block, style 512).

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

CITY_CLASSES, FACE_CLASSES = 35, 19


def configurations() -> dict[str, tuple[ImageNetworkConfig, int]]:
    params = yaml.safe_load(open("params.yaml"))
    image, data = params["image"], params["data"]
    faces = yaml.safe_load(open("presets/toy-faces.yaml"))
    toy = ImageNetworkConfig(CITY_CLASSES, data["height"], data["width"], image["base_channels"], image["num_upsamplings"],
                             image["spade_hidden"], image["critic_channels"], image["critic_scales"])
    toy_faces = ImageNetworkConfig(FACE_CLASSES, faces["data"]["height"], faces["data"]["width"], image["base_channels"],
                                   image["num_upsamplings"], image["spade_hidden"], image["critic_channels"],
                                   image["critic_scales"], model="sean", style_dim=faces["image"]["style_dim"],
                                   middle_blocks=faces["image"]["middle_blocks"])
    authors = ImageNetworkConfig(CITY_CLASSES, 128, 256, 64, 6, 128, 64, 2)
    authors_faces = ImageNetworkConfig(FACE_CLASSES, 256, 256, 64, 5, 128, 64, 2, model="sean", style_dim=512,
                                       middle_blocks=1)
    return {"SPADE, toy (params.yaml)": (toy, image["batch_size"]), "SPADE, authors (Cityscapes 128×256)": (authors, 1),
            "SEAN, toy faces (presets/toy-faces.yaml)": (toy_faces, image["batch_size"]),
            "SEAN, authors (CelebA-HQ 256×256)": (authors_faces, 1)}


def gflop(function, *inputs) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        function(*inputs)
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
        classes = config.num_classes
        layouts = one_hot(torch.randint(0, classes, (batch, config.height, config.width)), classes).to(device)
        images = torch.rand(batch, 3, config.height, config.width, device=device) * 2 - 1
        g = gflop(model.generate, layouts[:1], images[:1])  # SEAN: its region encoder included
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
