"""Blink rate from the eye aspect ratio of dlib landmarks."""

from __future__ import annotations

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_metrics.face_geometry import detect_blinks, eye_aspect_ratio
from styletalker_metrics.landmarks import track_landmarks
from styletalker_metrics.pairing import check_video


class BlinkRate(Metric):
    """Blinks per minute in the generated video, from the eye aspect ratio (EAR) of each frame.

    A blink is a run of at least ``min_frames`` (and at most ``max_frames``; 0: no limit)
    consecutive frames whose EAR is below ``threshold`` - a fraction of the video's open-eye
    EAR (its 80th percentile) when ``relative``, else an absolute EAR (0.2 is common for real
    faces). The defaults leave a margin for landmark jitter on small faces (single frames of an
    open eye can read 30 % low at 128 px) while a real or drawn blink reads 50-60 % low for
    several frames. People blink about 15-20 times a minute at rest; talking-head generators without
    a blink model score near 0, which is why higher counts as better here (up to the natural
    range). Frames without a detectable face count as open eyes and are reported.
    """

    requires = ("frames",)

    def __init__(self, threshold: float = 0.6, relative: bool = True, min_frames: int = 2, max_frames: int = 25) -> None:
        if threshold <= 0 or (relative and threshold >= 1):
            raise StyleTalkerError(f"blink_rate: threshold must be in (0, 1) when relative, positive otherwise; got {threshold}")
        if min_frames < 1:
            raise StyleTalkerError(f"blink_rate: min_frames must be at least 1, got {min_frames}")
        self.threshold, self.relative = threshold, relative
        self.min_frames, self.max_frames = min_frames, max_frames
        self.higher_is_better = {"blink_rate": True, "blink_missing_faces": False}

    def blinks(self, item: EvalItem) -> list[tuple[int, int]]:
        """[(first frame, length in frames)] of the blinks found in ``item.frames``."""
        check_video(item.frames, "generated video")
        track = track_landmarks(item.frames)
        return detect_blinks(eye_aspect_ratio(track.points), self.threshold, self.relative, self.min_frames, self.max_frames)

    def compute(self, item: EvalItem) -> dict[str, float]:
        track = track_landmarks(item.frames)
        minutes = len(item.frames) / item.fps / 60.0
        missing = float(track.missing)
        if not track.found.any():
            return {"blink_rate": float("nan"), "blink_missing_faces": missing}
        return {"blink_rate": len(self.blinks(item)) / minutes, "blink_missing_faces": missing}
