"""Contrastive lip-sync discriminator and the lip mapper."""

from __future__ import annotations

import abc

import torch
from torch import nn


class LipSyncDiscriminator(nn.Module, abc.ABC):
    """D_sync: (audio window, mouth window) -> embeddings whose cosine similarity scores sync.

    Attributes: window_frames (5 video frames = 0.2 s), embed_dim (d),
    mouth_size (h, w of the mouth crop it expects), sample_rate (16000), fps (25).
    """

    window_frames: int
    embed_dim: int
    sample_rate: int = 16000
    fps: int = 25

    @abc.abstractmethod
    def embed_audio(self, wave_windows: torch.Tensor) -> torch.Tensor:
        """wave_windows [b, s = window_frames * sample_rate / fps] -> L2-normalised [b, d]."""

    @abc.abstractmethod
    def embed_mouth(self, mouth_windows: torch.Tensor) -> torch.Tensor:
        """mouth_windows [b, window_frames, 3, h, w] in [-1, 1] -> L2-normalised [b, d]."""

    @abc.abstractmethod
    def mouth_crop(self, faces: torch.Tensor) -> torch.Tensor:
        """Aligned faces [..., 3, H, W] in [-1, 1] -> mouth crops [..., 3, h, w] (lower half of the face)."""


class LipMapper(nn.Module, abc.ABC):
    """Audio features with temporal context plus identity -> W+ offsets for the lips.

    Attributes: num_ws, w_dim, feature_dim (c of the audio features it reads),
    context_frames (k: frames of context on each side).
    """

    num_ws: int
    w_dim: int
    feature_dim: int
    context_frames: int

    @abc.abstractmethod
    def forward(self, audio_features: torch.Tensor, w_id: torch.Tensor) -> torch.Tensor:
        """audio_features [b, t, c], w_id [b, l, w] -> dw_lip [b, t, l, w] (zero on masked layers)."""
