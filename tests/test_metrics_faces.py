"""Face metrics on real photos (skimage's astronaut, matplotlib's Grace Hopper) with known edits.

Edits are smooth local warps of the photo: lids pulled together (blinks), the mouth region
moved (LMD), the whole image rotated (pose). Frames are 128 px, where dlib finds the face.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.cbook
import matplotlib.image
import numpy as np
import pytest
import skimage.data
import torch
from scipy import ndimage
from skimage.transform import rotate

from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.media import read_video_frames, write_video
from styletalker_metrics.blinks import BlinkRate
from styletalker_metrics.identity import IdentitySimilarity
from styletalker_metrics.landmarks import image_landmarks, track_landmarks
from styletalker_metrics.lmd import LandmarkDistance
from styletalker_metrics.pose_diversity import PoseDiversity


def tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """uint8 [128, 128, 3]: the astronaut's face and shoulders."""
    return np.ascontiguousarray(skimage.data.astronaut()[20:276, 100:356][::2, ::2])


@pytest.fixture(scope="module")
def landmarks(face: np.ndarray) -> np.ndarray:
    points = image_landmarks(face[None])[0]
    assert np.isfinite(points).all()
    return points


def warp_rows(image: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Output pixel (y, x) shows input pixel (y + offset[y, x], x), bilinear."""
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float64)
    channels = [ndimage.map_coordinates(image[..., c], [yy + offset, xx], order=1, mode="nearest") for c in range(3)]
    return np.stack(channels, -1).astype(np.uint8)


def close_eyes(image: np.ndarray, points: np.ndarray, amount: float) -> np.ndarray:
    """Pull the lids toward each eye's centre line: pixels near it show the picture farther out."""
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float64)
    offset = np.zeros_like(yy)
    scale = image.shape[0] / 256
    for eye in (slice(36, 42), slice(42, 48)):
        cx, cy = points[eye].mean(0)
        half_width = np.ptp(points[eye][:, 0]) / 2 + 4 * scale
        across = np.exp(-(np.maximum(np.abs(xx - cx) - 0.6 * half_width, 0) ** 2) / (0.5 * half_width) ** 2)
        offset += 3.0 * amount * (yy - cy) * across * np.exp(-(((yy - cy) / (12 * scale)) ** 2))
    return warp_rows(image, offset)


def move_mouth(image: np.ndarray, points: np.ndarray, pixels: float) -> np.ndarray:
    """Move the mouth region down by ``pixels`` (smoothly blended into the face around it)."""
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float64)
    cx, cy = points[48:68].mean(0)
    radius = np.ptp(points[48:68][:, 0])
    weight = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / radius**2)
    return warp_rows(image, -pixels * weight)


def test_lmd_is_zero_for_identical_videos_and_grows_with_a_mouth_shift(face: np.ndarray, landmarks: np.ndarray) -> None:
    reference = tensor([face] * 3)
    metric = LandmarkDistance()
    assert metric.compute(EvalItem(frames=reference.clone(), audio=torch.zeros(0), reference_frames=reference)) == {
        "lmd": 0.0, "lmd_missing_faces": 0.0,
    }
    values = []
    for shift in (1.5, 3.0, 5.0):
        moved = tensor([move_mouth(face, landmarks, shift)] * 3)
        values.append(metric.compute(EvalItem(frames=moved, audio=torch.zeros(0), reference_frames=reference))["lmd"])
    assert values[0] < values[1] < values[2], values
    # "image" normalisation: pixels at 256 px wide, here twice the 128 px pixels moved (points near the
    # mouth centre move the full shift, the corners less)
    assert 0.4 * 2 * 5.0 < values[2] < 1.2 * 2 * 5.0
    moved = tensor([move_mouth(face, landmarks, 5.0)] * 3)
    pixels = LandmarkDistance(normalize="none").compute(EvalItem(frames=moved, audio=torch.zeros(0), reference_frames=reference))["lmd"]
    assert pixels == pytest.approx(values[2] / 2)
    interocular = np.linalg.norm(landmarks[36] - landmarks[45])
    relative = LandmarkDistance(normalize="interocular").compute(EvalItem(frames=moved, audio=torch.zeros(0), reference_frames=reference))
    assert relative["lmd"] == pytest.approx(pixels / interocular, rel=0.05)


def test_lmd_counts_frames_without_a_face(face: np.ndarray) -> None:
    frames = tensor([face, np.full_like(face, 128), face])
    values = LandmarkDistance().compute(EvalItem(frames=frames, audio=torch.zeros(0), reference_frames=tensor([face] * 3)))
    assert values == {"lmd": 0.0, "lmd_missing_faces": 1.0}
    blank = tensor([np.full_like(face, 128)] * 2)
    values = LandmarkDistance().compute(EvalItem(frames=blank, audio=torch.zeros(0), reference_frames=blank))
    assert math.isnan(values["lmd"]) and values["lmd_missing_faces"] == 2.0


def test_csim_is_high_for_the_same_face_and_lower_for_another(face: np.ndarray) -> None:
    hopper = matplotlib.image.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    frames = tensor([face] * 2)
    metric = IdentitySimilarity()
    same = metric.compute(EvalItem(frames=frames, audio=torch.zeros(0), reference_image=tensor([skimage.data.astronaut()[0:300, 80:380].copy()])[0]))
    other = metric.compute(EvalItem(frames=frames, audio=torch.zeros(0), reference_image=tensor([np.asarray(hopper)[::2, ::2].copy()])[0]))
    assert same["csim"] > 0.97 and same["csim_distance"] < 0.4  # dlib: same person below 0.6
    assert other["csim"] < same["csim"] - 0.05 and other["csim_distance"] > 0.6
    assert same["csim_missing_faces"] == 0.0
    identical = metric.compute(EvalItem(frames=frames, audio=torch.zeros(0), reference_image=frames[0]))
    assert identical["csim"] == pytest.approx(1.0) and identical["csim_distance"] == pytest.approx(0.0, abs=1e-6)
    no_face = metric.compute(EvalItem(frames=frames, audio=torch.zeros(0), reference_image=torch.zeros(3, 128, 128)))
    assert math.isnan(no_face["csim"])


def test_blink_rate_counts_drawn_blinks(face: np.ndarray, landmarks: np.ndarray) -> None:
    closed = close_eyes(face, landmarks, 0.5)
    ear_open, ear_closed = (float(np.mean([
        (np.linalg.norm(p[37] - p[41]) + np.linalg.norm(p[38] - p[40])) / (2 * np.linalg.norm(p[36] - p[39])),
        (np.linalg.norm(p[43] - p[47]) + np.linalg.norm(p[44] - p[46])) / (2 * np.linalg.norm(p[42] - p[45])),
    ])) for p in image_landmarks(np.stack([face, closed])))
    assert ear_closed < 0.6 * ear_open  # the edit does close the eyes for dlib
    frames = [face] * 50
    for start, length in ((10, 3), (30, 2)):
        frames[start : start + length] = [closed] * length
    item = EvalItem(frames=tensor(frames), audio=torch.zeros(0))
    metric = BlinkRate()
    assert metric.blinks(item) == [(10, 3), (30, 2)]
    assert metric.compute(item) == {"blink_rate": pytest.approx(2 / (50 / 25 / 60)), "blink_missing_faces": 0.0}
    assert BlinkRate().compute(EvalItem(frames=tensor([face] * 50), audio=torch.zeros(0)))["blink_rate"] == 0.0


def test_landmark_jitter_of_a_turning_face_is_not_a_blink(face: np.ndarray, tmp_path: Path) -> None:
    turning = np.stack([rotate(face, 4 * np.sin(i / 5), mode="edge", preserve_range=True) + 8 for i in range(50)])
    write_video(tmp_path / "turning.mp4", np.clip(turning, 0, 255).astype(np.uint8))  # H.264 adds the jitter
    item = EvalItem(frames=tensor(list(read_video_frames(tmp_path / "turning.mp4"))), audio=torch.zeros(0))
    # With threshold 0.7 and min_frames 1 this video read as one blink (a one-frame EAR dip to 0.69 of open).
    assert BlinkRate().compute(item) == {"blink_rate": 0.0, "blink_missing_faces": 0.0}


def test_pose_diversity_is_zero_for_a_still_video_and_tracks_rotation(face: np.ndarray) -> None:
    still = PoseDiversity().compute(EvalItem(frames=tensor([face] * 4), audio=torch.zeros(0)))
    assert still["pose_diversity"] == pytest.approx(0.0, abs=1e-6) and still["pose_missing_faces"] == 0.0
    angles = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    turned = [(rotate(face, angle, mode="edge", preserve_range=True)).astype(np.uint8) for angle in angles]
    metric = PoseDiversity()
    item = EvalItem(frames=tensor(turned), audio=torch.zeros(0))
    roll = metric.angles(item)[:, 2]
    # skimage rotates counter-clockwise on screen; roll is positive clockwise
    np.testing.assert_allclose(roll - roll[2], -angles, atol=1.5)
    values = metric.compute(item)
    assert values["pose_std_roll"] == pytest.approx(np.std(angles), abs=1.0)
    assert values["pose_diversity"] > 2.0 and values["pose_std_yaw"] < 2.0


def test_landmark_tracks_are_cached_by_content(face: np.ndarray) -> None:
    frames = tensor([face] * 2)
    assert track_landmarks(frames) is track_landmarks(frames.clone())
    assert track_landmarks(frames) is not track_landmarks(tensor([face[:, ::-1].copy()] * 2))
