"""Face detection (dlib's HOG detector) and 68-point landmarks (dlib's shape predictor with the
model file shipped in the face-recognition-models package), and the per-frame face policy.

The face-recognition-models package is located without importing it (its ``__init__``
needs pkg_resources): through ``importlib.util.find_spec`` or its installed file list.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from styletalker_core.errors import StyleTalkerError

LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
FACE_POLICIES = ("skip", "largest", "fail")


def models_folder() -> Path:
    """The ``models`` folder of the installed face-recognition-models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(location) / "models" for location in spec.submodule_search_locations]
    try:
        files = importlib.metadata.files("face_recognition_models") or []
        candidates += [Path(str(file.locate())).parent for file in files if file.name == LANDMARK_MODEL]
    except importlib.metadata.PackageNotFoundError:
        pass
    for folder in candidates:
        if (folder / LANDMARK_MODEL).is_file():
            return folder
    raise StyleTalkerError(
        "the face landmark model is missing: install the face-recognition-models package "
        "(pip install face-recognition-models), which ships shape_predictor_68_face_landmarks.dat"
    )


@functools.lru_cache(maxsize=1)
def _load_models() -> tuple[Any, Any]:
    """dlib's face detector and the 68-landmark predictor, loaded once per process (about 100 MB)."""
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(models_folder() / LANDMARK_MODEL))


@attrs.frozen
class Face:
    """One detected face: box (left, top, right, bottom) in frame pixels, detector score, landmarks [68, 2]."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray

    @property
    def size(self) -> float:
        """Side of the detection box in pixels (geometric mean of width and height)."""
        left, top, right, bottom = self.box
        return float(np.sqrt(max(right - left, 1) * max(bottom - top, 1)))


class FaceAnalyzer:
    """Finds faces and their 68 landmarks in RGB frames.

    Detection runs on a copy scaled so its longer side is at most ``detect_max_side`` pixels,
    upsampled once by dlib when that copy is under 512 pixels (small faces); landmarks are
    predicted on the full-resolution frame. Detections scoring below ``min_score`` are ignored.
    """

    def __init__(self, detect_max_side: int = 640, min_score: float = 0.0) -> None:
        import dlib

        self.detect_max_side = detect_max_side
        self.min_score = min_score
        self._detector, self._predictor = _load_models()
        self._dlib = dlib

    def detect(self, frame: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """frame uint8 [h, w, 3] -> boxes (left, top, right, bottom) in frame pixels with scores."""
        from PIL import Image

        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        small = frame
        if scale < 1.0:
            small = np.asarray(Image.fromarray(frame).resize((round(width * scale), round(height * scale)), Image.Resampling.BILINEAR))
        gray = np.ascontiguousarray(np.asarray(Image.fromarray(small).convert("L")))
        upsample = 1 if max(gray.shape) < 512 else 0
        rectangles, scores, _ = self._detector.run(gray, upsample, self.min_score)
        boxes = []
        for rect, score in zip(rectangles, scores, strict=True):
            left, top, right, bottom = (int(round(v / scale)) for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
            boxes.append(((left, top, right, bottom), float(score)))
        return boxes

    def landmarks(self, frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """68 landmarks [68, 2] (x, y pixels) of the face in ``box``."""
        shape = self._predictor(np.ascontiguousarray(frame), self._dlib.rectangle(*box))
        return np.array([[point.x, point.y] for point in shape.parts()], dtype=np.float64)

    def faces(self, frame: np.ndarray, boxes: list[tuple[tuple[int, int, int, int], float]] | None = None) -> list[Face]:
        """Every face in ``frame`` (detected, or in the given ``boxes``), largest first."""
        found = self.detect(frame) if boxes is None else boxes
        faces = [Face(box, score, self.landmarks(frame, box)) for box, score in found]
        return sorted(faces, key=lambda face: -face.size)


def choose_face(faces: list[Face], policy: str, min_face_size: int) -> tuple[Face | None, str]:
    """Apply the face policy to one frame's faces: (face, "") when usable, else (None, reason).

    Reasons: "no_face", "small_face" (box side below ``min_face_size`` pixels),
    "multiple_faces" (more than one face under the "skip" and "fail" policies; "largest"
    keeps the largest).
    """
    if policy not in FACE_POLICIES:
        raise StyleTalkerError(f"face policy {policy!r}: choose one of {', '.join(FACE_POLICIES)}")
    if not faces:
        return None, "no_face"
    if len(faces) > 1 and policy != "largest":
        return None, "multiple_faces"
    face = faces[0]
    if face.size < min_face_size:
        return None, "small_face"
    return face, ""
