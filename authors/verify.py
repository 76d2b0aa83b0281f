"""Reruns the authors' forward passes stored in a reference folder's `fixtures.pt` with the converted
networks, and prints the largest relative error of each network over all of its stored outputs.

    python -m authors.verify ../shared/reference/authors-checkpoints

The fixtures (made with the authors' code, see that folder's README) hold the inputs and every output;
maps too large to store whole are kept as a strided subsample with per-channel sums and sums of
squares, which are compared too. The error of an output is max |ours - theirs| / max |theirs|.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from authors.networks import block_count, image_config, layout_config, load_authors_state
from image.networks import MultiscaleDiscriminator
from image.train import build_image_generator
from layout.layouts import discretize, one_hot
from layout.masking import completion_inputs
from layout.networks import LayoutDiscriminator, level_of_height
from layout.train import build_critic, build_generator

LEVEL = level_of_height(128)  # every reference layout network is run at 128 px
FADE_LEVEL = level_of_height(32)


def error(fixture: dict, key: str, value: torch.Tensor) -> float:
    """Largest relative error of `value` against the stored output `key` (whole or subsampled)."""
    def relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
        if ours.shape != theirs.shape:
            raise AssertionError(f"{key}: shape {tuple(ours.shape)}, stored {tuple(theirs.shape)}")
        return ((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max().clamp(min=1e-30)).item()

    if key in fixture:
        return relative(value, fixture[key])
    stride = int(fixture[f"{key}@stride"])
    return max(relative(value[..., ::stride, ::stride], fixture[f"{key}@sub"]),
               relative(value.double().sum((-2, -1)), fixture[f"{key}@sum"]),
               relative((value.double() ** 2).sum((-2, -1)), fixture[f"{key}@sumsq"]))


def read(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def layout_networks(folder: Path, kind: str) -> tuple[torch.nn.Module, LayoutDiscriminator]:
    g_state, d_state = read(folder / "seg_g_net_128.pth"), read(folder / "seg_d_net_128.pth")
    config = layout_config(g_state, kind, str(folder))
    generator = build_generator(config)
    load_authors_state(generator, kind, g_state, "seg_g")
    critic = build_critic(config)
    load_authors_state(critic, "layout_critic", d_state, "seg_d", block_count(d_state))
    return generator.eval(), critic.eval()


def layout_errors(outputs, fixture: dict, prefix: str, completor: bool) -> list[float]:
    names = (("sem_seg", "seg"), ("sem_mask", "masks"), ("raw_sem_seg", "raw" if completor else "logits"))
    return [error(fixture, f"{prefix}.{i}.{theirs}", getattr(out, ours))
            for i, out in enumerate(outputs) for theirs, ours in names
            if f"{prefix}.{i}.{theirs}" in fixture or f"{prefix}.{i}.{theirs}@sub" in fixture]


def full_layout(folder: Path, fixtures: dict) -> dict[str, float]:
    generator, critic = layout_networks(folder, "layout")
    g, d = fixtures["seg_g"], fixtures["seg_d"]
    z, palette = g["in.z"], g["in.sem_cond"]
    final = generator(z, palette, LEVEL)
    faded = generator(z, palette, FADE_LEVEL, alpha=float(g["in.alpha"]))
    g_errors = layout_errors(final, g, "level128.out.segs", False) + layout_errors(faded, g, "level32_alpha0.5.out.segs", False)
    g_errors.append(error(g, "level128.out.inference_max.sem_seg", discretize(final[-1].seg, "max")))
    alpha = float(d["in.alpha"])
    d_errors = [
        error(d, "level128.out.score_on_onehot_label128", critic(one_hot(d["in.label128"], 35), LEVEL)),
        error(d, "level128.out.score_on_seg_g_level128_final_sem_seg", critic(final[-1].seg, LEVEL)),
        error(d, "level32_alpha0.5.out.score_on_onehot_label32", critic(one_hot(d["in.label32"], 35), FADE_LEVEL, alpha)),
        error(d, "level32_alpha0.5.out.score_on_seg_g_level32_alpha0.5_final_sem_seg",
              critic(faded[-1].seg, FADE_LEVEL, alpha)),
    ]
    return {"seg_g": max(g_errors), "seg_d": max(d_errors)}


def band_inputs(labels: torch.Tensor, band: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' masked input and band palette (`transform_sem_cond` with `--s_vertical_sem_crop`)
    from our `completion_inputs`: the band is set to the uniform distribution, the palette is each class's
    pixels in the band over the image's, then "keep"."""
    source = one_hot(labels, num_classes)
    columns = torch.arange(labels.shape[-1])
    region = ((columns >= band[:, :1]) & (columns < band[:, 1:]))[:, None, :].expand_as(labels)
    return completion_inputs(source, source, region, "real")


def partial_layout(folder: Path, fixtures: dict) -> dict[str, float]:
    generator, critic = layout_networks(folder, "completor")
    g, d = fixtures["seg_g"], fixtures["seg_d"]
    num_classes = generator.num_classes
    g_errors, outputs = [], {}
    for case, labels, level, alpha in (("level128", g["in.label128"], LEVEL, None),
                                       ("level32_alpha0.5", g["in.label32"], FADE_LEVEL, float(g["in.alpha"]))):
        condition, palette = band_inputs(labels, g[f"{case}.in.band_start_stop"], num_classes)
        g_errors.append(error(g, f"{case}.in.sem_cond", palette))  # our band palette is theirs
        outputs[case] = generator(g["in.z"], g[f"{case}.in.sem_cond"], level, alpha, condition=condition)
        outputs[case + ".input"] = condition
        g_errors += layout_errors(outputs[case], g, f"{case}.out.segs", True)
    d_errors = [
        error(d, "level128.out.score_on_seg_g_level128_final_sem_seg", critic(outputs["level128"][-1].seg, LEVEL)),
        error(d, "level128.out.score_on_onehot_label128", critic(one_hot(d["in.label128"], num_classes), LEVEL)),
        error(d, "level128.out.score_on_masked_input128", critic(outputs["level128.input"], LEVEL)),
        error(d, "level32_alpha0.5.out.score_on_seg_g_level32_alpha0.5_final_sem_seg",
              critic(outputs["level32_alpha0.5"][-1].seg, FADE_LEVEL, float(d["in.alpha"]))),
    ]
    return {"seg_g": max(g_errors), "seg_d": max(d_errors)}


def critic_errors(critic: MultiscaleDiscriminator, fixture: dict, images: torch.Tensor, layouts: torch.Tensor | None):
    return [error(fixture, f"out.{s}.{j}", out) for s, scale in enumerate(critic(images, layouts))
            for j, out in enumerate(scale)]


def image_networks(folder: Path, kind: str, height: int, width: int, num_upsamplings: int, middle_blocks: int):
    g_state, d_state = read(folder / "img_g_net_128.pth"), read(folder / "img_d_net_128.pth")
    config = image_config(g_state, d_state, kind, height=height, width=width, num_upsamplings=num_upsamplings,
                          middle_blocks=middle_blocks)
    generator = build_image_generator(config)
    load_authors_state(generator, kind, g_state, "img_g")
    return generator.eval(), config


def image_critic(folder: Path, label: str, num_classes: int, config) -> MultiscaleDiscriminator:
    critic = MultiscaleDiscriminator(num_classes, scales=config.critic_scales, base_channels=config.critic_channels)
    load_authors_state(critic, "image_critic", read(folder / f"{label}_net_128.pth"), label)
    return critic.eval()


def soft_band(labels: torch.Tensor, num_classes: int, start: int, stop: int, samples=slice(None)) -> torch.Tensor:
    """One-hot layouts with columns [start, stop) of `samples` set to the uniform distribution."""
    layouts = one_hot(labels, num_classes)
    layouts[samples, :, :, start:stop] = 1 / num_classes
    return layouts


def gaugan(folder: Path, fixtures: dict) -> dict[str, float]:
    generator, config = image_networks(folder, "spade", 128, 256, 6, 0)
    g = fixtures["img_g"]
    layouts = soft_band(g["in.label"], config.num_classes, *g["in.band"].tolist())
    errors = {"img_g": error(g, "out.img", generator(layouts))}
    fake, real = g["out.img"], fixtures["img_d"]["in.real_img"]
    images = torch.cat([fake, real])
    errors["img_d"] = max(critic_errors(image_critic(folder, "img_d", config.num_classes, config), fixtures["img_d"],
                                        images, torch.cat([layouts, layouts])))
    errors["img_d2"] = max(critic_errors(image_critic(folder, "img_d2", 0, config), fixtures["img_d2"], images, None))
    return errors


def sean(folder: Path, fixtures: dict) -> dict[str, float]:
    generator, config = image_networks(folder, "sean", 128, 128, 5, 1)
    g = fixtures["img_g"]
    start, stop = g["in.band_sample1"].tolist()
    layouts = soft_band(g["in.label"], config.num_classes, start, stop, samples=1)
    styles = generator.encode(g["in.real_img"], layouts)
    shared = g["status_use_style.in.obj_codes"].expand(len(layouts), -1, -1)
    g_errors = [error(g, "status_train.out.style_codes", styles),
                error(g, "status_train.out.img", generator(layouts, styles)),
                error(g, "status_use_style.out.img", generator(layouts, shared))]
    images = torch.cat([g["status_train.out.img"], g["in.real_img"]])
    d_errors = critic_errors(image_critic(folder, "img_d", config.num_classes, config), fixtures["img_d"], images,
                             torch.cat([layouts, layouts]))
    return {"img_g": max(g_errors), "img_d": max(d_errors)}


FOLDERS = {"cityscapes-full": (full_layout, gaugan), "cityscapes-partial": (partial_layout,), "celeba-sean": (sean,)}


@torch.no_grad()
def reproduce(reference: Path) -> dict[str, float]:
    """{`<folder>/<network>`: largest relative error} over every reference network."""
    errors = {}
    for name, runs in FOLDERS.items():
        fixtures = read(reference / name / "fixtures.pt")
        for run in runs:
            errors.update({f"{name}/{label}": value for label, value in run(reference / name, fixtures).items()})
    return errors


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m authors.verify REFERENCE_FOLDER")
    for network, value in reproduce(Path(sys.argv[1])).items():
        print(f"{network:32s} {value:.2e}")
