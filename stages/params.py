"""params.yaml as typed dataclasses, one per section.

Loading is strict: an unknown key, a missing key or a value of the wrong type stops with an error
naming the key, so a typo in a sweep (`dvc exp run -S palette.max_component=3`) cannot pass silently.
The rules on the working resolution and the layout levels, which several stages rely on, are checked
here too, so that the first stage to run (`prepare`) refuses what a later one would.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from data.errors import InputError
from layout.networks import level_of_height


@dataclass(frozen=True)
class DataParams:
    dataset: Literal["cityscapes", "cityscapes25k", "idd", "celeba"]  # which reader (on-disk layout)
    root: str  # the dataset's folder
    height: int  # working resolution
    width: int


@dataclass(frozen=True)
class ToyParams:
    city_train: int  # images per split of the toy street scenes (Cityscapes format)
    city_val: int
    city_height: int  # size the toy scenes are drawn at, before `prepare` resizes them
    city_width: int
    faces_count: int  # toy portraits (CelebAMask-HQ format)
    faces_size: int  # mask size; images are twice as large, as in the real dataset


@dataclass(frozen=True)
class PrepareParams:
    crop: Literal["top", "center"]  # where frames of another aspect ratio are cut (IDD)
    holdout_fraction: float  # held out as `val` where a dataset has no validation split (CelebAMask-HQ)


@dataclass(frozen=True)
class PaletteParams:
    min_components: int  # AIC search range of the mixture size
    max_components: int
    n_init: int  # restarts of the final fit
    reg_covar: float  # added to covariance diagonals (palettes of unseen classes are constant 0)
    max_iter: int
    projection: Literal["clip", "euclidean"]  # how samples are brought back onto the simplex
    min_proportions: dict[str, float]  # class name -> minimum proportion in every sample
    removed_classes: list[str]  # classes set to 0 in every sample


@dataclass(frozen=True)
class LevelSchedule:
    previous: str  # the level this one starts from ("init" for the first)
    steps: int  # per phase (fade, then stabilise)
    batch_size: int


@dataclass(frozen=True)
class LayoutParams:
    final_level: int
    schedule: dict[str, LevelSchedule]  # keyed by level height; DVC ignores integer keys in foreach
    latent_dim: int
    channel_base: int
    channel_max: int
    pixel_norm: Literal["standard", "authors"]
    loss_terms: list[str]
    entropy_weight: float
    spread_weight: float
    recover_weight: float
    gp_weight: float
    lr: float
    beta1: float
    beta2: float
    ema_decay: float
    soft_sigma: float
    soft_mix: float
    flip: bool
    log_every: int
    image_every: int
    checkpoint_every: int
    eval_samples: int  # GMM palettes (layout) or val layouts (partial) the errors are measured on


@dataclass(frozen=True)
class PartialParams(LayoutParams):
    """The completor: the layout synthesizer's settings plus what is masked and how it is asked for."""

    mask: Literal["band", "classes", "none"]  # a vertical band, the pixels of `mask_classes`, or nothing (add only)
    min_band_fraction: float  # narrowest band, as a fraction of the width
    mask_classes: list[str]
    palette_mode: Literal["real", "add"]  # the region's real content, or what a GMM palette adds (face editing)
    merged_entropy_weight: float
    novelty_weight: float
    spade_hidden: int


@dataclass(frozen=True)
class ImageParams:
    model: str  # spade (scenes) | sean (faces: per-region style codes)
    style_dim: int  # sean's style code length (the authors: 512)
    middle_blocks: int  # blocks after the first upsampling at its resolution (the authors: 0 scenes, 1 faces)
    base_channels: int  # generator width at the last stage; 16× that at the latent grid (the authors: 64)
    num_upsamplings: int  # the latent grid is the working resolution / 2^this (the authors: 6 at 128×256)
    spade_hidden: int  # the authors: 128
    critic_channels: int
    critic_scales: int
    steps: int
    batch_size: int
    g_lr: float
    d_lr: float
    beta1: float
    beta2: float
    decay_start: int  # step from which both learning rates fall linearly to 0 at `steps`
    feature_matching_weight: float
    perceptual_weight: float
    vgg_weights: str  # local torchvision VGG19 state dict; empty: no perceptual loss
    flip: bool
    log_every: int
    image_every: int
    checkpoint_every: int
    eval_samples: int


@dataclass(frozen=True)
class FinetuneParams:
    steps: int
    batch_size: int
    layout_lr: float  # the authors: 1e-4; the image generator and critics keep image.g_lr and image.d_lr
    d2_weight: float  # weight of the image-only critic's term, the layout generator's signal from images
    freeze_layout: bool  # train the image side only (ablation)
    discretization: str  # none (soft layouts, the authors) | max (straight-through one-hot)
    log_every: int
    eval_every: int
    image_every: int
    checkpoint_every: int
    eval_samples: int


@dataclass(frozen=True)
class ChainParams:
    """Where the synthesis chain's networks are: each a folder, as this pipeline's stages write them
    (`layout`, `partial`: a folder per level, the final level's is used) or as `import-authors` does. A
    folder without the network (e.g. an import's folder for the completor of a release that has none)
    means the network is not available. dvc.yaml names these folders as dependencies."""

    finetuned: bool  # the synthesis chain uses the fine-tuned networks; false: the ones fine-tuning starts from
    layout: str  # the layout generator's folder: <layout>/<layout.final_level>/checkpoint.pt
    partial: str  # the completor's: <partial>/<partial.final_level>/checkpoint.pt
    image: str  # the image synthesizer's: <image>/checkpoint.pt
    finetune: str  # the fine-tuned layout generator and image synthesizer: <finetune>/checkpoint.pt
    finetune_partial: str  # the fine-tuned completor and image synthesizer
    authors: dict[str, str]  # released configuration -> folder of the authors' checkpoints: one authors@<config> stage each


@dataclass(frozen=True)
class SegmentParams:
    backbone: str  # mobilenet_v3_large | resnet50 | resnet101 (the authors)
    backbone_weights: str  # local torchvision ImageNet state dict of the backbone; empty: from scratch
    steps: int
    batch_size: int  # per stream: real_synthetic steps on batch_size real + batch_size synthetic pairs
    lr: float
    momentum: float
    weight_decay: float
    poly_power: float
    aux_weight: float
    real_fraction: float  # share of the real train pairs the mixes may use (low-data studies)
    synthetic_flip: bool  # mirror generated pairs too (the authors: no)
    log_every: int
    eval_every: int
    checkpoint_every: int


@dataclass(frozen=True)
class EvaluateParams:
    samples: int  # generated pairs per draw
    repeats: int  # independent draws; metrics are their mean and standard deviation
    inception_weights: str  # torch-fidelity's Inception weights; empty: torch's hub cache, else no FID/KID
    kid_subset_size: int
    fsd_ridge: float  # added to the palette covariances of FSD


@dataclass(frozen=True)
class DemoParams:
    names: list[str]  # demo@<name> stages: partial_editing, palette_interpolation, latent_interpolation
    frames: int  # interpolation frames
    samples: int  # val layouts edited by partial_editing
    scale: int  # pixels per layout pixel in the pictures
    fps: int
    face_modes: list[str]  # face_editing@<mode> stages (faces pipeline): face, earrings, skin, nose, hat, ...
    face_tries: int  # val faces tried, in a seeded order, before a mode whose precondition none meets gives up


@dataclass(frozen=True)
class StyleParams:
    splits: list[str]  # prepared splits whose SEAN style codes go into a bank (style@<split>); [] for SPADE
    batch_size: int


@dataclass(frozen=True)
class Params:
    seed: int
    device: str
    processes: int
    precision: Literal["fp32", "bf16"]
    data: DataParams
    toy: ToyParams
    prepare: PrepareParams
    palette: PaletteParams
    layout: LayoutParams
    partial: PartialParams
    image: ImageParams
    style: StyleParams
    finetune: FinetuneParams
    chain: ChainParams
    segment: SegmentParams
    evaluate: EvaluateParams
    demo: DemoParams


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} not found; run the stage from the repository root")
    with open(path) as f:
        raw = yaml.safe_load(f)
    params = _convert(raw, Params, str(path))
    check_resolution(params)
    return params


def check_resolution(params: Params) -> None:
    """The working resolution and the layout levels every stage can work with.

    The layout levels double from 4 (`layout`, `partial`), each section's schedule has exactly the levels
    up to its final level, fine-tuning (`finetune`, `finetune_partial`) needs that level at the image height,
    the aspect ratio is an integer (the layout synthesizer grows a grid of `aspect` 4×4 cells), and the image
    synthesizer (`image`) starts from the resolution divided by 2^image.num_upsamplings.
    """
    data = params.data
    if data.height < 4 or data.width < 4:
        raise InputError(f"data.height = {data.height}, data.width = {data.width}; both must be at least 4")
    if data.height & (data.height - 1):
        raise InputError(f"data.height = {data.height}; the layout levels double from 4 and fine-tuning needs the "
                         f"last one at the image height, so use a power of two (e.g. 32, 64, 128)")
    if data.width % data.height:
        raise InputError(f"data.width / data.height = {data.width}/{data.height}; the layout synthesizer needs an "
                         f"integer aspect ratio (e.g. 64x128 or 64x64)")
    for kind in ("layout", "partial"):
        final_level, schedule = getattr(params, kind).final_level, getattr(params, kind).schedule
        try:
            levels = level_of_height(final_level) + 1
        except ValueError:
            raise InputError(f"{kind}.final_level = {final_level}; use a power of two from 4 (4, 8, 16, ...)") from None
        expected, given = [str(4 * 2**k) for k in range(levels)], sorted(schedule, key=lambda h: (len(h), h))
        if given != expected:
            raise InputError(f"{kind}.schedule has levels {given}; it must have exactly "
                             f"{expected} to end at {kind}.final_level = {final_level}")
        for height, level in schedule.items():
            previous = "init" if height == "4" else str(int(height) // 2)
            if level.previous != previous:
                raise InputError(f"{kind}.schedule.{height}.previous = {level.previous!r}; it must be {previous!r}")
        if final_level != data.height:
            raise InputError(f"{kind}.final_level = {final_level} but the images are {data.height} pixels high; "
                             f"fine-tuning needs layouts at the image size (set {kind}.final_level = data.height)")
    scale = 2**params.image.num_upsamplings
    if data.height % scale or data.width % scale:
        raise InputError(f"image.num_upsamplings = {params.image.num_upsamplings} needs data.height and data.width "
                         f"divisible by {scale}; lower it (the latent grid is {data.height}x{data.width} / {scale})")


def _convert(value, kind, where: str):
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping of {', '.join(f.name for f in dataclasses.fields(kind))}")
        hints = typing.get_type_hints(kind)
        names = [f.name for f in dataclasses.fields(kind)]
        for key in value:
            if key not in names:
                raise InputError(f"{where}: unknown key {key!r}; known keys are: {', '.join(names)}")
        for name in names:
            if name not in value:
                raise InputError(f"{where}: missing key {name!r}; add it (see the README's params reference)")
        return kind(**{name: _convert(value[name], hints[name], f"{where}:{name}") for name in names})
    if origin is Literal:
        if value not in typing.get_args(kind):
            raise InputError(f"{where} = {value!r}; expected one of: {', '.join(map(str, typing.get_args(kind)))}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        return _convert(value, next(o for o in options if o is not type(None)), where)
    if origin is list:
        if not isinstance(value, list):
            raise InputError(f"{where} = {value!r}; expected a list")
        (item,) = typing.get_args(kind)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InputError(f"{where} = {value!r}; expected a mapping")
        key_kind, item = typing.get_args(kind)
        return {_convert(k, key_kind, where): _convert(v, item, f"{where}:{k}") for k, v in value.items()}
    if kind is float:
        # PyYAML reads exponents without a dot (1e-6) as strings.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise InputError(f"{where} = {value!r}; expected a number")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InputError(f"{where} = {value!r}; expected an integer")
    if kind is str and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a level name such as 16 reads as an integer
    if kind in (str, bool):
        if isinstance(value, kind):
            return value
        raise InputError(f"{where} = {value!r}; expected {kind.__name__}")
    raise TypeError(f"unsupported params type {kind} at {where}")
