"""68-point landmarks of synthetic faces: they follow pose, blinks and the mouth, and sit on the painted features."""

from __future__ import annotations

import numpy as np
import torch

from styletalker_core.data.synthetic import SynthConfig, make_clip, render_faces, sample_identity
from styletalker_core.data.synthetic.landmarks import synthetic_landmarks
from styletalker_core.data.synthetic.renderer import rotation_matrices

RESOLUTION = 128
IDENTITY = torch.from_numpy(sample_identity(0, 3)).float()


def landmarks_and_image(pose=(0.0, 0.0, 0.0), eye=1.0, mouth=0.0, width=0.5):
    args = (IDENTITY, torch.tensor([pose]), torch.tensor([eye]), torch.tensor([mouth]), torch.tensor([width]))
    return synthetic_landmarks(*args, resolution=RESOLUTION)[0], render_faces(*args, resolution=RESOLUTION)[0]


def colour_at(image: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    x, y = (int(round(float(v))) for v in point)
    return image[:, y, x]


def test_frontal_landmarks_are_mirror_symmetric_in_ibug_order():
    points, _ = landmarks_and_image()
    assert points.shape == (68, 2)
    centre = (RESOLUTION - 1) / 2
    mirror = {**{i: 16 - i for i in range(17)}, **{17 + i: 26 - i for i in range(10)}, 36: 45, 37: 44, 38: 43, 39: 42,
              40: 47, 41: 46, 48: 54, 49: 53, 50: 52, 55: 59, 56: 58, 60: 64, 61: 63, 65: 67}
    for left, right in mirror.items():
        assert abs((points[left, 0] - centre) + (points[right, 0] - centre)) < 1e-3, (left, right)
        assert abs(points[left, 1] - points[right, 1]) < 0.3, (left, right)  # brows tilt slightly by design
    assert points[36, 0] < points[39, 0] < points[42, 0] < points[45, 0]  # image-left eye first
    assert points[8, 1] > points[57, 1] > points[33, 1] > points[27, 1] > points[19, 1]  # chin, lip, nose, brow


def test_mouth_points_open_with_the_mouth_and_lie_on_the_painted_mouth():
    closed, _ = landmarks_and_image(mouth=0.0)
    open_points, image = landmarks_and_image(mouth=1.0)
    gap = lambda p: float(p[66, 1] - p[62, 1])  # noqa: E731  inner lower minus inner upper lip
    assert gap(closed) < 2 and gap(open_points) > 8
    inside = colour_at(image, open_points[60:68].mean(0))  # the dark inner mouth between teeth and tongue
    skin = colour_at(image, (open_points[48] + open_points[3]) / 2)
    assert inside.sum() < 0.6 * skin.sum() and inside[0] > inside[1]


def test_eyelids_close_with_blinks_and_the_open_eye_shows_the_iris():
    open_points, image = landmarks_and_image(eye=1.0)
    closed, _ = landmarks_and_image(eye=0.0)
    height = lambda p: float(p[40:42, 1].mean() - p[37:39, 1].mean())  # noqa: E731
    assert height(open_points) > 3 and abs(height(closed)) < 0.2
    pupil = colour_at(image, open_points[36:42].mean(0))
    assert pupil.sum() < 1.0  # the pupil and iris are dark


def test_landmarks_follow_pose_like_the_renderer():
    frontal, _ = landmarks_and_image()
    turned, _ = landmarks_and_image(pose=(20.0, 0.0, 0.0))
    raised, _ = landmarks_and_image(pose=(0.0, 15.0, 0.0))
    rolled, _ = landmarks_and_image(pose=(0.0, 0.0, 20.0))
    assert turned[30, 0] > frontal[30, 0] + 3  # positive yaw turns the face towards image right
    assert raised[30, 1] < frontal[30, 1] - 3  # positive pitch lifts the face
    eye_line = rolled[45] - rolled[36]
    assert abs(np.degrees(np.arctan2(-float(eye_line[1]), float(eye_line[0]))) - 20.0) < 1.0  # counter-clockwise
    assert torch.allclose(rotation_matrices(torch.zeros(1, 3))[0], torch.eye(3))


def test_synthetic_clips_carry_landmarks_for_every_frame():
    clip = make_clip(SynthConfig(clips=2, seed=4, seconds=(1.0, 1.2)), 0)
    assert clip.landmarks is not None and clip.landmarks.shape == (len(clip.frames), 68, 2)
    assert clip.landmarks.dtype == np.float32
    assert np.all((clip.landmarks > 0) & (clip.landmarks < clip.frames.shape[1]))
