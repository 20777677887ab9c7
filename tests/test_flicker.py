"""Flicker metrics (issue 21, point 4) on hand-built videos with known answers: face regions of rendered
synthetic faces, a static video (flicker 0) and brightness jitter of a known amount."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from styletalker_core.data.synthetic import IDENTITY_DIM, render_faces, sample_identity
from styletalker_core.data.synthetic.landmarks import synthetic_landmarks
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces import FactorOracle
from styletalker_core.interfaces.metric import EvalItem
from styletalker_metrics.face_regions import box_mask, convex_hull, convex_polygon_mask, face_regions, region_flicker
from styletalker_metrics.flicker import MIN_TRUTH, Flicker, flicker_values
from styletalker_synthetic.flicker import SyntheticFlicker

SIZE = 64


def render(pose: np.ndarray, eye_open: np.ndarray | None = None, mouth_open: np.ndarray | None = None,
           identity_number: int = 3) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Synthetic frames (8-bit [t, 64, 64, 3]), their landmarks [t, 68, 2] and their factors, for poses [t, 3]."""
    t = len(pose)
    factors = {
        "identity": sample_identity(0, identity_number),
        "pose": np.asarray(pose, np.float32),
        "eye_open": np.ones(t, np.float32) if eye_open is None else np.asarray(eye_open, np.float32),
        "mouth_open": np.full(t, 0.2, np.float32) if mouth_open is None else np.asarray(mouth_open, np.float32),
        "mouth_width": np.full(t, 0.5, np.float32),
    }
    tensors = [torch.from_numpy(factors[name]) for name in ("identity", "pose", "eye_open", "mouth_open", "mouth_width")]
    images = (render_faces(*tensors, resolution=SIZE) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    return images, synthetic_landmarks(*tensors, resolution=SIZE).numpy(), factors


def as_frames(images: np.ndarray) -> torch.Tensor:
    """8-bit images [t, h, w, 3] -> frames [t, 3, h, w] in [-1, 1] (what metrics receive)."""
    return torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0


def test_convex_hull_and_polygon_mask_on_known_shapes() -> None:
    square = np.array([[2, 2], [6, 2], [6, 6], [2, 6]], dtype=float)
    points = np.concatenate([square, [[4, 4], [3, 5], [4, 2]]])  # inside and on an edge: not vertices
    hull = convex_hull(points)
    assert sorted(map(tuple, hull)) == sorted(map(tuple, square))
    mask = convex_polygon_mask(hull, (10, 10))
    assert mask.sum() == 25 and mask[2:7, 2:7].all()  # pixel centres 2..6 in both directions, edges included
    triangle = convex_hull(np.array([[0, 0], [8, 0], [0, 8]], dtype=float))
    assert convex_polygon_mask(triangle, (10, 10)).sum() == 45  # x + y <= 8: 9 + 8 + ... + 1
    assert box_mask(np.array([[4.0, 4.0], [6.0, 6.0]]), (10, 10), 0.5).sum() == 25  # grown by 1 on every side


def test_region_flicker_of_a_hand_computed_video() -> None:
    levels = np.zeros((4, 2, 2, 3))
    levels[1, 0, 0] = 6.0  # one pixel of four up by 6 in frame 1, back in frame 2
    masks = np.ones((4, 2, 2), bool)
    assert region_flicker(levels, masks) == pytest.approx((6 / 4 + 6 / 4 + 0) / 3)  # per pair, then over pairs
    masks[2, 1] = False  # half the region is gone in frame 2: pairs 1-2 and 2-3 see two pixels each
    assert region_flicker(levels, masks) == pytest.approx((6 / 4 + 6 / 2 + 0) / 3)
    masks[1, 0, 0] = False  # the pixel leaves the region in frame 1: neither pair counts it
    assert region_flicker(levels, masks) == 0.0
    masks[:] = False
    assert math.isnan(region_flicker(levels, masks))  # no pixel in any pair
    assert math.isnan(region_flicker(levels[:1], masks[:1]))  # one frame: no pair


def test_background_region_does_not_change_when_the_head_turns() -> None:
    """Pixels in the background region of two frames are the same in both, though the head turned and
    nodded: the region leaves out the head, its hair and ears."""
    images, landmarks, _ = render(np.array([[-15.0, -8.0, -6.0], [15.0, 8.0, 6.0]]))
    skin, background = face_regions(landmarks, (SIZE, SIZE))
    both = background[0] & background[1]
    assert both.sum() > 0.2 * SIZE * SIZE
    assert np.abs(images[0].astype(int) - images[1].astype(int))[both].max() == 0
    assert np.abs(images[0].astype(int) - images[1].astype(int)).max() > 100  # the head did move
    assert not (skin & background).any()


def test_skin_region_leaves_out_eyes_brows_and_mouth() -> None:
    """Closing the eyes and opening the mouth changes no pixel of the skin region (the same pose)."""
    pose = np.array([[5.0, 3.0, 2.0]] * 2)
    images, landmarks, _ = render(pose, eye_open=np.array([1.0, 0.0]), mouth_open=np.array([0.0, 1.0]))
    skin, _ = face_regions(landmarks, (SIZE, SIZE))
    both = skin[0] & skin[1]
    assert both.sum() > 0.08 * SIZE * SIZE
    changed = np.abs(images[0].astype(int) - images[1].astype(int)).max(-1) > 0
    assert changed.sum() > 30 and not (changed & both).any()


def test_a_static_video_has_no_flicker() -> None:
    images, landmarks, _ = render(np.zeros((1, 3)))
    video, points = np.repeat(images, 8, 0), np.repeat(landmarks, 8, 0)
    values = flicker_values(video, video, points, points)
    assert values["flicker_skin"] == values["flicker_background"] == 0.0
    assert values["flicker_skin_ratio"] == values["flicker_background_ratio"] == 0.0


def jitter_offsets(frames: int, seed: int = 0) -> np.ndarray:
    """Random whole-level brightness offsets, one per frame."""
    return np.random.default_rng(seed).integers(-6, 7, size=frames)


def test_skin_jitter_raises_skin_flicker_by_the_amount_injected() -> None:
    """A static face whose brightness jitters by b_i levels in frame i, in a disk holding its landmarks: the
    skin flicker is mean |b_(i+1) - b_i|, the background (which keeps clear of the face) keeps 0."""
    images, landmarks, _ = render(np.zeros((1, 3)))
    frames = 12
    video, points = np.repeat(images, frames, 0).astype(int), np.repeat(landmarks, frames, 0)
    offsets = jitter_offsets(frames)
    centre = landmarks[0].mean(0)  # a disk holding every landmark holds the face
    radius = np.linalg.norm(landmarks[0] - centre, axis=1).max()
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    disk = np.hypot(xs - centre[0], ys - centre[1]) <= radius
    jittered = video.copy()
    jittered[:, disk] += offsets[:, None, None]
    assert jittered.min() >= 0 and jittered.max() <= 255  # no clipping: the offsets arrive whole
    injected = float(np.mean(np.abs(np.diff(offsets))))
    values = flicker_values(jittered, video, points, points)
    assert values["flicker_skin"] == pytest.approx(injected)
    assert values["flicker_skin_truth"] == 0.0 and values["flicker_background"] == 0.0
    assert values["flicker_skin_ratio"] == pytest.approx(injected / MIN_TRUTH)


def test_jitter_on_a_moving_head_is_measured_against_the_truths_own_flicker() -> None:
    """Head motion gives the ground truth flicker of its own; jitter of the whole frame adds to it, within
    the triangle inequality: |d + e| lies between |e| - |d| and |e| + |d|."""
    t = np.arange(16)
    pose = np.stack([8 * np.sin(t / 3), 4 * np.cos(t / 4), 2 * np.sin(t / 5)], 1)
    images, landmarks, _ = render(pose)
    truth = images.astype(int) // 2 + 60  # mid-range levels: no clipping below
    offsets = jitter_offsets(len(t), seed=1)
    jittered = truth + offsets[:, None, None, None]
    injected = float(np.mean(np.abs(np.diff(offsets))))
    values = flicker_values(jittered, truth, landmarks, landmarks)
    moving = values["flicker_skin_truth"]
    assert moving > 0.05  # a turning head changes its skin's shading
    assert injected - moving <= values["flicker_skin"] <= injected + moving
    assert values["flicker_background"] == pytest.approx(injected)  # the background itself does not move
    assert values["flicker_skin_ratio"] == pytest.approx(values["flicker_skin"] / max(moving, MIN_TRUTH))
    same = flicker_values(truth, truth, landmarks, landmarks)
    assert same["flicker_skin"] == same["flicker_skin_truth"] == pytest.approx(moving)


class ScriptedOracle(FactorOracle):
    """Reads the factors of the nearest of some known frames: a perfect oracle for those frames."""

    resolution = SIZE

    def __init__(self, frames: torch.Tensor, factors: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.known = frames.reshape(len(frames), -1)
        self.table = {name: torch.as_tensor(np.asarray(factors[name], np.float32)) for name in ("eye_open", "mouth_open", "mouth_width")}
        pose = torch.as_tensor(factors["pose"])
        self.table.update(yaw=pose[:, 0], pitch=pose[:, 1], roll=pose[:, 2])
        self.identity = torch.as_tensor(factors["identity"]).float()
        self.factors = {name: 1 for name in self.table} | {"identity": IDENTITY_DIM}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        nearest = torch.cdist(images.reshape(len(images), -1), self.known).argmin(dim=1)
        return {**{name: values[nearest] for name, values in self.table.items()},
                "identity": self.identity.expand(len(images), -1)}


def test_synthetic_flicker_reads_regions_from_labels_and_the_oracle() -> None:
    t = np.arange(10)
    pose = np.stack([6 * np.sin(t / 2), 3 * np.cos(t / 3), np.zeros(10)], 1)
    images, _, factors = render(pose)
    frames = as_frames(images)
    offsets = jitter_offsets(10, seed=2)
    brighter = as_frames(np.clip(images.astype(int) + offsets[:, None, None, None] + 10, 0, 255))
    labels = {name: torch.as_tensor(value) for name, value in factors.items() if name != "identity"}
    labels["identity"] = torch.as_tensor(factors["identity"]).expand(10, -1)
    metric = SyntheticFlicker()
    metric.use_oracle(ScriptedOracle(frames, factors))
    same = metric.compute(EvalItem(frames=frames, audio=torch.zeros(1), reference_frames=frames, labels=labels))
    assert same["flicker_skin"] == pytest.approx(same["flicker_skin_truth"]) and same["flicker_skin_truth"] > 0
    assert same["flicker_background"] == same["flicker_background_truth"] == 0.0
    jittered = metric.compute(EvalItem(frames=brighter, audio=torch.zeros(1), reference_frames=frames, labels=labels))
    assert jittered["flicker_skin_ratio"] > 1.5 * same["flicker_skin_ratio"]
    injected = float(np.mean(np.abs(np.diff(offsets))))
    assert jittered["flicker_background"] == pytest.approx(injected, abs=0.05)  # a few pixels clip at 255
    without_labels = metric.compute(EvalItem(frames=brighter, audio=torch.zeros(1), reference_frames=frames))
    assert without_labels == pytest.approx(jittered)  # the oracle reads the truth's factors exactly here


def test_dlib_flicker_of_a_real_face_photo() -> None:
    """A static photo has no flicker; whole-frame jitter gives exactly the injected amount in both regions."""
    skimage_data = pytest.importorskip("skimage.data")
    face = skimage_data.astronaut()[20:276, 100:356][::2, ::2]  # 128 px, as in the metric contract
    frames = 6
    video = np.repeat(face[None].astype(int) // 2 + 60, frames, 0)
    offsets = jitter_offsets(frames, seed=3)
    item = EvalItem(frames=as_frames(video + offsets[:, None, None, None]), audio=torch.zeros(1),
                    reference_frames=as_frames(video))
    values = Flicker().compute(item)
    injected = float(np.mean(np.abs(np.diff(offsets))))
    assert values["flicker_missing_faces"] == 0
    assert values["flicker_skin"] == pytest.approx(injected) and values["flicker_background"] == pytest.approx(injected)
    assert values["flicker_skin_truth"] == values["flicker_background_truth"] == 0.0


def test_region_options_are_checked() -> None:
    with pytest.raises(StyleTalkerError, match="background_scale"):
        Flicker(background_scale=0.5)
    with pytest.raises(StyleTalkerError, match="synthetic_flicker"):
        SyntheticFlicker(min_truth=0)
