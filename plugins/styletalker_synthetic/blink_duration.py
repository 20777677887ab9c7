"""How long blinks last, generated against ground truth: a two-sample Kolmogorov-Smirnov statistic.

A blink is a run of frames with eye openness under 0.5 (as for ``blink_rate_error`` and
``blink_f1``): the generated video's openness is read by the factor oracle, the ground truth's
is its label (the motion source's in motion-controllable mode). Its duration is the run's length
in seconds. A run that touches the first or the last frame is left out: the clip cut it, so its
length is not the blink's.

A clip of three seconds holds about one blink, too few for a distribution, so this is a pooled
metric (styletalker_core.interfaces.metric.PooledMetric): each clip's blink durations are kept,
and the statistic is computed on the durations of all clips of an evaluation together.

``blink_duration_ks``: the largest distance between the empirical distribution functions of the
generated and of the true durations (0: the same distribution, 1: no overlap at all). When only
one side has blinks it is 1 (a model that never blinks matches no duration); when neither has
any it is NaN (nothing to compare).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem, Observations, PooledMetric
from styletalker_synthetic.evaluation import closed_runs
from styletalker_synthetic.metrics import _OracleMetric


def ks_statistic(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: max over x of |F_a(x) - F_b(x)|, F the empirical
    distribution functions of samples ``a`` and ``b`` (ties allowed). 1 when exactly one sample is
    empty, NaN when both are."""
    first, second = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    if not len(first) and not len(second):
        return float("nan")
    if not len(first) or not len(second):
        return 1.0
    points = np.concatenate([first, second])  # the distribution functions only step at sample values
    below_a = np.searchsorted(first, points, side="right") / len(first)
    below_b = np.searchsorted(second, points, side="right") / len(second)
    return float(np.max(np.abs(below_a - below_b)))


def blink_durations(eye_open: np.ndarray, fps: float) -> list[float]:
    """Eye openness [t] -> the durations (seconds) of its blinks (runs under 0.5) that lie inside the
    sequence: runs touching the first or the last frame are left out (cut by the clip)."""
    length = len(eye_open)
    return [(stop - start) / fps for start, stop in closed_runs(eye_open) if start > 0 and stop < length]


class BlinkDuration(_OracleMetric, PooledMetric):
    """Two-sample KS statistic between generated and true blink durations, pooled over clips (module notes)."""

    requires = ("labels",)
    higher_is_better = {"blink_duration_ks": False}  # noqa: RUF012 - Metric.higher_is_better, a class-level default never mutated

    def observe(self, item: EvalItem) -> dict[str, list[float]]:
        truth_labels = item.motion_labels if "eye_open" in item.motion_labels else item.labels
        truth = self.label(truth_labels, "eye_open", len(item.frames))
        if truth is None:
            raise StyleTalkerError("synthetic_blink_duration needs the ground truth's eye_open labels (labels or motion_labels)")
        generated = self.read(item.frames)["eye_open"]
        return {"generated": blink_durations(generated, item.fps), "truth": blink_durations(truth, item.fps)}

    def pool(self, observations: Sequence[Observations]) -> dict[str, float]:
        generated = [value for observed in observations for value in observed["generated"]]
        truth = [value for observed in observations for value in observed["truth"]]
        return {"blink_duration_ks": ks_statistic(generated, truth)}
