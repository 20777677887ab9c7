"""Conditional sequential VAE over motion latents."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from styletalker_core.interfaces import MotionVAE
from styletalker_motion.offsets import OffsetHead, resolve_layers


class SequentialMotionVAE(MotionVAE):
    """Posterior: a bidirectional GRU over per-frame latent offsets dw_t = w_t - w_id and audio
    features, emitting a diagonal Gaussian per frame. Decoder: an MLP of (z_t, w_id) giving
    W+ motion offsets on ``layers`` (all when empty)."""

    def __init__(
        self,
        num_ws: int,
        w_dim: int,
        feature_dim: int,
        z_dim: int = 16,
        hidden: int = 128,
        gru_layers: int = 1,
        decoder_hidden: int = 256,
        layers: list[int] | None = None,
        audio_conditioning: bool = True,
    ) -> None:
        super().__init__()
        self.num_ws, self.w_dim, self.feature_dim, self.z_dim = num_ws, w_dim, feature_dim, z_dim
        self.layers = resolve_layers(list(layers or []), num_ws, "motion VAE")
        self.audio_conditioning = audio_conditioning
        self.frame_in = nn.Linear(num_ws * w_dim, hidden)
        self.audio_in = nn.Linear(feature_dim, hidden) if audio_conditioning else None
        self.gru = nn.GRU(2 * hidden if audio_conditioning else hidden, hidden, num_layers=gru_layers,
                          batch_first=True, bidirectional=True)
        self.to_gaussian = nn.Linear(2 * hidden, 2 * z_dim)
        self.identity_in = nn.Linear(num_ws * w_dim, decoder_hidden)
        self.decoder = nn.Sequential(
            nn.Linear(z_dim + decoder_hidden, decoder_hidden), nn.SiLU(),
            nn.Linear(decoder_hidden, decoder_hidden), nn.SiLU(),
        )
        self.head = OffsetHead(decoder_hidden, num_ws, w_dim, self.layers)

    def posterior(self, dw: torch.Tensor, audio_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """dw [b, t, l, w], audio_features [b, t, c] -> (mean [b, t, z], log_var [b, t, z])."""
        inputs = F.silu(self.frame_in(dw.flatten(2)))
        if self.audio_in is not None:
            inputs = torch.cat([inputs, F.silu(self.audio_in(audio_features))], dim=-1)
        mean, raw = self.to_gaussian(self.gru(inputs)[0]).chunk(2, dim=-1)
        return mean, 8.0 * torch.tanh(raw / 8.0)  # log variance softly kept in [-8, 8]

    def decode(self, z: torch.Tensor, w_id: torch.Tensor) -> torch.Tensor:
        """z [b, t, z], w_id [b, l, w] -> dw_mot [b, t, l, w]."""
        identity = F.silu(self.identity_in(w_id.flatten(1)))[:, None].expand(-1, z.shape[1], -1)
        return self.head(self.decoder(torch.cat([z, identity], dim=-1)))
