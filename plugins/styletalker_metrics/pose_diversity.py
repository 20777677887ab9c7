"""Head-pose diversity: how much the estimated head pose varies over a video."""

from __future__ import annotations

import numpy as np

from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_metrics.head_pose import head_pose
from styletalker_metrics.landmarks import track_landmarks
from styletalker_metrics.pairing import check_video

AXES = ("yaw", "pitch", "roll")


class PoseDiversity(Metric):
    """Standard deviation over time of yaw, pitch and roll (degrees), and their mean.

    Pose per frame: dlib's 68 landmarks fitted with a rigid 3-D face template by least-squares
    PnP (see head_pose.py; ``focal`` in pixels, 0: the frame width). A still head scores 0;
    higher means more head motion (audio-driven generation should move the head, not freeze
    it). Frames without a detectable face are left out and counted; fewer than two frames
    with a face give NaN.
    """

    requires = ("frames",)

    def __init__(self, focal: float = 0.0) -> None:
        self.focal = focal
        self.higher_is_better = {"pose_diversity": True, **{f"pose_std_{axis}": True for axis in AXES}, "pose_missing_faces": False}

    def angles(self, item: EvalItem) -> np.ndarray:
        """(yaw, pitch, roll) [t, 3] in degrees; NaN rows for frames without a face."""
        check_video(item.frames, "generated video")
        track = track_landmarks(item.frames)
        return head_pose(track.points, track.image_size, self.focal or None)

    def compute(self, item: EvalItem) -> dict[str, float]:
        angles = self.angles(item)
        found = np.isfinite(angles).all(-1)
        values = {"pose_missing_faces": float(len(found) - found.sum())}
        stds = angles[found].std(0) if found.sum() >= 2 else np.full(3, np.nan)
        values.update({f"pose_std_{axis}": float(std) for axis, std in zip(AXES, stds)})
        values["pose_diversity"] = float(stds.mean())
        return values
