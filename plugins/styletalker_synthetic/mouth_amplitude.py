"""Mouth amplitude: how far the generated mouth opens and closes, against the ground-truth video.

Both videos are read by the factor oracle (the scoring oracle: no model trains against it, see
styletalker_core/evaluate/judges.py), so its own bias cancels: the mouth openness of every frame
of the generated video and of the ground-truth video of the same clip (same speech).

- ``mouth_amplitude_std_ratio``: standard deviation over the clip's frames of the generated
  openness over that of the ground truth's: 1 when the mouth moves as widely, under 1 when its
  openings are smaller (the target: at least 0.9);
- ``mouth_amplitude_mean_ratio``: the ratio of the mean openness (under 1: a mouth that stays
  more closed on average).

Both aim at 1; they are marked higher-is-better because the failure they watch for is a mouth that
moves too little. NaN when the ground truth's mouth does not move (or is never open).
"""

from __future__ import annotations

import numpy as np

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem
from styletalker_synthetic.metrics import _OracleMetric

STILL = 1e-9


def amplitude_ratios(generated: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mouth openness [t] of a generated and a ground-truth video (the same length) ->
    (std ratio, mean ratio), each NaN when the ground truth's value is 0 (below ``STILL``: float32
    readings of a still mouth leave a spread of rounding errors)."""
    generated, truth = np.asarray(generated, np.float64), np.asarray(truth, np.float64)
    spread, level = float(np.std(truth)), float(np.mean(truth))
    std_ratio = float(np.std(generated)) / spread if spread > STILL else float("nan")
    mean_ratio = float(np.mean(generated)) / level if abs(level) > STILL else float("nan")
    return std_ratio, mean_ratio


class MouthAmplitude(_OracleMetric):
    """Standard deviation and mean of the oracle's mouth openness, generated over ground truth (module notes)."""

    requires = ("frames", "reference_frames")
    higher_is_better = {"mouth_amplitude_std_ratio": True, "mouth_amplitude_mean_ratio": True}  # noqa: RUF012 - Metric.higher_is_better, a class-level default never mutated

    def compute(self, item: EvalItem) -> dict[str, float]:
        reference = item.reference_frames
        if reference is None:
            raise StyleTalkerError("synthetic_mouth_amplitude needs the ground-truth video (reference_frames)")
        length = min(len(item.frames), len(reference))
        generated = self.read(item.frames[:length])["mouth_open"]
        truth = self.read(reference[:length])["mouth_open"]
        std_ratio, mean_ratio = amplitude_ratios(generated, truth)
        return {"mouth_amplitude_std_ratio": std_ratio, "mouth_amplitude_mean_ratio": mean_ratio}
