"""Face landmarks and face descriptors of video frames, through the preprocessing's dlib face analyser.

Landmark tracks are cached by frame content (a digest of the uint8 pixels), so the metrics
that read landmarks of the same video (LMD, blink rate, pose diversity, CSIM) detect faces
once. The cache holds the last :data:`CACHE_SIZE` videos' landmarks (a few kB each). Below it,
each frame's largest face is cached by the frame's content too (:func:`largest_face`, the last
:data:`FRAME_CACHE_SIZE` frames, about 1 kB each): dlib's detector is the slow part (0.02-0.2 s
a frame), and videos that share frames (the same video scored with other settings or another
metric, a video with a few frames changed, still frames) detect each distinct frame once.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from typing import Any

import attrs
import numpy as np
import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_metrics.pairing import to_uint8_images

DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
CACHE_SIZE = 16
FRAME_CACHE_SIZE = 4096


@attrs.frozen
class LandmarkTrack:
    """68-point landmarks of every frame of a video: points [t, 68, 2] (x, y pixels), NaN where no face."""

    points: np.ndarray
    image_size: tuple[int, int]  # (height, width) of the frames

    @property
    def found(self) -> np.ndarray:
        """bool [t]: a face was detected in the frame."""
        return np.isfinite(self.points).all(axis=(1, 2))

    @property
    def missing(self) -> int:
        """Frames without a detected face."""
        return int(len(self.points) - self.found.sum())


@functools.lru_cache(maxsize=1)
def face_analyzer() -> Any:
    """The shared dlib face detector and 68-point landmark predictor (loaded on first use)."""
    from styletalker_core.data.preprocess.faces import FaceAnalyzer

    return FaceAnalyzer()


@functools.lru_cache(maxsize=1)
def descriptor_model() -> Any:
    """dlib's ResNet face descriptor (128-d; same person when distance < 0.6), loaded on first use."""
    import dlib

    from styletalker_core.data.preprocess.faces import models_folder

    path = models_folder() / DESCRIPTOR_MODEL
    if not path.is_file():
        raise StyleTalkerError(f"{path}: missing; reinstall the face-recognition-models package, which ships it")
    return dlib.face_recognition_model_v1(str(path))


_TRACKS: OrderedDict[str, LandmarkTrack] = OrderedDict()
_FACES: OrderedDict[str, Any] = OrderedDict()


def largest_face(image: np.ndarray) -> Any:
    """The largest face dlib finds in a uint8 RGB image [h, w, 3] (a preprocessing ``Face``: box,
    score, landmarks [68, 2]), or None; cached by the image's content (module notes)."""
    image = np.ascontiguousarray(image)
    key = hashlib.blake2b(image.data, digest_size=16).hexdigest() + repr(image.shape)
    if key in _FACES:
        _FACES.move_to_end(key)
        return _FACES[key]
    faces = face_analyzer().faces(image)
    face = faces[0] if faces else None
    _FACES[key] = face
    while len(_FACES) > FRAME_CACHE_SIZE:
        _FACES.popitem(last=False)
    return face


def image_landmarks(images: np.ndarray) -> np.ndarray:
    """uint8 RGB images [t, h, w, 3] -> landmarks [t, 68, 2] of the largest face, NaN where none is found."""
    points = np.full((len(images), 68, 2), np.nan)
    for index, image in enumerate(images):
        face = largest_face(image)
        if face is not None:
            points[index] = face.landmarks
    return points


def track_landmarks(frames: torch.Tensor) -> LandmarkTrack:
    """Landmarks of frames [t, 3, h, w] in [-1, 1] (cached by content)."""
    images = to_uint8_images(frames)
    key = hashlib.blake2b(images.tobytes(), digest_size=16).hexdigest() + repr(images.shape)
    track = _TRACKS.get(key)
    if track is None:
        track = LandmarkTrack(image_landmarks(images), (images.shape[1], images.shape[2]))
        _TRACKS[key] = track
        while len(_TRACKS) > CACHE_SIZE:
            _TRACKS.popitem(last=False)
    else:
        _TRACKS.move_to_end(key)
    return track


def face_descriptors(images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """uint8 RGB images [n, h, w, 3] with their face landmarks [n, 68, 2] -> descriptors [n, 128].

    dlib aligns each face from its landmarks to a 150 px chip before the network.
    """
    import dlib

    model = descriptor_model()
    descriptors = np.empty((len(images), 128))
    for index, (image, points) in enumerate(zip(images, landmarks)):
        left, top = np.floor(points.min(0)).astype(int)
        right, bottom = np.ceil(points.max(0)).astype(int)
        shape = dlib.full_object_detection(
            dlib.rectangle(int(left), int(top), int(right), int(bottom)), [dlib.point(int(round(x)), int(round(y))) for x, y in points]
        )
        descriptors[index] = np.array(model.compute_face_descriptor(np.ascontiguousarray(image), shape))
    return descriptors
