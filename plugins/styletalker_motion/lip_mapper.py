"""Lip mapper: a window of audio features plus the identity latent -> W+ offsets for the lips."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from styletalker_core.interfaces import LipMapper
from styletalker_motion.offsets import OffsetHead, resolve_layers


class ConvLipMapper(LipMapper):
    """dw_lip_t = MLP(conv(a_{t-k..t+f}) modulated by w_id): a temporal convolution over the
    audio features of frames t - k .. t + f (k = ``context_frames``, f = ``lookahead_frames``),
    FiLM conditioning on the identity latent, and an offset head restricted to ``layers`` (all
    W+ layers when empty).

    ``lookahead_frames`` (0 .. k; default k, the symmetric window of width 2k + 1 every earlier
    model has) is the audio look-ahead a streaming session waits for before a frame's lips can
    be drawn: 0 makes the lip mapper causal. The past side keeps its k frames, so the window is
    k + 1 + f frames wide; features outside the sequence count as zeros either way.
    """

    def __init__(
        self,
        num_ws: int,
        w_dim: int,
        feature_dim: int,
        context_frames: int = 4,
        hidden: int = 256,
        layers: list[int] | None = None,
        identity_conditioning: bool = True,
        lookahead_frames: int | None = None,
    ) -> None:
        super().__init__()
        if context_frames < 0 or hidden < 1:
            raise ValueError("lip mapper: context_frames must be >= 0 and hidden >= 1")
        if lookahead_frames is None:
            lookahead_frames = context_frames
        if not 0 <= lookahead_frames <= context_frames:
            raise ValueError(f"lip mapper: lookahead_frames {lookahead_frames} must be from 0 to context_frames "
                             f"({context_frames})")
        self.num_ws, self.w_dim, self.feature_dim = num_ws, w_dim, feature_dim
        self.context_frames, self.lookahead_frames = context_frames, lookahead_frames
        self.layers = resolve_layers(list(layers or []), num_ws, "lip mapper")
        if lookahead_frames == context_frames:  # the symmetric window: the same module as before the option
            self.conv = nn.Conv1d(feature_dim, hidden, kernel_size=2 * context_frames + 1, padding=context_frames)
        else:  # padded by hand in forward: k frames before, f after
            self.conv = nn.Conv1d(feature_dim, hidden, kernel_size=context_frames + 1 + lookahead_frames)
        self.pointwise = nn.Linear(hidden, hidden)
        self.identity = nn.Linear(num_ws * w_dim, 2 * hidden) if identity_conditioning else None
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.head = OffsetHead(hidden, num_ws, w_dim, self.layers)

    def forward(self, audio_features: torch.Tensor, w_id: torch.Tensor) -> torch.Tensor:
        """audio_features [b, t, c], w_id [b, l, w] -> dw_lip [b, t, l, w]."""
        if audio_features.shape[-1] != self.feature_dim:
            raise ValueError(f"lip mapper: expected {self.feature_dim} audio channels, got {audio_features.shape[-1]}")
        features = audio_features.transpose(1, 2)
        if self.lookahead_frames != self.context_frames:
            features = F.pad(features, (self.context_frames, self.lookahead_frames))
        hidden = self.pointwise(F.silu(self.conv(features).transpose(1, 2)))
        if self.identity is not None:
            scale, shift = self.identity(w_id.flatten(1)).chunk(2, dim=-1)
            hidden = hidden * (1 + scale[:, None]) + shift[:, None]
        return self.head(self.mlp(hidden))
