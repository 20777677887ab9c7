"""Skin and background regions of a face frame, from its 68 landmarks (iBUG 300-W numbering).

- **Face polygon**: the convex hull of the 68 points (jaw round the chin, brows on top).
- **Skin**: the face polygon shrunk towards its centre by ``skin_shrink`` (keeps away from the
  head's outline, where any head motion changes pixels between skin and background), minus the
  boxes of the eyes (36-41, 42-47), the brows (17-21, 22-26) and the lips (48-67), each grown by
  ``margin`` times its larger side on every side (lids, lashes, lips and teeth move on their own).
- **Background**: outside the head polygon grown about its centre by ``background_scale``. The 68
  points stop at the brows, so the head polygon is the convex hull of the points together with the
  jaw (0-16) mirrored across the line through the outer eye corners (36, 45): the top of the skull
  lies about as far above the eyes as the chin below them. Growing it leaves the hair and the ears
  out too.

Pixels are tested at their centres (integer coordinates, as landmarks are given). A frame without
landmarks (NaN: no face found) has empty regions.
Axis letters: t frames, p points, k polygon vertices, h/w height/width.
"""

from __future__ import annotations

import numpy as np

EYES = (np.arange(36, 42), np.arange(42, 48))
BROWS = (np.arange(17, 22), np.arange(22, 27))
LIPS = np.arange(48, 68)
SKIN_SHRINK = 0.85
BACKGROUND_SCALE = 1.25
JAW = np.arange(0, 17)
OUTER_EYE_CORNERS = (36, 45)
FEATURE_MARGIN = 0.25


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Points [p, 2] -> the vertices of their convex hull [k, 2], counter-clockwise in (x, y)
    (Andrew's monotone chain; collinear points dropped)."""
    unique = np.unique(np.asarray(points, dtype=np.float64), axis=0)  # sorted by x, then y
    if len(unique) < 3:
        return unique

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))

    def chain(ordered: np.ndarray) -> list[np.ndarray]:
        kept: list[np.ndarray] = []
        for point in ordered:
            while len(kept) >= 2 and cross(kept[-2], kept[-1], point) <= 0:
                kept.pop()
            kept.append(point)
        return kept

    lower, upper = chain(unique), chain(unique[::-1])
    return np.array(lower[:-1] + upper[:-1])


def scaled_polygon(polygon: np.ndarray, factor: float) -> np.ndarray:
    """A polygon [k, 2] scaled by ``factor`` about the mean of its vertices."""
    centre = polygon.mean(axis=0)
    return centre + (polygon - centre) * factor


def convex_polygon_mask(polygon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool [h, w]: pixel centres inside (or on) the convex polygon [k, 2] given counter-clockwise in (x, y)."""
    h, w = size
    if len(polygon) < 3:
        return np.zeros(size, dtype=bool)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    inside = np.ones(size, dtype=bool)
    for start, stop in zip(polygon, np.roll(polygon, -1, axis=0)):
        edge = stop - start
        inside &= edge[0] * (ys - start[1]) - edge[1] * (xs - start[0]) >= -1e-9
    return inside


def box_mask(points: np.ndarray, size: tuple[int, int], margin: float) -> np.ndarray:
    """bool [h, w]: pixel centres inside the bounding box of ``points`` [p, 2], grown by ``margin``
    times its larger side on every side."""
    low, high = points.min(axis=0), points.max(axis=0)
    pad = float((high - low).max()) * margin
    low, high = low - pad, high + pad
    ys, xs = np.mgrid[0:size[0], 0:size[1]]
    return (xs >= low[0]) & (xs <= high[0]) & (ys >= low[1]) & (ys <= high[1])


def mirrored(points: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Points [p, 2] mirrored across the line through ``start`` and ``stop`` [2]."""
    direction = (stop - start) / max(float(np.linalg.norm(stop - start)), 1e-9)
    relative = points - start
    along = relative @ direction
    return start + 2 * along[:, None] * direction - relative


def head_polygon(points: np.ndarray) -> np.ndarray:
    """68 landmarks [68, 2] -> the head's convex polygon [k, 2]: the hull of the points and of the
    jaw mirrored across the outer eye corners' line (module notes)."""
    top = mirrored(points[JAW], points[OUTER_EYE_CORNERS[0]], points[OUTER_EYE_CORNERS[1]])
    return convex_hull(np.concatenate([points, top]))


def face_regions(landmarks: np.ndarray, size: tuple[int, int], skin_shrink: float = SKIN_SHRINK,
                 background_scale: float = BACKGROUND_SCALE, margin: float = FEATURE_MARGIN
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks [t, 68, 2] (x, y pixels; NaN: no face) of frames of ``size`` (h, w) ->
    (skin [t, h, w], background [t, h, w]) bool masks (see the module notes)."""
    t = len(landmarks)
    skin = np.zeros((t, *size), dtype=bool)
    background = np.zeros((t, *size), dtype=bool)
    for index, points in enumerate(np.asarray(landmarks, dtype=np.float64)):
        if not np.isfinite(points).all():
            continue
        hull = convex_hull(points)
        skin[index] = convex_polygon_mask(scaled_polygon(hull, skin_shrink), size)
        for feature in (*EYES, *BROWS, LIPS):
            skin[index] &= ~box_mask(points[feature], size, margin)
        background[index] = ~convex_polygon_mask(scaled_polygon(head_polygon(points), background_scale), size)
    return skin, background


def region_flicker(levels: np.ndarray, masks: np.ndarray) -> float:
    """Mean absolute frame-to-frame change inside a region.

    levels [t, h, w, c] pixel values (any scale; the result is in the same units), masks [t, h, w]
    bool -> for each pair of consecutive frames i, i + 1 the mean of |levels[i + 1] - levels[i]|
    (averaged over channels) over the pixels inside the region in both frames, then the mean over
    the pairs (each pair weighs the same, however large the region is in it). Pairs without such a
    pixel are left out; NaN when none is left (or fewer than two frames).
    """
    levels = np.asarray(levels, dtype=np.float64)
    if len(levels) < 2:
        return float("nan")
    change = np.abs(np.diff(levels, axis=0)).mean(axis=-1)  # [t - 1, h, w]
    both = masks[:-1] & masks[1:]
    counts = both.sum(axis=(1, 2))
    if not counts.any():
        return float("nan")
    sums = (change * both).sum(axis=(1, 2))
    return float(np.mean(sums[counts > 0] / counts[counts > 0]))
