"""One synthetic talking-face clip: speech, visemes, motion and frames, all from one seed.

Clip ``index`` of a dataset with seed ``seed`` draws every random choice from
``numpy.random.default_rng([seed, index])``, so any clip can be rebuilt alone and the
dataset does not depend on how clips are spread over worker processes.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import torch

from styletalker_core.data.shards import Clip
from styletalker_core.data.synthetic.identity import IdentityPool
from styletalker_core.data.synthetic.landmarks import synthetic_landmarks
from styletalker_core.data.synthetic.motion import head_pose, loudness_envelope, sample_blinks
from styletalker_core.data.synthetic.renderer import one_torch_thread, render_faces
from styletalker_core.data.synthetic.speech import ESPEAK_SAMPLE_RATE, sample_sentence, sample_voice, synthesize
from styletalker_core.data.synthetic.visemes import frame_times, mouth_track, phoneme_ids_at

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
LABEL_NAMES = ("identity", "pose", "eye_open", "mouth_open", "mouth_width", "phoneme")


@attrs.frozen
class SynthConfig:
    """Settings of a synthetic dataset.

    clips: number of clips; the last ``round(clips * heldout_fraction)`` are held out.
    seconds: (min, max) target clip length; the spoken sentence is sized to fit.
    identities: training identities (held-out ones: heldout_fraction of that, at least 1).
    """

    clips: int
    seed: int = 0
    resolution: int = 64
    seconds: tuple[float, float] = (2.0, 4.0)
    heldout_fraction: float = 0.1
    identities: int = 0  # 0: one training identity per 4 training clips
    supersample: int = 2
    clips_per_shard: int = 16

    def num_heldout_clips(self) -> int:
        if self.heldout_fraction <= 0:
            return 0
        return min(max(1, round(self.clips * self.heldout_fraction)), self.clips - 1) if self.clips > 1 else 0

    def identity_pool(self) -> IdentityPool:
        num_train_clips = self.clips - self.num_heldout_clips()
        train = self.identities or max(1, math.ceil(num_train_clips / 4))
        heldout = max(1, round(train * self.heldout_fraction)) if self.num_heldout_clips() else 0
        return IdentityPool(self.seed, train, heldout)

    def split_of(self, index: int) -> str:
        return "heldout" if index >= self.clips - self.num_heldout_clips() else "train"


def clip_id(index: int) -> str:
    return f"synth-{index:06d}"


def make_clip(config: SynthConfig, index: int) -> Clip:
    """Build clip ``index`` of the dataset described by ``config`` (torch runs on one thread meanwhile)."""
    with one_torch_thread():
        return _make_clip(config, index)


def _make_clip(config: SynthConfig, index: int) -> Clip:
    import torchaudio.functional as AF

    rng = np.random.default_rng([config.seed, index])
    split = config.split_of(index)
    pool = config.identity_pool()
    split_ids = pool.ids(split)
    first = 0 if split == "train" else config.clips - config.num_heldout_clips()
    identity_number = split_ids[(index - first) % len(split_ids)]
    identity = pool.vector(identity_number)

    # Speech sized to the target length: rate (words/min) gives the word count.
    voice = sample_voice(rng)
    target = rng.uniform(*config.seconds)
    lead, tail = rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.4)
    # eSpeak speaks about 1.15 times faster than its nominal rate on these short words.
    num_words = max(2, round((target - lead - tail) * voice.rate / 60 * 1.15))
    text = sample_sentence(rng, num_words, split, config.heldout_fraction)
    utterance = synthesize(text, voice)
    speech = torch.from_numpy(utterance.samples.astype(np.float32) / 32768.0)
    speech = AF.resample(speech, ESPEAK_SAMPLE_RATE, SAMPLE_RATE).numpy()
    peak = float(np.abs(speech).max()) or 1.0
    speech = speech * (rng.uniform(0.5, 0.9) / peak)
    num_frames = math.ceil((lead + utterance.duration + tail) * FPS)
    audio = np.zeros(num_frames * SAMPLES_PER_FRAME, dtype=np.float32)
    offset = round(lead * SAMPLE_RATE)
    audio[offset : offset + len(speech)] = speech[: len(audio) - offset]
    lead = offset / SAMPLE_RATE  # exact start of the utterance in the clip
    phonemes = [(name, lead + start, lead + end) for name, start, end in utterance.phonemes]

    times = frame_times(num_frames, FPS)
    mouth_open, mouth_width = mouth_track(phonemes, times)
    loudness = loudness_envelope(audio, num_frames, SAMPLES_PER_FRAME)
    pose = head_pose(rng, loudness, FPS)
    blinks = sample_blinks(rng, num_frames / FPS)
    eye_open = blinks.openness(times)

    factors = (torch.from_numpy(identity), torch.from_numpy(pose), torch.from_numpy(eye_open),
               torch.from_numpy(mouth_open), torch.from_numpy(mouth_width))
    frames = render_faces(*factors, resolution=config.resolution, supersample=config.supersample)
    landmarks = synthetic_landmarks(*factors, resolution=config.resolution)
    frames_u8 = (frames.permute(0, 2, 3, 1) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    labels = {
        "identity": np.repeat(identity[None], num_frames, axis=0),
        "pose": pose,
        "eye_open": eye_open,
        "mouth_open": mouth_open,
        "mouth_width": mouth_width,
        "phoneme": phoneme_ids_at(phonemes, times).astype(np.float32),
    }
    meta = {
        "split": split,
        "transcript": text,
        "phonemes": [[name, round(start, 4), round(end, 4)] for name, start, end in phonemes],
        "voice": voice.as_dict(),
        "identity_id": int(identity_number),
        "blinks": [[round(float(o), 4), round(float(d), 4)] for o, d in zip(blinks.onsets, blinks.durations)],
        "blink_rate_per_minute": round(blinks.rate_per_minute, 3),
        "speech_start": lead,
        "speech_end": lead + utterance.duration,
    }
    return Clip(
        clip_id=clip_id(index),
        frames=frames_u8,
        audio=audio,
        fps=FPS,
        sample_rate=SAMPLE_RATE,
        source="synthetic",
        landmarks=landmarks.numpy().astype(np.float32),
        labels=labels,
        meta=meta,
    )
