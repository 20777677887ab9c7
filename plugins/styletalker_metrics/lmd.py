"""Landmark distance (LMD) between generated and ground-truth frames, from dlib's 68 landmarks."""

from __future__ import annotations

from typing import Literal

import numpy as np

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_metrics.face_geometry import MOUTH, interocular_distance, mouth_distance
from styletalker_metrics.landmarks import track_landmarks
from styletalker_metrics.pairing import paired_frames

REGIONS = {"mouth": MOUTH, "face": np.arange(68)}
REFERENCE_WIDTH = 256  # "image" normalisation: distances as if the frames were 256 pixels wide


class LandmarkDistance(Metric):
    """Mean distance between corresponding landmarks of generated and reference frames (lower is better).

    For each frame pair, the Euclidean distances between the ``region`` landmarks
    (mouth: the 20 lip points 48-67; face: all 68) are averaged; frame values are averaged over
    the video. Landmarks come from dlib on both videos (the reference resized to the generated
    size first). ``normalize``: "image" reports pixels at a frame width of 256 (the usual
    convention for aligned face crops, comparable across resolutions), "interocular" divides
    by the reference's outer-eye-corner distance, "none" gives pixels. ``center`` removes each
    frame's landmark centroid first, to compare mouth shape regardless of head position.
    Frames where either video has no detectable face are left out and counted.
    """

    requires = ("frames", "reference_frames")

    def __init__(
        self,
        region: Literal["mouth", "face"] = "mouth",
        normalize: Literal["image", "interocular", "none"] = "image",
        center: bool = False,
    ) -> None:
        if region not in REGIONS:
            raise StyleTalkerError(f"lmd: region must be one of {', '.join(REGIONS)}, got {region!r}")
        if normalize not in ("image", "interocular", "none"):
            raise StyleTalkerError(f"lmd: normalize must be image, interocular or none, got {normalize!r}")
        self.region, self.normalize, self.center = region, normalize, center
        self.key = "lmd" if region == "mouth" else "lmd_face"
        self.higher_is_better = {self.key: False, f"{self.key}_missing_faces": False}

    def compute(self, item: EvalItem) -> dict[str, float]:
        generated, reference = paired_frames(item)
        ours = track_landmarks(generated)
        theirs = track_landmarks(reference)
        both = ours.found & theirs.found
        missing = float(len(both) - both.sum())
        if not both.any():
            return {self.key: float("nan"), f"{self.key}_missing_faces": missing}
        a, b = ours.points[both], theirs.points[both]
        distances = mouth_distance(a, b, self.center, REGIONS[self.region])  # [t] pixels
        if self.normalize == "image":
            distances = distances * (REFERENCE_WIDTH / generated.shape[-1])
        elif self.normalize == "interocular":
            distances = distances / np.maximum(interocular_distance(b), 1e-6)
        return {self.key: float(distances.mean()), f"{self.key}_missing_faces": missing}

