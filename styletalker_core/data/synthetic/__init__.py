"""Synthetic talking faces with per-frame ground truth (identity, pose, blinks, mouth, phonemes).

Modules: identity (factors, distribution, held-out split), geometry (factors -> sizes and
colours), renderer (torch, vectorised over frames), speech (eSpeak NG through ctypes),
visemes (phonemes -> mouth track), motion (head pose and blinks), clip (one clip from a
seed), generate (a sharded dataset, in parallel).
"""

from styletalker_core.data.synthetic.clip import FPS, LABEL_NAMES, SAMPLE_RATE, SynthConfig, make_clip
from styletalker_core.data.synthetic.generate import generate_dataset
from styletalker_core.data.synthetic.identity import IDENTITY_DIM, IDENTITY_FACTORS, IdentityPool, sample_identity
from styletalker_core.data.synthetic.renderer import render_faces

__all__ = [
    "FPS",
    "IDENTITY_DIM",
    "IDENTITY_FACTORS",
    "LABEL_NAMES",
    "SAMPLE_RATE",
    "IdentityPool",
    "SynthConfig",
    "generate_dataset",
    "make_clip",
    "render_faces",
    "sample_identity",
]
