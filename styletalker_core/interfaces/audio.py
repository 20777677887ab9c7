"""Audio front-end: waveform -> one feature vector per video frame.

Conventions every implementation follows (so chunked processing is exact where it can be):

- Video frame t covers audio samples ``[t * spf, (t + 1) * spf)`` with ``spf = sample_rate / fps``
  (640 at 16 kHz and 25 fps).
- ``features(wave, t)`` first fits the wave to exactly ``t * spf`` samples: longer audio is
  trimmed at the end, shorter audio is zero-padded at the end (:meth:`AudioEncoder.fit_wave`).
- Outside the fitted wave an encoder sees silence (zeros) on both sides.
- ``context_frames`` is how many frames on each side can influence a frame's features
  (its receptive field), or None when any frame can influence any other (full attention,
  or a normalisation over the whole input).
"""

from __future__ import annotations

import abc

import torch
from torch import nn


class AudioEncoder(nn.Module, abc.ABC):
    """A: 16 kHz mono waveform -> features at 25 fps.

    Attributes: sample_rate (16000), fps (25), feature_dim (c of the output),
    context_frames (receptive field in frames on each side; None when unbounded).
    """

    sample_rate: int = 16000
    fps: int = 25
    feature_dim: int
    context_frames: int | None = None

    @property
    def samples_per_frame(self) -> int:
        """Audio samples per video frame (640 at 16 kHz and 25 fps)."""
        if self.sample_rate % self.fps:
            raise ValueError(f"sample rate {self.sample_rate} is not a whole multiple of fps {self.fps}")
        return self.sample_rate // self.fps

    def fit_wave(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """wave [b, s] -> [b, num_frames * samples_per_frame]: trimmed, or zero-padded at the end."""
        if wave.ndim != 2:
            raise ValueError(f"expected wave [b, s], got shape {tuple(wave.shape)}")
        length = num_frames * self.samples_per_frame
        if wave.shape[1] >= length:
            return wave[:, :length]
        return nn.functional.pad(wave, (0, length - wave.shape[1]))

    @abc.abstractmethod
    def features(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """wave [b, s] at ``sample_rate`` -> features [b, t=num_frames, c] at ``fps``.

        Frame t covers audio time [t / fps, (t + 1) / fps). The wave is fitted to
        ``num_frames`` frames first (see :meth:`fit_wave`); outside it the encoder sees zeros.
        """

    def forward(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.features(wave, num_frames)

    def features_with_context(self, wave: torch.Tensor, num_frames: int, context_frames: int) -> torch.Tensor:
        """Features of the middle ``num_frames`` frames of a wave that carries ``context_frames``
        frames of real audio on each side (as datasets deliver with ``audio_context_frames``).

        wave [b, (num_frames + 2 * context_frames) * spf] -> [b, num_frames, c].
        """
        total = num_frames + 2 * context_frames
        return self.features(wave, total)[:, context_frames : context_frames + num_frames]

    def features_chunked(
        self,
        wave: torch.Tensor,
        num_frames: int,
        chunk_frames: int = 250,
        overlap_frames: int | None = None,
    ) -> torch.Tensor:
        """Like :meth:`features` but in chunks, so memory does not grow with the audio length.

        The wave is fitted to ``num_frames`` frames; each chunk of ``chunk_frames`` frames is
        computed from its audio plus ``overlap_frames`` frames of neighbouring audio on each
        side (never beyond the ends of the fitted wave), and only the chunk's own frames are
        kept. ``overlap_frames`` defaults to ``context_frames`` (25 when unbounded).
        The result equals ``features(wave, num_frames)`` exactly (up to float rounding) when
        ``overlap_frames >= context_frames``; for unbounded encoders it is an approximation
        that improves with the overlap. wave [b, s] -> [b, num_frames, c].
        """
        if chunk_frames <= 0:
            raise ValueError(f"chunk_frames must be positive, got {chunk_frames}")
        if overlap_frames is None:
            overlap_frames = self.context_frames if self.context_frames is not None else 25
        spf = self.samples_per_frame
        wave = self.fit_wave(wave, num_frames)
        pieces = []
        for start in range(0, num_frames, chunk_frames):
            stop = min(start + chunk_frames, num_frames)
            low, high = max(0, start - overlap_frames), min(num_frames, stop + overlap_frames)
            chunk = self.features(wave[:, low * spf : high * spf], high - low)
            pieces.append(chunk[:, start - low : stop - low])
        return torch.cat(pieces, dim=1)

    def load_pretrained(self) -> None:
        """Import published weights named by the encoder's options (for example a wav2vec2
        checkpoint path). Default: nothing to import.

        Construction never loads weights; code that assembles a model calls this once after
        building the encoder and before restoring a styletalker checkpoint (whose weights,
        when given, take precedence).
        """
