"""Temporal flicker: frame-to-frame change of the skin and the background, against the ground truth's.

Flicker of a region is the mean absolute change of its pixels between consecutive frames, in 8-bit
levels (0-255; both videos are rounded to 8 bits first, as a viewer gets them): averaged over the
pixels in the region in both frames of a pair, then over the pairs (face_regions.py: skin of the
face, background around the head). A static video has flicker 0; skin whose brightness jumps by b
levels between two frames adds b to that pair.

Head motion moves pixels too: a turning head shades its skin differently and slides features
across the region's edges, so even a perfect video has some flicker. That is why every value is
reported with the ground truth's own (``*_truth``, its regions found the same way) and their ratio
(``*_ratio``: generated over ground truth; the generated videos are meant to stay within 1.2 of
it). A static ground truth (the synthetic domain's background does not move: 0) would make any
change an infinite ratio, so the ground truth's value is raised to ``min_truth`` levels for the
ratio (0.25: one level of change in every fourth pixel, at the edge of what is visible).
"""

from __future__ import annotations

import numpy as np

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_metrics.face_regions import BACKGROUND_SCALE, FEATURE_MARGIN, SKIN_SHRINK, face_regions, region_flicker
from styletalker_metrics.landmarks import track_landmarks
from styletalker_metrics.pairing import paired_frames, to_uint8_images

REGIONS = ("skin", "background")
MIN_TRUTH = 0.25


def flicker_keys() -> dict[str, bool]:
    """The values of the flicker metrics, all lower is better (``higher_is_better`` entries)."""
    return {f"flicker_{region}{suffix}": False for region in REGIONS for suffix in ("", "_truth", "_ratio")}


def flicker_values(generated: np.ndarray, truth: np.ndarray, generated_landmarks: np.ndarray, truth_landmarks: np.ndarray,
                   skin_shrink: float = SKIN_SHRINK, background_scale: float = BACKGROUND_SCALE,
                   margin: float = FEATURE_MARGIN, min_truth: float = MIN_TRUTH) -> dict[str, float]:
    """Flicker of each region in both videos and their ratio (module notes).

    generated, truth: 8-bit images [t, h, w, 3] of the same size (lengths may differ); landmarks
    [t, 68, 2] of each (NaN rows: no face, left out). -> ``flicker_<region>``, ``_truth`` and ``_ratio``
    for region skin and background (NaN where a region has no pixel in two consecutive frames).
    """
    size = generated.shape[1:3]
    ours = face_regions(generated_landmarks, size, skin_shrink, background_scale, margin)
    theirs = face_regions(truth_landmarks, size, skin_shrink, background_scale, margin)
    values = {}
    for region, our_mask, their_mask in zip(REGIONS, ours, theirs):
        value, truth_value = region_flicker(generated, our_mask), region_flicker(truth, their_mask)
        values[f"flicker_{region}"] = value
        values[f"flicker_{region}_truth"] = truth_value
        values[f"flicker_{region}_ratio"] = value / max(truth_value, min_truth)  # NaN stays NaN
    return values


def check_region_options(name: str, skin_shrink: float, background_scale: float, margin: float, min_truth: float) -> None:
    """One clear error for region options out of range (``name``: the metric's)."""
    if not 0 < skin_shrink <= 1 or background_scale < 1 or margin < 0 or min_truth <= 0:
        raise StyleTalkerError(f"{name}: need 0 < skin_shrink <= 1, background_scale >= 1, margin >= 0 and min_truth > 0; "
                               f"got {skin_shrink}, {background_scale}, {margin}, {min_truth}")


class Flicker(Metric):
    """Flicker of skin and background, generated against ground truth, regions from dlib's 68 landmarks
    of each video (module notes; for real video: the synthetic domain has ``synthetic_flicker``).

    Frames where dlib finds no face are left out of both regions (``flicker_missing_faces`` counts
    them, in either video).
    """

    requires = ("frames", "reference_frames")

    def __init__(self, skin_shrink: float = SKIN_SHRINK, background_scale: float = BACKGROUND_SCALE,
                 margin: float = FEATURE_MARGIN, min_truth: float = MIN_TRUTH) -> None:
        check_region_options("flicker", skin_shrink, background_scale, margin, min_truth)
        self.skin_shrink, self.background_scale, self.margin, self.min_truth = skin_shrink, background_scale, margin, min_truth
        self.higher_is_better = {**flicker_keys(), "flicker_missing_faces": False}

    def compute(self, item: EvalItem) -> dict[str, float]:
        generated, truth = paired_frames(item)
        ours, theirs = track_landmarks(generated), track_landmarks(truth)
        values = flicker_values(to_uint8_images(generated), to_uint8_images(truth), ours.points, theirs.points,
                                self.skin_shrink, self.background_scale, self.margin, self.min_truth)
        values["flicker_missing_faces"] = float(ours.missing + theirs.missing)
        return values

