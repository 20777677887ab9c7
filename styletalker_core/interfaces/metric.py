"""Evaluation metrics."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
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


Observations = Mapping[str, Sequence[float]]


class PooledMetric(Metric):
    """A metric whose values are statistics of observations pooled over every item of an evaluation.

    Some quantities are too rare per video to compare one video at a time (a clip of three seconds
    holds about one blink): the metric observes each item (``observe``: named lists of numbers,
    e.g. the durations of the generated and of the true blinks) and computes its values from the
    observations of many items together (``pool``). The evaluation engine keeps each item's
    observations with its results and reports ``pool`` of all items' observations as the
    evaluation's value, not the mean of per-item values; an ablation's bootstrap pools the
    observations of the resampled clips. ``compute`` (one item alone) is ``pool`` of that item's
    observations.
    """

    @abc.abstractmethod
    def observe(self, item: EvalItem) -> dict[str, list[float]]:
        """-> {observation name: values} of one item (any number of values, possibly none)."""

    @abc.abstractmethod
    def pool(self, observations: Sequence[Observations]) -> dict[str, float]:
        """Observations of several items (each as returned by ``observe``) -> {value name: value}
        for every name in ``higher_is_better`` (NaN where the pooled observations do not define it)."""

    def compute(self, item: EvalItem) -> dict[str, float]:
        return self.pool([self.observe(item)])
