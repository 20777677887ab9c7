"""The factor oracle of the synthetic domain: a small CNN that reads every factor of a frame.

Readings: mouth_open, mouth_width, eye_open in [0, 1]; yaw, pitch, roll in degrees; identity
[b, IDENTITY_DIM] in [0, 1]. Internally the network predicts normalised targets (pose divided
by the motion model's limits) so all factors weigh alike in the loss.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from styletalker_core.data.synthetic.identity import IDENTITY_DIM
from styletalker_core.data.synthetic.motion import POSE_LIMITS
from styletalker_core.interfaces import FactorOracle

SCALAR_FACTORS = ("mouth_open", "mouth_width", "yaw", "pitch", "roll", "eye_open")
POSE_FACTORS = ("yaw", "pitch", "roll")
_POSE_SCALE = {name: float(limit) for name, limit in zip(POSE_FACTORS, POSE_LIMITS)}


def _block(inputs: int, outputs: int) -> nn.Sequential:
    """Halves the resolution: strided 3x3 conv, then a 3x3 conv, each with batch norm and SiLU."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.SiLU(),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.SiLU(),
    )


class SyntheticFactorOracle(FactorOracle):
    """Small CNN reading mouth, pose, eyes and identity factors from synthetic-domain frames."""

    def __init__(self, resolution: int = 64, channels: int = 16, hidden: int = 256, identity_dim: int = IDENTITY_DIM) -> None:
        super().__init__()
        if resolution < 16 or resolution & (resolution - 1):
            raise ValueError(f"oracle resolution {resolution}: use a power of two >= 16")
        self.resolution = resolution
        self.identity_dim = identity_dim
        self.factors = {name: 1 for name in SCALAR_FACTORS} | {"identity": identity_dim}
        widths = [channels * 2, channels * 4, channels * 6, channels * 8]
        # A 4x4 stride-2 stem sees every pixel once (no information lost) at a quarter of the cost.
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.SiLU()]
        for inputs, outputs in itertools.pairwise(widths):
            layers.append(_block(inputs, outputs))
        self.features = nn.Sequential(*layers)
        final = resolution // 16
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * final * final, hidden),
            nn.SiLU(),
            nn.Linear(hidden, len(SCALAR_FACTORS) + identity_dim),
        )

    def normalised(self, images: torch.Tensor) -> torch.Tensor:
        """images [b, 3, h, w] in [-1, 1] (any size; resized to ``resolution``) -> raw outputs [b, 6 + identity_dim].

        Columns follow SCALAR_FACTORS, pose divided by its limit, then the identity factors.
        """
        if images.shape[-2:] != (self.resolution, self.resolution):
            images = F.interpolate(images, size=(self.resolution, self.resolution), mode="bilinear",
                                   align_corners=False, antialias=True)
        return self.head(self.features(images))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images [b, 3, h, w] in [-1, 1] -> {factor: [b]} and identity [b, identity_dim]."""
        raw = self.normalised(images)
        readings = {}
        for i, name in enumerate(SCALAR_FACTORS):
            readings[name] = raw[:, i] * _POSE_SCALE.get(name, 1.0)
        readings["identity"] = raw[:, len(SCALAR_FACTORS):]
        return readings


def normalised_targets(labels: dict[str, torch.Tensor]) -> torch.Tensor:
    """Labels (mouth_open, mouth_width, eye_open [b], pose [b, 3] degrees, identity [b, k]) ->
    the oracle's raw target columns [b, 6 + k]."""
    pose = labels["pose"] / torch.as_tensor(POSE_LIMITS, dtype=labels["pose"].dtype)
    columns = {
        "mouth_open": labels["mouth_open"],
        "mouth_width": labels["mouth_width"],
        "yaw": pose[:, 0],
        "pitch": pose[:, 1],
        "roll": pose[:, 2],
        "eye_open": labels["eye_open"],
    }
    return torch.cat([torch.stack([columns[name] for name in SCALAR_FACTORS], dim=1), labels["identity"]], dim=1)
