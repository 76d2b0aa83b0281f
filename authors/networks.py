"""The authors' released networks (valeoai/SemanticPalette, `{label}_net_{iter}.pth` state dicts) as this
project's networks, and back.

Each of our state-dict keys has exactly one name in the authors' layout, given by an ordered list of
renames per network kind (`RENAMES`); importing reads every one of them, checks its shape and drops
what the authors' file holds beyond it, which is only ever an alias of a mapped tensor (their
`assisted_blocks.0.to_mask` is the block's `to_mask` registered twice) or a key their own forward never
uses (`UNUSED`): the blocks above the level a network is built to, the joint of its output block, SEAN's
inner `Spade.param_free_norm` buffers and the style blend of its last block. Anything else is an error.

Their computation differs from our defaults in places; the networks built here (`layout_config`,
`image_config`) turn on the compatibility settings that reproduce it: PixelNorm without a square root
(`pixel_norm: authors`), the palette used as given (`renormalize_palette: False`), the legacy nearest
resize (`resize: nearest`), SEAN's regions from non-zero layout entries (`regions: authors`) and its
encoder width fixed at 32 (`encoder_channels`), the layout critic's last layer at gain sqrt(2)
(`critic_score_gain`). Spectral norm needs nothing: in eval mode torch's parametrization divides by
u·(W v) from the stored vectors, without a power iteration, as theirs does.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict

import torch
from torch import nn

from data.errors import InputError
from image.train import ImageNetworkConfig
from layout.networks import channels_at
from layout.train import NetworkConfig

# What each kind of network is, in the authors' code.
KINDS = {
    "layout": "layout generator (models/seg_generator ProGANGenerator)",
    "completor": "layout completor (models/seg_completor ProGANGenerator)",
    "layout_critic": "layout critic (ProGANDiscriminator)",
    "spade": "GauGAN image generator (models/img_generator SPADEGenerator)",
    "sean": "SEAN image generator (models/img_style_generator SPADEGenerator)",
    "image_critic": "multiscale image critic (MultiscaleDiscriminator)",
}
# Their channel widths are min(max_hidden_dim, 2^(12 - level)).
CHANNEL_BASE = 4096
# Their SPADE generators' residual blocks after head_0, in order of resolution (6 for `normal` and `more`).
STAGE_NAMES = ("G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")

SPECTRAL = [(r"\.parametrizations\.weight\.original$", ".weight_orig"),
            (r"\.parametrizations\.weight\.0\._u$", ".weight_u"),
            (r"\.parametrizations\.weight\.0\._v$", ".weight_v")]
SPADE_NORMS = [(r"\.norm_(\w)\.norm\.", r".norm_\1.param_free_norm."),
               (r"\.norm_(\w)\.shared\.0\.", r".norm_\1.mlp_shared.0."),
               (r"\.norm_(\w)\.(gamma|beta)\.", r".norm_\1.mlp_\2."),
               (r"\.shortcut\.", ".conv_s.")]
# SEAN's ACE: its own batch norm is ours inside `spade`; `{}` stands for the class of a per-class layer.
ACE_NORMS = [(r"\.norm_(\w)\.spade\.norm\.", r".ace_\1.param_free_norm."),
             (r"\.norm_(\w)\.spade\.shared\.0\.", r".ace_\1.Spade.mlp_shared.0."),
             (r"\.norm_(\w)\.spade\.(gamma|beta)\.", r".ace_\1.Spade.mlp_\2."),
             (r"\.norm_(\w)\.noise_scale$", r".ace_\1.noise_var"),
             (r"\.norm_(\w)\.style_(gamma|beta)\.", r".ace_\1.conv_\2."),
             (r"\.norm_(\w)\.blend_(gamma|beta)$", r".ace_\1.blending_\2"),
             (r"\.norm_(\w)\.class_(weight|bias)$", r".ace_\1.fc_mu{}.\2"),
             (r"\.shortcut\.", ".conv_s.")]
LAYOUT_HEADS = [(r"^input_fc\.", "blocks.0.fc1."),
                (r"^heads\.(\d+)\.", r"blocks.\1.cond_joint.to_mask.sem_conv."),
                (r"^joints\.(\d+)\.", r"blocks.\1.cond_joint.assisted_blocks.0.conv1.")]
IMAGE_BLOCKS = [(r"^head\.", "head_0."),
                (r"^stages\.(\d+)\.", lambda m: f"{STAGE_NAMES[int(m[1])]}."),
                (r"^to_image\.", "conv_img."),
                (r"^encoder\.features\.", "Zencoder.model.")]


def renames(kind: str, released_levels: int) -> list:
    """(pattern, replacement) pairs applied in order to one of our keys give the authors' key.
    `released_levels`: the number of progressive levels of the authors' file, whose critic blocks are
    numbered from the top level down."""
    top = released_levels - 1
    return {
        "layout": [(r"^blocks\.0\.0\.", "blocks.0.conv2."), (r"^blocks\.(\d+)\.0\.", r"blocks.\1.conv1."),
                   (r"^blocks\.(\d+)\.1\.", r"blocks.\1.conv2.")] + LAYOUT_HEADS,
        "completor": [(r"^blocks\.(\d+)\.", r"blocks.\1.spade_block.")] + SPADE_NORMS + SPECTRAL + LAYOUT_HEADS,
        "layout_critic": [(r"^from_layout\.(\d+)\.", lambda m: f"blocks.{top - int(m[1])}.from_mask."),
                          (r"^convs\.(\d+)\.0\.", lambda m: f"blocks.{top - 1 - int(m[1])}.conv1."),
                          (r"^convs\.(\d+)\.1\.", lambda m: f"blocks.{top - 1 - int(m[1])}.conv2."),
                          (r"^final_conv1\.", f"blocks.{top}.conv1."), (r"^final_conv2\.", f"blocks.{top}.conv2."),
                          (r"^score\.", f"blocks.{top}.fc3.")],
        "spade": IMAGE_BLOCKS + SPADE_NORMS + SPECTRAL,
        "sean": IMAGE_BLOCKS + ACE_NORMS + SPECTRAL,
        "image_critic": [(r"^critics\.(\d+)\.blocks\.0\.0\.", r"discriminator_\1.model0.0."),
                         (r"^critics\.(\d+)\.blocks\.(\d+)\.0\.parametrizations", r"discriminator_\1.model\2.0.0.parametrizations"),
                         (r"^critics\.(\d+)\.blocks\.(\d+)\.(weight|bias)$", r"discriminator_\1.model\2.0.\3")] + SPECTRAL,
    }[kind]


def their_key(kind: str, key: str, released_levels: int = 0) -> str:
    for pattern, replacement in renames(kind, released_levels):
        key = re.sub(pattern, replacement, key)
    return key


ALIAS = (r"\.cond_joint\.assisted_blocks\.0\.to_mask\.", ".cond_joint.to_mask.")


def unused(kind: str, key: str, network: nn.Module, released_levels: int) -> bool:
    """Whether the authors' key is one their forward does not use for a network built like `network`."""
    if kind in ("layout", "completor"):
        block = int(key.split(".")[1])
        top = network.num_levels - 1
        return block > top or (block == top and ".assisted_blocks.0." in key)
    if kind == "layout_critic":
        return int(key.split(".")[1]) < released_levels - network.num_levels
    if kind == "sean":
        return ".Spade.param_free_norm." in key or re.match(rf"^{STAGE_NAMES[-1]}\.ace_\w\.blending_", key) is not None
    return False


def gather(key: str, values: list[torch.Tensor]) -> torch.Tensor:
    """Our tensor from the authors' tensors for it: SEAN's per-class linear layers are one stacked
    tensor here (weights transposed, as ours multiply codes on the left), its blend scalars are 0-d."""
    if key.endswith("class_weight"):
        return torch.stack([v.t() for v in values])
    if key.endswith("class_bias"):
        return torch.stack(values)
    if key.endswith(("blend_gamma", "blend_beta")):
        return values[0].reshape(())
    return values[0]


def scatter(key: str, value: torch.Tensor) -> list[torch.Tensor]:
    """The inverse of `gather`."""
    if key.endswith("class_weight"):
        return [w.t().contiguous() for w in value]
    if key.endswith("class_bias"):
        return list(value)
    if key.endswith(("blend_gamma", "blend_beta")):
        return [value.reshape(1)]
    return [value]


def names_for(kind: str, key: str, value: torch.Tensor, released_levels: int) -> list[str]:
    name = their_key(kind, key, released_levels)
    return [name.format(j) for j in range(len(value))] if "{}" in name else [name]


def check_stages(kind: str, network: nn.Module) -> None:
    if kind in ("spade", "sean") and len(network.stages) != len(STAGE_NAMES):
        raise ValueError(f"the authors' generators have {len(STAGE_NAMES)} blocks after head_0; "
                         f"this one has {len(network.stages)}")


def load_authors_state(network: nn.Module, kind: str, state: dict, source: str,
                       released_levels: int = 0) -> dict[str, list[str]]:
    """Loads the authors' state dict `state` (read from `source`) into `network`, a `kind` network
    built with the compatibility settings; returns the authors' keys it dropped: {"aliases": second names
    of a mapped tensor, "unused": keys their forward does not use for a network like this one}."""
    check_stages(kind, network)
    what = KINDS[kind]
    converted, read = {}, set()
    for key, target in network.state_dict().items():
        names = names_for(kind, key, target, released_levels)
        missing = [name for name in names if name not in state]
        if missing:
            raise InputError(f"{source}: key {missing[0]} not found; a {what} of this configuration has it "
                             f"(is the file of another network or configuration?)")
        value = gather(key, [state[name] for name in names])
        if value.shape != target.shape:
            raise InputError(f"{source}: {names[0]} has shape {tuple(value.shape)}; a {what} of this configuration "
                             f"needs {tuple(target.shape)} (wrong class count, width or configuration?)")
        converted[key] = value
        read.update(names)
    dropped = {"aliases": [], "unused": []}
    for name, value in state.items():
        if name in read:
            continue
        original = re.sub(*ALIAS, name)
        if original != name and original in read:
            if not torch.equal(value, state[original]):
                raise InputError(f"{source}: {name} should be the same tensor as {original} (the authors register "
                                 f"that layer twice) but differs; the file is not one the authors' code wrote")
            dropped["aliases"].append(name)
        elif unused(kind, original, network, released_levels):
            dropped["unused"].append(name)
        else:
            raise InputError(f"{source}: unexpected key {name} for a {what} of this configuration")
    network.load_state_dict(converted)
    return dropped


def authors_state(network: nn.Module, kind: str, released_levels: int = 0) -> OrderedDict:
    """`network`'s state dict in the authors' layout (the keys their code reads for a network of this
    many levels; aliased layers under both names)."""
    check_stages(kind, network)
    state = OrderedDict()
    for key, value in network.state_dict().items():
        for name, part in zip(names_for(kind, key, value, released_levels), scatter(key, value)):
            state[name] = part.detach().clone()
    if kind in ("layout", "completor"):
        for level in range(len(network.joints)):
            for suffix in ("weight", "bias"):
                head = f"blocks.{level}.cond_joint.to_mask.sem_conv.{suffix}"
                state[f"blocks.{level}.cond_joint.assisted_blocks.0.to_mask.sem_conv.{suffix}"] = state[head]
    return state


def detect_kind(state: dict) -> str | None:
    """Which of KINDS an authors' state dict holds, from the keys only that kind has; None if none."""
    keys = list(state)
    if any(k.startswith("discriminator_0.model0.") for k in keys):
        return "image_critic"
    if any(k.startswith("Zencoder.") for k in keys):
        return "sean"
    if "fc.weight" in state and any(k.startswith("head_0.") for k in keys):
        return "spade"
    if any(".from_mask." in k for k in keys):
        return "layout_critic"
    if "blocks.0.fc1.weight" in state:
        return "completor" if any(".spade_block." in k for k in keys) else "layout"
    return None


def block_count(state: dict) -> int:
    return len({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})


def layout_config(state: dict, kind: str, source: str, num_levels: int | None = None) -> NetworkConfig:
    """The layout generator or completor configuration of an authors' state dict, with `num_levels`
    levels (default: all of the file's), with the compatibility settings on."""
    completor = kind == "completor"
    palette_size = state["blocks.0.cond_joint.to_mask.sem_conv.weight"].shape[0]
    released = block_count(state)
    conv = "spade_block.conv_1.weight_orig" if completor else "conv2.weight"
    widths = [state[f"blocks.{i}.{conv}"].shape[0] for i in range(released)]
    expected = [channels_at(i, CHANNEL_BASE, widths[0]) for i in range(released)]
    if widths != expected:
        raise InputError(f"{source}: block widths {widths} are not the authors' min(max_hidden_dim, 2^(12 - i)) "
                         f"({expected}); the file is not one the authors' code wrote")
    fc = state["blocks.0.fc1.weight"]
    hidden = state["blocks.0.spade_block.norm_0.mlp_shared.0.weight"].shape[0] if completor else 0
    return NetworkConfig(num_classes=palette_size - completor, latent_dim=fc.shape[1] - palette_size,
                         aspect=fc.shape[0] // (16 * widths[0]), num_levels=num_levels or released,
                         channel_base=CHANNEL_BASE, channel_max=widths[0], pixel_norm="authors", completor=completor,
                         spade_hidden=hidden, renormalize_palette=False, resize="nearest", critic_score_gain=math.sqrt(2))


def image_config(generator: dict, critic: dict | None, kind: str, *, height: int, width: int, num_upsamplings: int,
                 middle_blocks: int) -> ImageNetworkConfig:
    """The image generator and critic configuration of the authors' state dicts (without a critic, theirs
    by default: 64 channels, 2 scales), with the compatibility settings on. The topology
    (`num_upsamplings`, `middle_blocks`) is the release's: their `more` (Cityscapes) and `normal`
    (CelebA) have the same keys."""
    sean = kind == "sean"
    norm = "ace_0.Spade" if sean else "norm_0"
    return ImageNetworkConfig(
        num_classes=generator["fc.weight"].shape[1], height=height, width=width,
        base_channels=generator["conv_img.weight"].shape[1], num_upsamplings=num_upsamplings,
        spade_hidden=generator[f"head_0.{norm}.mlp_shared.0.weight"].shape[0],
        critic_channels=critic["discriminator_0.model0.0.weight"].shape[0] if critic else 64,
        critic_scales=len({k.split(".")[0] for k in critic}) if critic else 2, model="sean" if sean else "spade",
        style_dim=generator["Zencoder.model.14.weight"].shape[0] if sean else 0, middle_blocks=middle_blocks,
        resize="nearest", regions="authors" if sean else "argmax",
        encoder_channels=generator["Zencoder.model.1.weight"].shape[0] if sean else 0,
    )


def parameter_count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())
