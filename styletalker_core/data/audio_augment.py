"""Random degradations of training speech: what phones, codecs, rooms, microphones and other voices do.

A model trained only on clean wide-band speech reads a missing top octave as a mouth held
open (8 kHz phone speech: mean openness 0.63 against 0.23-0.34 for wide-band). Training the
audio path on degraded copies of its speech makes it read the speech, not the channel.

Each clip of a batch draws its own chain, in the order sound takes: voice (pitch), room
(reverberation), background (noise), channel (band limit, then mu-law codec), level (gain).
Every draw comes from the caller's ``torch.Generator``, so a resumed run repeats it exactly.

Speed changes are not among them: they would move the speech against the video frames, and
the lips must stay in time with it; pitch changes give the voice variation without that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16000


def _probability(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"audio_augment.{attribute.name} must be a probability in [0, 1], got {value}")


def _span(instance: object, attribute: attrs.Attribute, value: tuple[float, float]) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"audio_augment.{attribute.name} must be [low, high] with low <= high, got {list(value)}")


@attrs.frozen
class AudioAugmentation:
    """Probabilities (per clip) and ranges of each degradation; ``probability`` gates the whole chain."""

    probability: float = attrs.field(default=0.8, validator=_probability)
    band_limit: float = attrs.field(default=0.4, validator=_probability)
    band_rates: tuple[int, ...] = attrs.field(default=(8000, 11025, 12000), converter=tuple)
    mu_law: float = attrs.field(default=0.25, validator=_probability)
    noise: float = attrs.field(default=0.3, validator=_probability)
    snr_db: tuple[float, float] = attrs.field(default=(10.0, 40.0), converter=tuple, validator=_span)
    gain: float = attrs.field(default=0.5, validator=_probability)
    gain_db: tuple[float, float] = attrs.field(default=(-20.0, 6.0), converter=tuple, validator=_span)
    reverb: float = attrs.field(default=0.25, validator=_probability)
    rt60_seconds: tuple[float, float] = attrs.field(default=(0.1, 0.6), converter=tuple, validator=_span)
    pitch: float = attrs.field(default=0.2, validator=_probability)
    pitch_rates: tuple[int, ...] = attrs.field(default=(13500, 14000, 15000, 17000, 18000, 19000), converter=tuple)

    @pitch_rates.validator
    def _check_pitch_rates(self, attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
        if not value or any(not SAMPLE_RATE // 2 <= rate <= 2 * SAMPLE_RATE or rate % 500 for rate in value):
            raise ValueError(f"audio_augment.pitch_rates must be multiples of 500 Hz in [{SAMPLE_RATE // 2}, "
                             f"{2 * SAMPLE_RATE}], got {list(value)}")

    @band_rates.validator
    def _check_rates(self, attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
        if not value or any(not 1000 <= rate < SAMPLE_RATE for rate in value):
            raise ValueError(f"audio_augment.band_rates must be sample rates in [1000, {SAMPLE_RATE}), got {list(value)}")

    @classmethod
    def from_table(cls, table: AudioAugmentation | Mapping[str, Any] | None) -> AudioAugmentation | None:
        """A recipe table (None or empty: no augmentation) or an AudioAugmentation (kept); unknown
        keys are a ValueError naming them."""
        if isinstance(table, AudioAugmentation):
            return table
        if not table:
            return None
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"audio_augment: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**table)

    def __call__(self, wave: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """wave [b, s] at 16 kHz in [-1, 1] -> degraded copy [b, s] (same length, clipped to [-1, 1])."""
        return torch.stack([self.degrade(clip, generator) for clip in wave])

    def degrade(self, clip: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One clip [s] -> its degraded copy [s]."""
        draw = _Draws(generator)
        if not draw.happens(self.probability):
            return clip
        out = clip.float()
        if draw.happens(self.pitch):
            out = pitch_shift(out, self.pitch_rates[draw.index(len(self.pitch_rates))])
        if draw.happens(self.reverb):
            out = reverberate(out, draw.uniform(*self.rt60_seconds), generator)
        if draw.happens(self.noise):
            out = add_noise(out, draw.uniform(*self.snr_db), generator)
        if draw.happens(self.band_limit):
            rate = self.band_rates[draw.index(len(self.band_rates))]
            out = band_limit(out, rate)
        if draw.happens(self.mu_law):
            out = AF.mu_law_decoding(AF.mu_law_encoding(out.clamp(-1, 1), 256), 256)
        if draw.happens(self.gain):
            out = out * 10 ** (draw.uniform(*self.gain_db) / 20)
        return out.clamp(-1, 1).to(clip.dtype)


class _Draws:
    """Scalar draws from one generator (CPU), in a fixed order."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator))

    def happens(self, probability: float) -> bool:
        return float(torch.rand((), generator=self.generator)) < probability

    def index(self, count: int) -> int:
        return int(torch.randint(0, count, (), generator=self.generator))


def pitch_shift(clip: torch.Tensor, rate: int) -> torch.Tensor:
    """Pitch times ``rate`` / 16000, duration kept: a phase-vocoder stretch to that many times the
    length, played back at ``rate`` Hz (resampled to 16 kHz). Rates are multiples of 500 Hz so the
    resampling kernel stays short (torchaudio's own pitch_shift takes seconds per clip). [s] -> [s]."""
    n_fft, hop = 512, 128
    window = torch.hann_window(n_fft)
    spectrum = torch.stft(clip, n_fft, hop, window=window, return_complex=True)
    advance = torch.linspace(0, math.pi * hop, spectrum.shape[-2])[:, None]
    stretched = AF.phase_vocoder(spectrum, SAMPLE_RATE / rate, advance)
    longer = torch.istft(stretched, n_fft, hop, window=window)
    shifted = _fit(AF.resample(longer, rate, SAMPLE_RATE), clip.shape[-1])
    # the vocoder's overlap-add loses level when it stretches; loudness is the gain step's business
    return shifted * clip.pow(2).mean().sqrt() / shifted.pow(2).mean().sqrt().clamp_min(1e-8)


def band_limit(clip: torch.Tensor, rate: int) -> torch.Tensor:
    """Through a ``rate`` Hz channel and back to 16 kHz: nothing above rate / 2 survives. [s] -> [s]."""
    narrow = AF.resample(clip, SAMPLE_RATE, rate)
    wide = AF.resample(narrow, rate, SAMPLE_RATE)
    return _fit(wide, clip.shape[-1])


def add_noise(clip: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise at ``snr_db`` below the clip's mean power (silent clips get none). [s] -> [s]."""
    power = clip.pow(2).mean()
    if power <= 0:
        return clip
    noise = torch.randn(clip.shape, generator=generator)
    return clip + noise * torch.sqrt(power / 10 ** (snr_db / 10))


def reverberate(clip: torch.Tensor, rt60_seconds: float, generator: torch.Generator) -> torch.Tensor:
    """Convolve with a synthetic room response: a direct path and exponentially decaying noise
    (60 dB down after ``rt60_seconds``); the level of the dry clip is kept. [s] -> [s]."""
    length = max(2, int(rt60_seconds * SAMPLE_RATE))
    time = torch.arange(length) / SAMPLE_RATE
    response = torch.randn(length, generator=generator) * torch.exp(-3 * math.log(10) * time / rt60_seconds)
    response[0] = 1.0
    response = response / response.norm()
    wet = AF.fftconvolve(clip, response)[: clip.shape[-1]]
    scale = clip.abs().max() / wet.abs().max().clamp_min(1e-8)
    return wet * scale


def _fit(wave: torch.Tensor, length: int) -> torch.Tensor:
    if wave.shape[-1] >= length:
        return wave[..., :length]
    return torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))
