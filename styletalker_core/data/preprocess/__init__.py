"""Real-video preprocessing: videos -> aligned 25 fps face clips with 16 kHz audio, as a sharded dataset.

Modules: layouts (finding videos and naming clips), faces (dlib detection, landmarks, face
policy), align (FFHQ quad, smoothing, cropping), video (one video -> clips), runner (a
folder with workers, progress, resume and reports).
"""

from styletalker_core.data.preprocess.align import FFHQ_EYES, crop_face, ffhq_quad, quad_to_crop, smooth_landmarks
from styletalker_core.data.preprocess.faces import FACE_POLICIES, FaceAnalyzer, models_folder
from styletalker_core.data.preprocess.layouts import LAYOUTS, VideoJob, discover_videos
from styletalker_core.data.preprocess.runner import preprocess_folder
from styletalker_core.data.preprocess.video import PreprocessSettings, process_video

__all__ = [
    "FACE_POLICIES",
    "FFHQ_EYES",
    "LAYOUTS",
    "FaceAnalyzer",
    "PreprocessSettings",
    "VideoJob",
    "crop_face",
    "discover_videos",
    "ffhq_quad",
    "models_folder",
    "preprocess_folder",
    "process_video",
    "quad_to_crop",
    "smooth_landmarks",
]
