"""Turning a reference photo or a motion-source video into aligned face crops the model reads.

With alignment, the face is found with dlib and cropped FFHQ-style (the same alignment the
training data went through, :mod:`styletalker_core.data.preprocess`). Without it, the input
is taken as an aligned crop already: centre-cropped to a square and resized.

A motion video is read twice so that it never sits in memory at its own resolution: the
first pass finds the landmarks of every frame, which are smoothed over time; the second
crops each frame. Frames where no face is found borrow the landmarks of the nearest frame
that has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.media import MediaError, iter_video_frames, read_image

if TYPE_CHECKING:
    from styletalker_core.data.preprocess import FaceAnalyzer

SMALL_IMAGE = 512  # pixels: smaller images are also searched enlarged to this size
SMOOTH_SIGMA = 1.0  # frames; landmark smoothing of motion videos (its renormalised ends lag a moving face)
MIN_MOTION_FRAMES = 2
MOTION_HINT = f"a motion source must be a video with at least {MIN_MOTION_FRAMES} frames (head motion and blinks are copied from it)"
NO_FACE_HINT = "give one with a clearly visible frontal face, or pass --no-align if it is already an aligned face crop"


class InputError(StyleTalkerError):
    """An input file of a sampling job that cannot be used; the message names it and what to do."""


def media_error(role: str, error: MediaError) -> InputError:
    """A media error of the ``role`` input (reference, audio, motion) as one line with a hint."""
    message = str(error)
    if error.reason == "missing":
        message += "; check the path"
    return InputError(f"{role}: {message}")


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [h, w, 3] -> [size, size, 3]: the central square, resized (Lanczos, antialiased)."""
    from PIL import Image

    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.ascontiguousarray(image[top : top + side, left : left + side])
    if side == size:
        return square
    return np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [..., h, w, 3] -> float [..., 3, h, w] in [-1, 1]."""
    return torch.from_numpy(np.require(images, requirements=["C", "W"])).movedim(-1, -3).float().div(127.5).sub(1.0)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float [..., 3, h, w] in [-1, 1] -> uint8 [..., h, w, 3] (rounded, clamped)."""
    return frames.movedim(-3, -1).add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


class FaceAligner:
    """Finds and aligns faces; dlib's models are loaded on first use (a second or so)."""

    def __init__(self) -> None:
        self._analyzer: FaceAnalyzer | None = None

    @property
    def analyzer(self) -> FaceAnalyzer:
        if self._analyzer is None:
            from styletalker_core.data.preprocess import FaceAnalyzer

            self._analyzer = FaceAnalyzer()
        return self._analyzer

    def landmarks(self, frame: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
        """68 landmarks [68, 2] of a face in ``frame`` uint8 [h, w, 3], or None when there is none.

        The face the detector is surest of (false detections in clothing or backgrounds score
        low), or with ``near`` (landmarks [68, 2] of the previous frame) the face whose centre
        is closest to those, so a video follows one person.
        """
        faces = self.analyzer.faces(frame)
        if not faces and max(frame.shape[:2]) < SMALL_IMAGE:
            faces = self._faces_enlarged(frame)
        if not faces:
            return None
        if near is None:
            return max(faces, key=lambda face: face.score).landmarks
        centre = near.mean(axis=0)
        return min(faces, key=lambda face: float(np.linalg.norm(face.landmarks.mean(axis=0) - centre))).landmarks

    def _faces_enlarged(self, frame: np.ndarray) -> list:
        """Faces of a small image found on a copy enlarged to SMALL_IMAGE pixels (dlib's detector
        misses faces under about 80 pixels); landmarks mapped back to the image's pixels."""
        from PIL import Image

        from styletalker_core.data.preprocess.faces import Face

        height, width = frame.shape[:2]
        scale = SMALL_IMAGE / max(height, width)
        size = (round(width * scale), round(height * scale))
        large = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC))
        return [Face(face.box, face.score, face.landmarks / scale) for face in self.analyzer.faces(large)]

    def crop(self, frame: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
        """FFHQ-aligned crop uint8 [size, size, 3] of the face with ``landmarks`` [68, 2]."""
        from styletalker_core.data.preprocess import crop_face, ffhq_quad

        return crop_face(frame, ffhq_quad(landmarks), size)


def prepare_reference(path: str | Path, size: int, align: bool, aligner: FaceAligner) -> np.ndarray:
    """The reference image at ``path`` as an aligned face uint8 [size, size, 3]."""
    return prepare_reference_picture(path, size, align, aligner)[0]


def prepare_reference_picture(path: str | Path, size: int, align: bool,
                              aligner: FaceAligner) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference image at ``path`` -> (aligned face uint8 [size, size, 3], the image uint8
    [h, w, 3], the affine [2, 3] from image to crop coordinates, for paste-back)."""
    from styletalker_core.sample.paste_back import crop_affine, square_affine

    try:
        image = read_image(path)
    except MediaError as error:
        raise media_error("reference", error) from None
    if not align:
        height, width = image.shape[:2]
        return resize_square(image, size), image, square_affine(height, width, size)
    points = aligner.landmarks(image)
    if points is None:
        raise InputError(f"reference: {path}: no face found; {NO_FACE_HINT}")
    return aligner.crop(image, points, size), image, crop_affine(points, size)


def is_video(path: str | Path) -> bool:
    """True when ``path`` is named as a video (a reference given as a video)."""
    from styletalker_core.media import VIDEO_SUFFIXES

    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def track_landmarks(path: str | Path, aligner: FaceAligner, fps: float, role: str = "motion") -> np.ndarray:
    """Landmarks [t, 68, 2] of the face in every frame of the video at ``path`` read at ``fps``,
    following one person, gaps filled from the nearest frame, smoothed over time."""
    from styletalker_core.data.preprocess import smooth_landmarks

    found: list[np.ndarray | None] = []
    previous = None
    try:
        for frame in iter_video_frames(path, fps=fps):
            found.append(aligner.landmarks(frame, near=previous))
            previous = found[-1] if found[-1] is not None else previous
    except MediaError as error:
        raise media_error(role, error) from None
    if found and all(points is None for points in found):
        raise InputError(f"{role}: {path}: no face found in any of its {len(found)} frames; {NO_FACE_HINT}")
    return smooth_landmarks(_fill_gaps(found), SMOOTH_SIGMA) if found else np.zeros((0, 68, 2))


def prepare_reference_video(path: str | Path, size: int, align: bool, aligner: FaceAligner, fps: float,
                            frame_index: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """A reference video: (aligned face of frame ``frame_index`` uint8 [size, size, 3], the landmark
    track [t, 68, 2] of every frame (None without alignment), number of frames t)."""
    track = track_landmarks(path, aligner, fps, role="reference") if align else None
    chosen, count = None, 0
    try:
        for index, frame in enumerate(iter_video_frames(path, fps=fps)):
            count = index + 1
            if index == frame_index:
                chosen = frame
                if track is not None:
                    break
    except MediaError as error:
        raise media_error("reference", error) from None
    if track is not None:
        count = len(track)
    if chosen is None:
        raise InputError(f"reference: {path}: has {count} frames at {fps:g} fps; --reference-frame {frame_index} "
                         f"must be below {count}")
    face = aligner.crop(chosen, track[frame_index], size) if track is not None else resize_square(chosen, size)
    return face, track, count


def _fill_gaps(found: list[np.ndarray | None]) -> np.ndarray:
    """Per-frame landmarks with None replaced by the nearest frame's -> [t, 68, 2]."""
    present = {index: points for index, points in enumerate(found) if points is not None}
    known = np.array(list(present))
    nearest = known[np.abs(np.arange(len(found))[:, None] - known[None, :]).argmin(axis=1)]
    return np.stack([present[int(index)] for index in nearest])


def prepare_motion_frames(path: str | Path, size: int, align: bool, aligner: FaceAligner, fps: float,
                          track: np.ndarray | None = None) -> np.ndarray:
    """Frames of the motion video at ``path``, read at ``fps``, as aligned faces uint8 [t, size, size, 3]
    (``track``: its landmarks from :func:`track_landmarks` when already found)."""
    try:
        if not align:
            frames = [resize_square(frame, size) for frame in iter_video_frames(path, fps=fps)]
        else:
            if track is None:
                track = track_landmarks(path, aligner, fps)
            frames = []
            for index, frame in enumerate(iter_video_frames(path, fps=fps)):
                if index >= len(track):
                    break
                frames.append(aligner.crop(frame, track[index], size))
    except MediaError as error:
        raise media_error("motion", error) from None
    if len(frames) < MIN_MOTION_FRAMES:
        count = f"only {len(frames)} frame" if frames else "no frames"
        raise InputError(f"motion: {path}: has {count}; {MOTION_HINT}")
    return np.stack(frames)


def check_motion_name(path: str | Path) -> None:
    """Refuse a motion source that is named as a still image, before anything is read."""
    from styletalker_core.media import IMAGE_SUFFIXES

    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"motion: {path}: is a still image; {MOTION_HINT}")
