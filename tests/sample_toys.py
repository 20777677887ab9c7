"""Inputs for the sampling tests: a tiny model file and media files, all made in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import torch
from test_talking_head_toys import toy_components, toy_registries

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.media import write_audio, write_image, write_video
from styletalker_core.registry import Registries

RESOLUTION = 16
SAMPLE_RATE = 16000


@attrs.frozen
class SampleInputs:
    """A model file and the media a job needs (reference, speech, motion video)."""

    registries: Registries
    model: Path
    image: Path
    audio: Path
    motion: Path
    audio_seconds: float
    motion_frames: int


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Mono float32 [s] at 16 kHz: noise bursts with a syllable-rate envelope (so lips have something to follow)."""
    rng = np.random.default_rng(seed)
    count = int(seconds * SAMPLE_RATE)
    times = np.arange(count) / SAMPLE_RATE
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * times), 0, None)
    return (0.4 * envelope * rng.standard_normal(count)).astype(np.float32)


def make_inputs(folder: Path, audio_seconds: float = 1.2, motion_frames: int = 12,
                sample_table: dict | None = None) -> SampleInputs:
    """Write a toy model (16 px, randomly initialised, all real components) and its inputs into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    registries = toy_registries()
    components = toy_components(registries, resolution=RESOLUTION)
    with torch.no_grad():  # offset heads start near zero; make motion as visible as in a trained model
        for module in components["motion_vae"].modules():
            if hasattr(module, "layer_index") and isinstance(getattr(module, "linear", None), torch.nn.Linear):
                module.linear.weight.mul_(30.0)
    model = save_checkpoint(folder / "model.safetensors", components,
                            recipe={"name": "toy", "sample": sample_table or {"align": False}})
    rng = np.random.default_rng(1)
    image = folder / "reference.png"
    write_image(image, rng.integers(0, 256, (24, 20, 3), dtype=np.uint8))
    audio = folder / "speech.wav"
    write_audio(audio, speech_like(audio_seconds))
    motion = folder / "motion.mp4"
    base = rng.integers(0, 256, (RESOLUTION, RESOLUTION, 3)).astype(np.float32)
    frames = [np.clip(base + 60 * np.sin(k / 2.0), 0, 255).astype(np.uint8) for k in range(motion_frames)]
    write_video(motion, np.stack(frames), audio=speech_like(motion_frames / 25, seed=2))
    return SampleInputs(registries, model, image, audio, motion, audio_seconds, motion_frames)
