"""Identity similarity (CSIM) between the reference image and the generated frames, with dlib's face descriptor."""

from __future__ import annotations

import numpy as np
import torch

from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_metrics.landmarks import face_descriptors, track_landmarks
from styletalker_metrics.pairing import check_video, to_uint8_images


class IdentitySimilarity(Metric):
    """Cosine similarity of dlib face descriptors of the reference image and the generated frames (CSIM).

    The descriptor is dlib's ResNet face-recognition model (dlib_face_recognition_resnet_model_v1,
    shipped with face-recognition-models); its vectors are 128-d and two photos show the same
    person when their Euclidean distance is below 0.6. Reported: the mean cosine similarity
    (``csim``, higher is better) and the mean distance (``csim_distance``) over
    ``frames_per_video`` evenly spaced frames with a face (0: all frames). dlib descriptors of
    any two faces have a fairly high cosine (different people are often around 0.85-0.9), so
    compare CSIM values with each other rather than with ArcFace-based numbers. A reference
    without a detectable face gives NaN; generated frames without a face are left out and counted.
    """

    requires = ("frames", "reference_image")

    def __init__(self, frames_per_video: int = 16) -> None:
        self.frames_per_video = frames_per_video
        self.higher_is_better = {"csim": True, "csim_distance": False, "csim_missing_faces": False}

    def reference_descriptor(self, image: torch.Tensor) -> np.ndarray | None:
        """[3, h, w] in [-1, 1] -> [128], or None when the image has no detectable face."""
        track = track_landmarks(image[None])
        if not track.found[0]:
            return None
        return face_descriptors(to_uint8_images(image[None]), track.points)[0]

    def compute(self, item: EvalItem) -> dict[str, float]:
        check_video(item.frames, "generated video")
        track = track_landmarks(item.frames)
        missing = float(track.missing)
        nan = {"csim": float("nan"), "csim_distance": float("nan"), "csim_missing_faces": missing}
        assert item.reference_image is not None  # in requires: the engine gives it
        reference = self.reference_descriptor(item.reference_image)
        indices = np.flatnonzero(track.found)
        if reference is None or len(indices) == 0:
            return nan
        if 0 < self.frames_per_video < len(indices):
            indices = indices[np.linspace(0, len(indices) - 1, self.frames_per_video).round().astype(int)]
        generated = face_descriptors(to_uint8_images(item.frames[torch.as_tensor(indices)]), track.points[indices])
        cosine = generated @ reference / (np.linalg.norm(generated, axis=1) * np.linalg.norm(reference))
        distance = np.linalg.norm(generated - reference, axis=1)
        return {"csim": float(cosine.mean()), "csim_distance": float(distance.mean()), "csim_missing_faces": missing}
