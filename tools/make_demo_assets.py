"""Regenerate the demo's shipped assets (assets/) from the synthetic domain, deterministically.

    .venv/bin/python tools/make_demo_assets.py            # writes assets/reference.png, speech.wav, motion.mp4

- reference.png: a held-out synthetic identity, frontal, eyes open, mouth at rest, rendered at
  the model's resolution. Held out: it lies at least 0.35 factor units from the first
  MAX_TRAIN_IDENTITIES identities of the shipped model's data seed (DATA_SEED) and of its
  domain pretraining data seed (DOMAIN_SEED), so no training set drawn with those seeds
  contains it.
- speech.wav: one English sentence spoken by eSpeak NG, 16 kHz mono 16-bit, with short
  silences before and after.
- motion.mp4: another held-out identity speaking another sentence (its own audio track), with
  clear head motion (the domain's pose process, the first seed whose yaw and pitch swing
  widely) and three blinks at fixed times; 25 fps H.264.

The same arguments give the same files (the mp4 up to the encoder's version).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from styletalker_core.data.synthetic.identity import IdentityPool
from styletalker_core.data.synthetic.motion import Blinks, head_pose, loudness_envelope
from styletalker_core.data.synthetic.renderer import render_faces
from styletalker_core.data.synthetic.speech import ESPEAK_SAMPLE_RATE, Voice, synthesize
from styletalker_core.data.synthetic.visemes import VISEMES, frame_times, mouth_track
from styletalker_core.media import write_audio, write_image, write_video

ROOT = Path(__file__).resolve().parent.parent
FPS, SAMPLE_RATE = 25, 16000
DATA_SEED = 1  # the --seed of `styletalker data synth` in recipes/synthetic_64.toml (the shipped model's data)
DOMAIN_SEED = 2  # ... and in recipes/domain_synthetic_64.toml (the data its generator and encoder learned)
MAX_TRAIN_IDENTITIES = 5000  # held-out identities are far from the first 5000 identities of the data seed
SPEECH_TEXT = "Hello there. This face was made from one picture, and it speaks these very words."
SPEECH_VOICE = Voice("en-us+m3", rate=150, pitch=50, pitch_range=60)
MOTION_TEXT = "Look to the left, then up, and now back to the right again, please."
MOTION_VOICE = Voice("en-us+m7", rate=150, pitch=55, pitch_range=60)  # eSpeak's female variants add unseeded breath noise
BLINKS = Blinks(np.array([0.7, 1.9, 3.1]), np.array([0.3, 0.3, 0.3]), rate_per_minute=45.0)
LEAD, TAIL = 0.3, 0.4  # seconds of silence around each sentence


def speak(text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Speech at 16 kHz [s] with silences around it, peak 0.8, and its timed phonemes."""
    import torchaudio.functional as AF

    utterance = synthesize(text, voice)
    speech = torch.from_numpy(utterance.samples.astype(np.float32) / 32768.0)
    speech = AF.resample(speech, ESPEAK_SAMPLE_RATE, SAMPLE_RATE).numpy()
    speech = speech * (0.8 / max(float(np.abs(speech).max()), 1e-6))
    frames = math.ceil((LEAD + len(speech) / SAMPLE_RATE + TAIL) * FPS)
    audio = np.zeros(frames * SAMPLE_RATE // FPS, dtype=np.float32)
    start = round(LEAD * SAMPLE_RATE)
    audio[start : start + len(speech)] = speech
    lead = start / SAMPLE_RATE
    return audio, [(name, lead + begin, lead + end) for name, begin, end in utterance.phonemes]


def clear_head_motion(loudness: np.ndarray, seed: int) -> np.ndarray:
    """Pose [t, 3] from the domain's pose process: the first seed whose yaw spans >= 25 and pitch >= 10 degrees."""
    for attempt in range(1000):
        pose = head_pose(np.random.default_rng([seed, 0xDE30, attempt]), loudness, FPS)
        spans = pose.max(axis=0) - pose.min(axis=0)
        if spans[0] >= 25 and spans[1] >= 10:
            return pose
    raise RuntimeError("no pose draw with clear motion in 1000 attempts")


def heldout_identities(data_seed: int, other_seeds: tuple[int, ...], count: int = 2) -> list[np.ndarray]:
    """``count`` identities of the held-out pool of ``data_seed`` that are also far from the
    training identities of ``other_seeds`` -> float32 [IDENTITY_DIM] each."""
    from styletalker_core.data.synthetic.identity import sample_identity

    others = np.stack([sample_identity(seed, k) for seed in other_seeds for k in range(MAX_TRAIN_IDENTITIES)])
    chosen, number = [], MAX_TRAIN_IDENTITIES
    while len(chosen) < count:
        pool = IdentityPool(data_seed, MAX_TRAIN_IDENTITIES, number - MAX_TRAIN_IDENTITIES + 1)
        vector = pool.vector(number)
        if np.linalg.norm(others - vector, axis=1).min() >= pool.min_distance:
            chosen.append(vector)
        number += 1
    return chosen


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[t, 3, h, w] in [0, 1] -> uint8 [t, h, w, 3]."""
    return (images.permute(0, 2, 3, 1) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "assets")
    parser.add_argument("--resolution", type=int, default=64, help="the shipped model's resolution")
    parser.add_argument("--data-seed", type=int, default=DATA_SEED, help="seed of the synthetic training data")
    parser.add_argument("--domain-seed", type=int, default=DOMAIN_SEED, help="seed of the domain pretraining data")
    args = parser.parse_args()

    reference_id, motion_id = (torch.from_numpy(v) for v in heldout_identities(args.data_seed, (args.domain_seed,)))
    rest_open, rest_width, _ = VISEMES["rest"]

    face = render_faces(reference_id, torch.zeros(1, 3), torch.ones(1), torch.full((1,), rest_open),
                        torch.full((1,), rest_width), resolution=args.resolution)
    write_image(args.out_dir / "reference.png", to_uint8(face)[0])

    speech, _ = speak(SPEECH_TEXT, SPEECH_VOICE)
    write_audio(args.out_dir / "speech.wav", speech)

    audio, phonemes = speak(MOTION_TEXT, MOTION_VOICE)
    frames = len(audio) * FPS // SAMPLE_RATE
    times = frame_times(frames, FPS)
    mouth_open, mouth_width = mouth_track(phonemes, times)
    pose = clear_head_motion(loudness_envelope(audio, frames), args.data_seed)
    video = render_faces(motion_id, torch.from_numpy(pose), torch.from_numpy(BLINKS.openness(times)),
                         torch.from_numpy(mouth_open), torch.from_numpy(mouth_width), resolution=args.resolution)
    write_video(args.out_dir / "motion.mp4", to_uint8(video), audio=audio, fps=FPS, crf=12)
    print(f"{args.out_dir}: reference.png ({args.resolution} px), speech.wav ({len(speech) / SAMPLE_RATE:.2f} s), "
          f"motion.mp4 ({frames} frames, yaw {np.ptp(pose[:, 0]):.0f} deg, pitch {np.ptp(pose[:, 1]):.0f} deg, "
          f"{len(BLINKS.onsets)} blinks)")


if __name__ == "__main__":
    main()
