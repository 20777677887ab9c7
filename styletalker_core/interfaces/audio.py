"""Audio front-end: waveform -> one feature vector per video frame."""

from __future__ import annotations

import abc

import torch
from torch import nn


class AudioEncoder(nn.Module, abc.ABC):
    """A: 16 kHz mono waveform -> features at 25 fps.

    Attributes: sample_rate (16000), fps (25), feature_dim (c of the output).
    """

    sample_rate: int = 16000
    fps: int = 25
    feature_dim: int

    @abc.abstractmethod
    def features(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """wave [b, s] at ``sample_rate`` -> features [b, t=num_frames, c] at ``fps``.

        Frame t covers audio time [t / fps, (t + 1) / fps). Audio shorter than
        ``num_frames / fps`` is zero-padded at the end; longer audio is trimmed.
        """

    def forward(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.features(wave, num_frames)
