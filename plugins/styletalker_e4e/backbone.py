"""Convolutional backbones of the e4e / pSp encoder (kind ``image_encoder_backbone``): IR and IR-SE
(ArcFace-style) or plain ResNet.

Module and parameter names follow the published pSp/e4e encoders (``input_layer``, ``body.<i>``,
``shortcut_layer``, ``res_layer``, SE ``fc1``/``fc2``), so their checkpoints load by a
one-to-one key table. Every stage halves the resolution in its first unit; the encoder
taps the last three stages (c1, c2, c3 from fine to coarse).

Axis letters: b batch, c channels, h/w height/width.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from styletalker_core.interfaces import ImageEncoderBackbone

UnitKind = Literal["ir", "ir_se", "resnet"]
# Units per stage of the published IR-50/100/152 backbones (channels 64, 128, 256, 512).
IR_UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}


class SqueezeExcite(nn.Module):
    """Channel attention: x * sigmoid(fc2(relu(fc1(avgpool(x)))))."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class Subsample(nn.Module):
    """Keep every ``stride``-th pixel: what a 1x1 max-pool with that stride computes, without its cost."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x


class IRUnit(nn.Module):
    """Improved-residual unit: BN -> conv3x3 -> PReLU -> conv3x3 (stride) -> BN [-> SE], plus shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int, se_reduction: int = 0) -> None:
        super().__init__()
        if in_channels == channels:
            self.shortcut_layer: nn.Module = Subsample(stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )
        layers: list[nn.Module] = [
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(channels),
        ]
        if se_reduction > 0:
            layers.append(SqueezeExcite(channels, se_reduction))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class BasicUnit(nn.Module):
    """ResNet basic block: conv3x3 (stride) -> BN -> ReLU -> conv3x3 -> BN, plus shortcut, ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        if in_channels == channels and stride == 1:
            self.shortcut_layer: nn.Module = nn.Identity()
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )
        self.res_layer = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.res_layer(x) + self.shortcut_layer(x))


class Backbone(ImageEncoderBackbone):
    """images [b, 3, h, w] -> (c1, c2, c3): outputs of the last three stages.

    With stages of ``channels`` and ``units``, c1 is [b, channels[-3], h / 2^(n-1), ...],
    c2 [b, channels[-2], h / 2^n], c3 [b, channels[-1], h / 2^(n+1)] for n = len(channels) - 1.
    ``kind`` picks the unit: IR, IR with squeeze-excitation (``se_reduction``), or ResNet's basic block.
    """

    def __init__(self, kind: UnitKind, stem_channels: int, channels: tuple[int, ...], units: tuple[int, ...],
                 se_reduction: int = 16) -> None:
        super().__init__()
        channels, units = tuple(channels), tuple(units)
        if len(channels) != len(units) or len(channels) < 3:
            raise ValueError(f"backbone needs >= 3 stages and one unit count per stage; got channels {channels}, units {units}")
        depth = len(channels)  # the stem keeps the size; each stage halves it
        self.out_channels = (channels[-3], channels[-2], channels[-1])
        self.strides = (2 ** (depth - 2), 2 ** (depth - 1), 2**depth)
        if kind == "resnet":
            self.input_layer = nn.Sequential(
                nn.Conv2d(3, stem_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_channels), nn.ReLU()
            )
        else:
            self.input_layer = nn.Sequential(
                nn.Conv2d(3, stem_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_channels), nn.PReLU(stem_channels)
            )
        body: list[nn.Module] = []
        self.stage_ends: list[int] = []
        previous = stem_channels
        for stage_channels, count in zip(channels, units):
            for unit in range(count):
                stride = 2 if unit == 0 else 1
                if kind == "resnet":
                    body.append(BasicUnit(previous, stage_channels, stride))
                else:
                    body.append(IRUnit(previous, stage_channels, stride, se_reduction if kind == "ir_se" else 0))
                previous = stage_channels
            self.stage_ends.append(len(body) - 1)
        self.body = nn.Sequential(*body)
        self.taps = tuple(self.stage_ends[-3:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.input_layer(x)
        features = []
        for index, unit in enumerate(self.body):
            x = unit(x)
            if index in self.taps:
                features.append(x)
        c1, c2, c3 = features
        return c1, c2, c3


class IRBackbone(Backbone):
    """IR backbone (pSp / e4e): stages of improved-residual units with PReLU."""

    def __init__(self, stem_channels: int = 64, channels: tuple[int, ...] = (64, 128, 256, 512),
                 units: tuple[int, ...] = IR_UNITS[50]) -> None:
        super().__init__("ir", stem_channels, channels, units)


class IRSEBackbone(Backbone):
    """IR-SE backbone (the published e4e's IR-SE-50): IR units with squeeze-excitation of ``se_reduction``."""

    def __init__(self, stem_channels: int = 64, channels: tuple[int, ...] = (64, 128, 256, 512),
                 units: tuple[int, ...] = IR_UNITS[50], se_reduction: int = 16) -> None:
        super().__init__("ir_se", stem_channels, channels, units, se_reduction)


class ResNetBackbone(Backbone):
    """Plain ResNet backbone: stages of basic blocks with ReLU."""

    def __init__(self, stem_channels: int = 64, channels: tuple[int, ...] = (64, 128, 256, 512),
                 units: tuple[int, ...] = IR_UNITS[50]) -> None:
        super().__init__("resnet", stem_channels, channels, units)


# The registered backbones by name (the names are the encoder's ``backbone`` values).
BACKBONES: dict[str, type[Backbone]] = {"ir": IRBackbone, "ir_se": IRSEBackbone, "resnet": ResNetBackbone}
# A small instance of each for the contract tests and as a documented example.
EXAMPLE_OPTIONS: dict[str, dict[str, object]] = {
    name: {"stem_channels": 4, "channels": [4, 8, 8, 16], "units": [1, 1, 1, 1],
           **({"se_reduction": 2} if name == "ir_se" else {})}
    for name in BACKBONES
}
