"""Log-mel windows, one per video frame: the fixed (not learned) part of the mel encoder.

For video frame t (samples ``[t * spf, (t + 1) * spf)``) the window holds ``window_mel_frames``
mel frames spaced ``hop`` samples apart and centred on the frame's centre sample
``t * spf + spf / 2``. With the defaults (hop 200, 16 mel frames) a window spans 0.2 s, the
5 video frames t-2..t+2. Each window is computed from its own samples, so a frame's window
depends only on audio within ``reach`` samples of the frame: windows are the same whatever
chunk of audio they are computed from. Audio outside the wave is zeros.

Axis letters: b batch, t video frames, m mel bins, k mel frames in a window.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from einops import rearrange
from torch import nn


class LogMelWindows(nn.Module):
    """wave [b, s] at 16 kHz -> log-mel windows [b, t, m, k] (natural log of the magnitude mel, floored at ``floor``)."""

    def __init__(
        self,
        sample_rate: int = 16000,
        samples_per_frame: int = 640,
        n_fft: int = 800,
        win_length: int = 800,
        hop_length: int = 200,
        n_mels: int = 80,
        f_min: float = 55.0,
        f_max: float = 7600.0,
        window_mel_frames: int = 16,
        floor: float = 1e-5,
    ) -> None:
        super().__init__()
        self.samples_per_frame = samples_per_frame
        self.n_mels = n_mels
        self.window_mel_frames = window_mel_frames
        self.floor = floor
        self.segment = (window_mel_frames - 1) * hop_length + n_fft  # samples under one window
        if (self.segment - samples_per_frame) % 2:
            raise ValueError(
                f"a window of {window_mel_frames} mel frames (hop {hop_length}, n_fft {n_fft}) cannot be centred "
                f"on a frame of {samples_per_frame} samples; change window_mel_frames by one"
            )
        # First sample of frame t's window is t * spf - lead.
        self.lead = (self.segment - samples_per_frame) // 2
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            power=1.0,
            center=False,
            norm="slaney",
            mel_scale="slaney",
        )

    @property
    def reach_frames(self) -> int:
        """Video frames on each side of a frame whose audio can fall into its window."""
        return math.ceil(self.lead / self.samples_per_frame)

    def forward(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """wave [b, num_frames * spf] (already fitted) -> [b, num_frames, n_mels, window_mel_frames]."""
        spf = self.samples_per_frame
        padded = nn.functional.pad(wave, (self.lead, self.segment))
        segments = padded.unfold(1, self.segment, spf)[:, :num_frames]  # [b, t, segment]
        mel = self.mel(rearrange(segments, "b t n -> (b t) n"))  # [(b t), m, k]
        logmel = torch.log(torch.clamp(mel, min=self.floor))
        return rearrange(logmel, "(b t) m k -> b t m k", t=num_frames)
