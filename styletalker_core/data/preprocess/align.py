"""FFHQ-style face alignment from 68 landmarks, temporal smoothing, and cropping.

The crop is the oriented square ("quad") the FFHQ dataset's alignment script derives from
the eyes and the mouth corners: centred a little below the eyes, rotated so the eyes are
level, its side the larger of 4 x the eye distance and 3.6 x the eye-to-mouth distance. In
the crop the eyes land near (0.377, 0.469) and (0.623, 0.469) of the side, the positions of
the widely used 512 px FFHQ five-point template (:data:`FFHQ_EYES`).

Landmark indices follow the 68-point iBUG scheme: 36-41 one eye, 42-47 the other,
48 and 54 the mouth corners. Coordinates are (x, y) pixels.
"""

from __future__ import annotations

import math

import numpy as np

# Eye centres of the 512 px FFHQ five-point template, as fractions of the crop side.
FFHQ_EYES = np.array([[192.98138 / 512, 239.94708 / 512], [318.90277 / 512, 240.1936 / 512]])


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """landmarks [68, 2] -> quad [4, 2]: corners top-left, bottom-left, bottom-right, top-right."""
    eye_left = landmarks[36:42].mean(axis=0)
    eye_right = landmarks[42:48].mean(axis=0)
    eye_mid = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_mid = (landmarks[48] + landmarks[54]) / 2
    eye_to_mouth = mouth_mid - eye_mid
    # x: half the side, along the eye line corrected by the perpendicular of eye-to-mouth
    x = eye_to_eye - np.flipud(eye_to_mouth) * np.array([-1.0, 1.0])
    x = x / np.hypot(*x)
    x = x * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * np.array([-1.0, 1.0])
    centre = eye_mid + eye_to_mouth * 0.1
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def quad_to_crop(quad: np.ndarray, size: int) -> np.ndarray:
    """Affine map [2, 3] from source pixel coordinates to crop pixel coordinates (crop side ``size``)."""
    origin = quad[0]
    across = (quad[3] - quad[0]) / size  # source step per crop pixel along x
    down = (quad[1] - quad[0]) / size  # source step per crop pixel along y
    forward = np.stack([across, down], axis=1)  # crop (u, v) -> source offset
    inverse = np.linalg.inv(forward)
    return np.concatenate([inverse, (-inverse @ origin)[:, None]], axis=1)


def map_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """points [..., 2] through affine [2, 3]."""
    return points @ affine[:, :2].T + affine[:, 2]


def smooth_landmarks(landmarks: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over time: landmarks [t, 68, 2] -> [t, 68, 2]; ``sigma`` in frames (0: none).

    The ends are handled by renormalising the kernel over the frames that exist, so a still
    face stays exactly where it is.
    """
    if sigma <= 0 or len(landmarks) < 2:
        return landmarks.astype(np.float64)
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    count = len(landmarks)
    flat = landmarks.reshape(count, -1).astype(np.float64)
    total = np.zeros_like(flat)
    weight = np.zeros((count, 1))
    for offset, value in zip(offsets.tolist(), kernel.tolist(), strict=True):
        low, high = max(0, -offset), min(count, count - offset)
        if high <= low:  # the kernel is wider than the track
            continue
        total[low:high] += value * flat[low + offset : high + offset]
        weight[low:high] += value
    return (total / weight).reshape(landmarks.shape)


def crop_face(frame: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Sample the oriented square ``quad`` of frame uint8 [h, w, 3] into a uint8 [size, size, 3] crop.

    As in the FFHQ script, a frame much larger than the crop is first shrunk by an integer
    factor (box filter) so the bilinear resampling does not alias, and parts of the quad
    outside the frame are filled by mirroring the frame at its border.
    """
    from PIL import Image

    quad = quad.astype(np.float64)
    side = np.hypot(*(quad[3] - quad[0]))
    image = Image.fromarray(frame)
    shrink = int(math.floor(side / size * 0.5))
    if shrink > 1:
        image = image.reduce(shrink)
        quad = quad / shrink
    array = np.asarray(image)
    height, width = array.shape[:2]
    margin = 2  # pixels beyond the quad that bilinear sampling reads
    pads = {
        "left": max(int(math.ceil(-quad[:, 0].min())) + margin, 0),
        "top": max(int(math.ceil(-quad[:, 1].min())) + margin, 0),
        "right": max(int(math.ceil(quad[:, 0].max() - width)) + margin, 0),
        "bottom": max(int(math.ceil(quad[:, 1].max() - height)) + margin, 0),
    }
    while any(pads.values()):
        # mirror padding adds at most the image size minus one per pass: repeat until covered
        top, bottom = (min(pads[k], array.shape[0] - 1) for k in ("top", "bottom"))
        left, right = (min(pads[k], array.shape[1] - 1) for k in ("left", "right"))
        array = np.pad(array, ((top, bottom), (left, right), (0, 0)), mode="reflect")
        quad = quad + np.array([left, top])
        pads = {"left": pads["left"] - left, "top": pads["top"] - top, "right": pads["right"] - right, "bottom": pads["bottom"] - bottom}
    image = Image.fromarray(array)
    data = tuple(float(v) for v in quad.reshape(-1))
    return np.asarray(image.transform((size, size), Image.Transform.QUAD, data, Image.Resampling.BILINEAR))
