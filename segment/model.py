"""torchvision's DeepLabV3 with an auxiliary head, on ResNet-101 (the authors), ResNet-50 or MobileNetV3."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large, deeplabv3_resnet50, deeplabv3_resnet101

from data.errors import InputError

BACKBONES = {"resnet101": deeplabv3_resnet101, "resnet50": deeplabv3_resnet50,
             "mobilenet_v3_large": deeplabv3_mobilenet_v3_large}


def build_segmenter(backbone: str, num_classes: int, backbone_weights: str = "") -> nn.Module:
    """DeepLabV3 predicting `num_classes` channels, with the auxiliary head; the backbone from a local
    ImageNet state dict of torchvision's classifier (e.g. resnet101-63fe2227.pth) or from scratch."""
    if backbone not in BACKBONES:
        raise InputError(f"segment.backbone = {backbone!r}; use one of {', '.join(BACKBONES)}")
    model = BACKBONES[backbone](weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=True)
    for layer in model.modules():
        # torchvision's MobileNetV3 tracks batch statistics with momentum 0.01, so after a short run its eval
        # mode still normalises with near-initial statistics; the authors' normalisation uses 0.1.
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = 0.1
    if backbone_weights:
        load_backbone_weights(model.backbone, Path(backbone_weights))
    return model


def load_backbone_weights(backbone: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise InputError(f"backbone weights not found at {path}; give a local torchvision ImageNet state dict, "
                         f"or an empty segment.backbone_weights to train from scratch")
    state = torch.load(path, map_location="cpu", weights_only=True)
    # torchvision keeps MobileNet's layers under `features.`; the segmentation backbone drops that prefix.
    state = {key.removeprefix("features."): value for key, value in state.items()}
    wanted = backbone.state_dict().keys()
    try:
        backbone.load_state_dict({key: value for key, value in state.items() if key in wanted})
    except RuntimeError as error:
        raise InputError(f"{path} does not fit the {type(backbone).__name__} backbone "
                         f"({str(error).splitlines()[0]})") from None


def segmenter_loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, aux_weight: float) -> torch.Tensor:
    """Cross-entropy of the main head plus `aux_weight` × that of the auxiliary head, both at full size."""
    outputs = model(images)
    return F.cross_entropy(outputs["out"], labels) + aux_weight * F.cross_entropy(outputs["aux"], labels)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Label ids (B×H×W) of the main head, in eval mode."""
    training = model.training
    model.eval()
    labels = model(images)["out"].argmax(dim=1)
    model.train(training)
    return labels
