"""Evaluation metrics."""

from __future__ import annotations

import abc
from typing import Any

import attrs
import torch


@attrs.define
class EvalItem:
    """One generated video with everything a metric may compare it against.

    frames: [t, 3, h, w] generated, in [-1, 1]. audio: [s] driving audio, 16 kHz.
    reference_frames: [t, 3, h, w] ground truth video, when there is one.
    reference_image: [3, h, w] the identity reference.
    motion_frames: [t, 3, h, w] the motion source, in motion-controllable mode.
    labels: per-frame ground truth of the synthetic domain (name -> [t, ...]).
    """

    frames: torch.Tensor
    audio: torch.Tensor
    fps: int = 25
    sample_rate: int = 16000
    reference_frames: torch.Tensor | None = None
    reference_image: torch.Tensor | None = None
    motion_frames: torch.Tensor | None = None
    labels: dict[str, Any] = attrs.Factory(dict)
    motion_labels: dict[str, Any] = attrs.Factory(dict)


class Metric(abc.ABC):
    """A metric: one EvalItem -> named values. Aggregated over items by the mean.

    Attributes: requires (names of EvalItem fields that must be present),
    higher_is_better (name -> bool for each value it returns).
    """

    requires: tuple[str, ...] = ()
    higher_is_better: dict[str, bool]

    @abc.abstractmethod
    def compute(self, item: EvalItem) -> dict[str, float]:
        """-> {value name: value}."""
