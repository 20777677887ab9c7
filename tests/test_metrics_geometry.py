"""Landmark geometry of the face metrics: head pose by PnP, eye aspect ratio, blinks, mouth distance."""

from __future__ import annotations

import numpy as np
import pytest

from styletalker_metrics.face_geometry import closed_runs, detect_blinks, eye_aspect_ratio, interocular_distance, mouth_distance
from styletalker_metrics.head_pose import (
    TEMPLATE,
    TEMPLATE_INDICES,
    euler_angles,
    head_pose,
    project,
    rotation_from_euler,
    rotation_matrices,
    rotation_vectors,
    solve_pnp,
)


def test_rotation_conversions_round_trip() -> None:
    angles = np.random.default_rng(0).uniform(-80, 80, (100, 3))
    rotations = rotation_from_euler(angles)
    np.testing.assert_allclose(euler_angles(rotations), angles, atol=1e-9)
    np.testing.assert_allclose(rotation_matrices(rotation_vectors(rotations)), rotations, atol=1e-9)
    near_pi = rotation_matrices(np.array([[0.0, np.pi - 1e-5, 0.0], [0.3, 0.0, 0.0]]))
    np.testing.assert_allclose(rotation_matrices(rotation_vectors(near_pi)), near_pi, atol=1e-6)


def test_pnp_recovers_a_known_pose_exactly_and_under_pixel_noise() -> None:
    rng = np.random.default_rng(1)
    angles = rng.uniform(-35, 35, (40, 3))
    translation = np.stack([rng.uniform(-30, 30, 40), rng.uniform(-30, 30, 40), rng.uniform(400, 800, 40)], -1)
    pixels = project(TEMPLATE, rotation_vectors(rotation_from_euler(angles)), translation, 256.0, np.array([128.0, 128.0]))
    rotations, found_translation, rms = solve_pnp(pixels, (256, 256))
    np.testing.assert_allclose(euler_angles(rotations), angles, atol=1e-6)
    np.testing.assert_allclose(found_translation, translation, atol=1e-4)
    assert rms.max() < 1e-6
    noisy = pixels + rng.normal(0, 0.25, pixels.shape)
    rotations, _, rms = solve_pnp(noisy, (256, 256))
    assert np.abs(euler_angles(rotations) - angles).mean() < 1.0
    assert rms.mean() == pytest.approx(0.25, abs=0.1)


def test_head_pose_passes_missing_frames_through() -> None:
    pixels = project(TEMPLATE, np.zeros((3, 3)), np.array([[0, 0, 500.0]] * 3), 128.0, np.array([64.0, 64.0]))
    landmarks = np.full((3, 68, 2), np.nan)
    landmarks[:, TEMPLATE_INDICES] = pixels
    landmarks[1] = np.nan
    angles = head_pose(landmarks, (128, 128))
    assert np.isnan(angles[1]).all()
    np.testing.assert_allclose(angles[[0, 2]], 0.0, atol=1e-6)


def eye_landmarks(openness: np.ndarray) -> np.ndarray:
    """[t] eye openness -> [t, 68, 2] landmarks with both eyes 30 px wide and lids openness * 10 px apart."""
    landmarks = np.zeros((len(openness), 68, 2))
    for first, x0 in ((36, 100.0), (42, 160.0)):
        xs = x0 + np.array([0.0, 10.0, 20.0, 30.0, 20.0, 10.0])
        lids = np.array([0.0, -1.0, -1.0, 0.0, 1.0, 1.0])
        landmarks[:, first : first + 6, 0] = xs
        landmarks[:, first : first + 6, 1] = 100.0 + lids[None] * 5.0 * openness[:, None]
    return landmarks


def test_eye_aspect_ratio_follows_its_definition() -> None:
    ear = eye_aspect_ratio(eye_landmarks(np.array([1.0, 0.5, 0.0])))
    np.testing.assert_allclose(ear, [20 / 60, 10 / 60, 0.0])  # (10 + 10) / (2 * 30) when fully open


def test_blinks_are_found_at_their_frames() -> None:
    openness = np.ones(125)
    for start, length in ((10, 3), (50, 2), (90, 4)):
        openness[start : start + length] = 0.1
    openness[70] = np.nan  # a frame without a face is not a blink
    landmarks = eye_landmarks(np.nan_to_num(openness, nan=1.0))
    landmarks[70] = np.nan
    ear = eye_aspect_ratio(landmarks)
    assert detect_blinks(ear, 0.7, True, 1, 25) == [(10, 3), (50, 2), (90, 4)]
    assert detect_blinks(ear, 0.2, False, 1, 25) == [(10, 3), (50, 2), (90, 4)]
    assert detect_blinks(ear, 0.7, True, 3, 25) == [(10, 3), (90, 4)]
    assert detect_blinks(ear, 0.7, True, 1, 3) == [(10, 3), (50, 2)]
    assert detect_blinks(np.full(5, np.nan), 0.7, True, 1, 25) == []


def test_closed_runs_include_a_run_at_the_end() -> None:
    assert closed_runs(np.array([0, 1, 1, 0, 1], dtype=bool), 1, 0) == [(1, 2), (4, 1)]


def test_mouth_distance_and_centering() -> None:
    reference = np.random.default_rng(2).uniform(0, 100, (4, 68, 2))
    assert np.all(mouth_distance(reference, reference, center=False) == 0)
    moved = reference.copy()
    moved[:, 48:68] += np.array([3.0, 4.0])  # the whole mouth moves by 5 px
    np.testing.assert_allclose(mouth_distance(moved, reference, center=False), 5.0)
    np.testing.assert_allclose(mouth_distance(moved, reference, center=True), 0.0, atol=1e-12)
    np.testing.assert_allclose(interocular_distance(reference), np.linalg.norm(reference[:, 36] - reference[:, 45], axis=-1))
