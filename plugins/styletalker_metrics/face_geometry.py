"""Quantities read from 68-point facial landmarks (iBUG 300-W numbering, 0-based).

Axis letters: t frames, p points. Landmarks are pixel positions (x, y); a frame without a
detected face has NaN landmarks, and every function here passes NaN through for it.
"""

from __future__ import annotations

import numpy as np

JAW = np.arange(0, 17)
EYE_IMAGE_LEFT = np.arange(36, 42)  # the subject's right eye
EYE_IMAGE_RIGHT = np.arange(42, 48)
MOUTH = np.arange(48, 68)  # outer lip contour 48-59, inner 60-67
OUTER_EYE_CORNERS = (36, 45)


def interocular_distance(landmarks: np.ndarray) -> np.ndarray:
    """[t, 68, 2] -> [t]: distance between the outer eye corners (points 36 and 45), in pixels."""
    return np.linalg.norm(landmarks[:, OUTER_EYE_CORNERS[0]] - landmarks[:, OUTER_EYE_CORNERS[1]], axis=-1)


def eye_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """[t, 68, 2] -> [t]: eye aspect ratio averaged over both eyes (Soukupova and Cech, 2016).

    For an eye p1..p6 (corners p1 and p4, upper lid p2 p3, lower lid p6 p5):
    EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|). About 0.3 for open eyes of a real face,
    near 0 when closed.
    """
    ratios = []
    for eye in (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT):
        p = landmarks[:, eye]  # [t, 6, 2]
        vertical = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
        horizontal = np.linalg.norm(p[:, 0] - p[:, 3], axis=-1)
        ratios.append(vertical / (2.0 * np.maximum(horizontal, 1e-9)))
    return (ratios[0] + ratios[1]) / 2.0


def closed_runs(closed: np.ndarray, min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """Boolean [t] (eyes closed per frame) -> [(first frame, length)] of runs of closed frames.

    A run counts as a blink when min_frames <= length <= max_frames (max_frames 0: no upper limit).
    """
    runs, start = [], None
    for index, value in enumerate([*closed.tolist(), False]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            length = index - start
            if length >= min_frames and (max_frames <= 0 or length <= max_frames):
                runs.append((start, length))
            start = None
    return runs


def detect_blinks(ear: np.ndarray, threshold: float, relative: bool, min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """Eye aspect ratios [t] (NaN where no face) -> blinks as [(first frame, length in frames)].

    Eyes count as closed where EAR < threshold, or, when ``relative``, where EAR < threshold
    times the video's open-eye level (the 80th percentile of its EAR, which blinks - a small
    fraction of frames - do not move). Frames without a face count as open.
    """
    finite = np.isfinite(ear)
    if not finite.any():
        return []
    limit = threshold * float(np.percentile(ear[finite], 80)) if relative else threshold
    closed = np.where(finite, ear < limit, False)
    return closed_runs(closed, min_frames, max_frames)


def mouth_distance(generated: np.ndarray, reference: np.ndarray, center: bool, points: np.ndarray = MOUTH) -> np.ndarray:
    """Landmarks [t, 68, 2] of two videos -> [t]: mean Euclidean distance over ``points`` (pixels).

    center: subtract each frame's centroid of ``points`` first, so that only the shape is
    compared, not where the mouth is in the image.
    """
    a, b = generated[:, points], reference[:, points]
    if center:
        a = a - a.mean(1, keepdims=True)
        b = b - b.mean(1, keepdims=True)
    return np.linalg.norm(a - b, axis=-1).mean(-1)
