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

from styletalker_core.data.shards import LEGACY_HELDOUT, Clip, sentence_id
from styletalker_core.data.synthetic.identity import IdentityPool
from styletalker_core.data.synthetic.landmarks import synthetic_landmarks
from styletalker_core.data.synthetic.motion import head_pose, loudness_envelope, sample_blinks
from styletalker_core.data.synthetic.renderer import one_torch_thread, render_faces
from styletalker_core.data.synthetic.speech import (
    ESPEAK_SAMPLE_RATE,
    VOICES,
    VoicePool,
    sample_rate,
    sample_sentence,
    sample_voice,
    sentence_split,
    sentence_split3,
    synthesize,
)
from styletalker_core.data.synthetic.visemes import frame_times, mouth_track, phoneme_ids_at

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
LABEL_NAMES = ("identity", "pose", "eye_open", "mouth_open", "mouth_width", "phoneme")
SPLITS = ("train", "val", "test")


@attrs.frozen
class SynthConfig:
    """Settings of a synthetic dataset.

    clips: number of clips. They are split into consecutive blocks: the first are ``train``,
    then ``round(clips * val_fraction)`` ``val`` clips, then ``round(clips * test_fraction)``
    ``test`` clips (at least one of each when its fraction is above 0 and the clips allow).
    The three splits share no identity, no sentence and no voice.
    heldout_fraction: when set, the older two-split layout instead (the one datasets made
    before val and test existed have): the last ``round(clips * heldout_fraction)`` clips are
    ``heldout``; it reproduces such datasets clip for clip (val_fraction and test_fraction
    are then ignored).
    seconds: (min, max) target clip length; the spoken sentence is sized to fit.
    identities: training identities (0: one per 4 training clips). Each val and test identity
    speaks two clips of its split (ceil(clips / 2) identities); in the older layout the
    held-out identities are heldout_fraction of the training ones (at least 1).
    """

    clips: int
    seed: int = 0
    resolution: int = 64
    seconds: tuple[float, float] = (2.0, 4.0)
    val_fraction: float = 0.1
    test_fraction: float = 0.15
    heldout_fraction: float | None = None
    identities: int = 0  # 0: one training identity per 4 training clips
    supersample: int = 2
    clips_per_shard: int = 16

    def __attrs_post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)}: give a value in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction}: leave some clips for training")

    @property
    def legacy(self) -> bool:
        """True for the older train / heldout layout."""
        return self.heldout_fraction is not None

    def num_heldout_clips(self) -> int:
        """Clips outside the training split (heldout, or val and test)."""
        if self.heldout_fraction is None:  # not the legacy layout
            return self.clips - self.split_sizes()[0][1]
        if self.heldout_fraction <= 0:
            return 0
        return min(max(1, round(self.clips * self.heldout_fraction)), self.clips - 1) if self.clips > 1 else 0

    def split_sizes(self) -> list[tuple[str, int]]:
        """(split, number of clips) in clip order: train, val, test (or train, heldout)."""
        if self.legacy:
            heldout = self.num_heldout_clips()
            return [("train", self.clips - heldout), (LEGACY_HELDOUT, heldout)]

        def count(fraction: float) -> int:
            return max(1, round(self.clips * fraction)) if fraction > 0 else 0

        val, test = count(self.val_fraction), count(self.test_fraction)
        while self.clips - val - test < 1 and val + test:  # too few clips: training keeps at least one
            if val >= test and val:
                val -= 1
            else:
                test -= 1
        return [("train", self.clips - val - test), ("val", val), ("test", test)]

    def split_range(self, split: str) -> range:
        """Clip indices of ``split``."""
        start = 0
        for name, count in self.split_sizes():
            if name == split:
                return range(start, start + count)
            start += count
        raise ValueError(f"unknown split {split!r}; this dataset has {', '.join(name for name, _ in self.split_sizes())}")

    def split_of(self, index: int) -> str:
        start = 0
        for name, count in self.split_sizes():
            if index < start + count:
                return name
            start += count
        raise IndexError(f"clip {index} is outside a dataset of {self.clips} clips")

    def num_identities(self, split: str) -> int:
        clips = len(self.split_range(split))
        if split == "train":
            return self.identities or max(1, math.ceil(clips / 4))
        if self.heldout_fraction is not None:  # the legacy layout
            return max(1, round(self.num_identities("train") * self.heldout_fraction)) if clips else 0
        return math.ceil(clips / 2)

    def identity_pool(self) -> IdentityPool:
        train = self.num_identities("train")
        if self.legacy:
            return IdentityPool(self.seed, train, self.num_identities(LEGACY_HELDOUT))
        held = tuple((split, self.num_identities(split)) for split in SPLITS[1:])
        return IdentityPool(self.seed, train, sum(count for _, count in held), held_splits=held)

    def voice_pool(self) -> VoicePool | None:
        """The voices of each split (None in the older layout, which draws a voice per clip):
        a multiple of the number of eSpeak variants, at least as many as the split's identities."""
        if self.legacy:
            return None
        variants = len(VOICES)
        counts = tuple((split, variants * math.ceil(self.num_identities(split) / variants) if len(self.split_range(split)) else 0)
                       for split in SPLITS)
        return VoicePool(self.seed, counts)

    def sentence_split(self, text: str) -> str:
        """The split a sentence belongs to (a function of its text)."""
        if self.heldout_fraction is not None:  # the legacy layout
            return sentence_split(text, self.heldout_fraction)
        return sentence_split3(text, self.val_fraction, self.test_fraction)


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
    place = index - config.split_range(split).start  # the clip's place in its split
    identity_number = split_ids[place % len(split_ids)]
    identity = pool.vector(identity_number)

    # Speech sized to the target length: rate (words/min) gives the word count.
    voices = config.voice_pool()
    if voices is None:  # the older layout: any voice, drawn per clip
        voice_number = None
        voice = sample_voice(rng)
    else:  # the split's own voices in turn, each at a rate drawn per sentence
        split_voices = voices.ids(split)
        voice_number = split_voices[place % len(split_voices)]
        voice = voices.voice(voice_number, sample_rate(rng))
    target = rng.uniform(*config.seconds)
    lead, tail = rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.4)
    # eSpeak speaks about 1.15 times faster than its nominal rate on these short words.
    num_words = max(2, round((target - lead - tail) * voice.rate / 60 * 1.15))
    text = sample_sentence(rng, num_words, split, config.sentence_split)
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
    if voice_number is not None:
        meta |= {"sentence_id": sentence_id(text), "voice_id": int(voice_number)}
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
