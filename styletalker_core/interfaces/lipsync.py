"""Contrastive lip-sync discriminator and the lip mapper."""

from __future__ import annotations

import abc

import torch
from torch import nn


class LipSyncDiscriminator(nn.Module, abc.ABC):
    """D_sync: (audio window, mouth window) -> embeddings whose cosine similarity scores sync.

    An audio window of ``window_frames`` video frames (0.2 s for 5 frames) is the waveform
    from the window's first frame start to its last frame end:
    ``window_frames * sample_rate // fps`` samples. The mouth window is the mouth crops of
    the same frames. Embeddings are L2-normalised, so the SyncNet distance of a pair is
    ``||a - m|| = sqrt(2 - 2 cos)``.

    Attributes: window_frames (5), embed_dim (d), mouth_size ((h, w) of the crop it expects),
    sample_rate (16000), fps (25).
    """

    window_frames: int
    embed_dim: int
    mouth_size: tuple[int, int]
    sample_rate: int = 16000
    fps: int = 25

    @property
    def window_samples(self) -> int:
        """Samples in one audio window."""
        return self.window_frames * self.sample_rate // self.fps

    @abc.abstractmethod
    def embed_audio(self, wave_windows: torch.Tensor) -> torch.Tensor:
        """wave_windows [b, s = window_samples] -> L2-normalised [b, d]."""

    @abc.abstractmethod
    def embed_mouth(self, mouth_windows: torch.Tensor) -> torch.Tensor:
        """mouth_windows [b, window_frames, 3, h, w] in [-1, 1] -> L2-normalised [b, d]."""

    @abc.abstractmethod
    def mouth_crop(self, faces: torch.Tensor) -> torch.Tensor:
        """Aligned faces [..., 3, H, W] in [-1, 1] -> mouth crops [..., 3, h, w] (lower half of the face)."""

    def logit_scale(self) -> torch.Tensor:
        """Scalar multiplying cosine similarities into logits (1 / temperature). Default 1;
        contrastive implementations return their learned value."""
        return torch.ones((), device=next(self.parameters()).device)


class LipMapper(nn.Module, abc.ABC):
    """Audio features with temporal context plus identity -> W+ offsets for the lips.

    The output at frame t depends only on features t - k .. t + k (k = ``context_frames``);
    features outside the given sequence count as zeros. So a long sequence can be mapped in
    chunks, each with k frames of features on both sides, cropping k outputs at each side.

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
