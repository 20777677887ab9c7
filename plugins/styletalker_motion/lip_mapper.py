"""Lip mapper: a window of audio features plus the identity latent -> W+ offsets for the lips."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from styletalker_core.interfaces import LipMapper
from styletalker_motion.offsets import OffsetHead, resolve_layers


class ConvLipMapper(LipMapper):
    """dw_lip_t = MLP(conv(a_{t-k..t+k}) modulated by w_id): a temporal convolution of width
    2k + 1 over the audio features, FiLM conditioning on the identity latent, and an offset
    head restricted to ``layers`` (all W+ layers when empty)."""

    def __init__(
        self,
        num_ws: int,
        w_dim: int,
        feature_dim: int,
        context_frames: int = 4,
        hidden: int = 256,
        layers: list[int] | None = None,
        identity_conditioning: bool = True,
    ) -> None:
        super().__init__()
        if context_frames < 0 or hidden < 1:
            raise ValueError("lip mapper: context_frames must be >= 0 and hidden >= 1")
        self.num_ws, self.w_dim, self.feature_dim = num_ws, w_dim, feature_dim
        self.context_frames = context_frames
        self.layers = resolve_layers(list(layers or []), num_ws, "lip mapper")
        self.conv = nn.Conv1d(feature_dim, hidden, kernel_size=2 * context_frames + 1, padding=context_frames)
        self.pointwise = nn.Linear(hidden, hidden)
        self.identity = nn.Linear(num_ws * w_dim, 2 * hidden) if identity_conditioning else None
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.head = OffsetHead(hidden, num_ws, w_dim, self.layers)

    def forward(self, audio_features: torch.Tensor, w_id: torch.Tensor) -> torch.Tensor:
        """audio_features [b, t, c], w_id [b, l, w] -> dw_lip [b, t, l, w]."""
        if audio_features.shape[-1] != self.feature_dim:
            raise ValueError(f"lip mapper: expected {self.feature_dim} audio channels, got {audio_features.shape[-1]}")
        hidden = self.pointwise(F.silu(self.conv(audio_features.transpose(1, 2)).transpose(1, 2)))
        if self.identity is not None:
            scale, shift = self.identity(w_id.flatten(1)).chunk(2, dim=-1)
            hidden = hidden * (1 + scale[:, None]) + shift[:, None]
        return self.head(self.mlp(hidden))
