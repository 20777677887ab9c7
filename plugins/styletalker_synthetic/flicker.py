"""Flicker of the synthetic domain: the metrics plugin's skin and background flicker
(styletalker_metrics/flicker.py), with regions from the domain's own landmarks instead of dlib's.

The 68 landmarks of a synthetic frame follow from its factors (identity, pose, eye and mouth
openness, mouth width: styletalker_core/data/synthetic/landmarks.py). The ground truth's come from
its labels, exactly (or, without labels, from the factor oracle's reading of its frames); the
generated video's from the oracle's reading of its pose, eyes and mouth, with the identity of the
labels (the person it should show). The regions keep a margin from the head's outline and from the
eyes, brows and lips, so a small error of the oracle moves no feature into them.

Head motion moves pixels too (a turning head shades its skin differently), which is why the values
come with the ground truth's own and their ratio (target: at most 1.2).
"""

from __future__ import annotations

import numpy as np
import torch

from styletalker_core.data.synthetic.landmarks import synthetic_landmarks
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem
from styletalker_metrics.face_regions import BACKGROUND_SCALE, FEATURE_MARGIN, SKIN_SHRINK
from styletalker_metrics.flicker import MIN_TRUTH, check_region_options, flicker_keys, flicker_values
from styletalker_metrics.pairing import paired_frames, to_uint8_images
from styletalker_synthetic.metrics import DEFAULT_ORACLE, POSE, _OracleMetric

FACTORS = ("identity", "pose", "eye_open", "mouth_open", "mouth_width")
MOTION_FACTORS = FACTORS[1:]  # per frame; the identity is one vector


def factor_landmarks(factors: dict[str, np.ndarray], resolution: int) -> np.ndarray:
    """Factors (identity [t, k] or [k], pose [t, 3] degrees, eye_open, mouth_open, mouth_width [t]) ->
    landmarks [t, 68, 2] in frames of ``resolution`` pixels."""
    tensors = {name: torch.as_tensor(np.asarray(factors[name], dtype=np.float32)) for name in FACTORS}
    return synthetic_landmarks(tensors["identity"], tensors["pose"], tensors["eye_open"], tensors["mouth_open"],
                               tensors["mouth_width"], resolution=resolution).numpy()


class SyntheticFlicker(_OracleMetric):
    """Skin and background flicker, generated against ground truth, regions from the synthetic
    domain's landmarks (module notes; options as for ``flicker``)."""

    requires = ("frames", "reference_frames")

    def __init__(self, oracle: str = DEFAULT_ORACLE, batch_size: int = 64,
                 skin_shrink: float = SKIN_SHRINK, background_scale: float = BACKGROUND_SCALE,
                 margin: float = FEATURE_MARGIN, min_truth: float = MIN_TRUTH) -> None:
        super().__init__(oracle, batch_size)
        check_region_options("synthetic_flicker", skin_shrink, background_scale, margin, min_truth)
        self.skin_shrink, self.background_scale, self.margin, self.min_truth = skin_shrink, background_scale, margin, min_truth
        self.higher_is_better = flicker_keys()

    def read_landmarks(self, frames: torch.Tensor, identity: np.ndarray | None) -> np.ndarray:
        """Landmarks [t, 68, 2] of frames [t, 3, s, s] from the oracle's readings (``identity`` [k]: the
        person's identity factors; None: the mean of the oracle's identity readings)."""
        readings = self.read(frames)
        if identity is None:
            identity = np.clip(readings["identity"].mean(axis=0), 0.0, 1.0)
        factors = {"identity": identity, "pose": np.stack([readings[name] for name in POSE], axis=1),
                   **{name: np.clip(readings[name], 0.0, 1.0) for name in ("eye_open", "mouth_open", "mouth_width")}}
        return factor_landmarks(factors, frames.shape[-1])

    def compute(self, item: EvalItem) -> dict[str, float]:
        generated, truth = paired_frames(item)
        if generated.shape[-1] != generated.shape[-2]:
            raise StyleTalkerError(f"synthetic_flicker: frames must be square, got {tuple(generated.shape[-2:])}")
        length = len(truth)
        identity = None
        if item.labels.get("identity") is not None:
            value = item.labels["identity"]
            value = np.asarray(value.cpu() if torch.is_tensor(value) else value, dtype=np.float64)
            identity = value.reshape(-1, value.shape[-1])[0]
        labels = {name: value for name in MOTION_FACTORS if (value := self.label(item.labels, name, length)) is not None}
        if identity is not None and len(labels) == len(MOTION_FACTORS) and all(len(value) >= length for value in labels.values()):
            truth_landmarks = factor_landmarks({"identity": identity, **labels}, truth.shape[-1])
        else:
            truth_landmarks = self.read_landmarks(truth, identity)
        generated_landmarks = self.read_landmarks(generated, identity)
        return flicker_values(to_uint8_images(generated), to_uint8_images(truth), generated_landmarks, truth_landmarks,
                              self.skin_shrink, self.background_scale, self.margin, self.min_truth)
