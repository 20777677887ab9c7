"""Audio conditioning of the prior: a temporal convolution over past and future feature frames.

Step t reads features t - history .. t + lookahead. Features before the sequence start and
after its end are zeros; in chunked use the caller carries the last ``history`` frames
(state) and passes the next ``lookahead`` frames (future), so chunks agree with one pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AudioWindow(nn.Module):
    """features [b, t, c] -> conditioning [b, t, out] from a (history + 1 + lookahead)-frame window."""

    def __init__(self, feature_dim: int, out_dim: int, history: int, lookahead: int) -> None:
        super().__init__()
        if history < 0 or lookahead < 0:
            raise ValueError("prior: audio_history and lookahead must be >= 0")
        self.feature_dim, self.history, self.lookahead = feature_dim, history, lookahead
        self.conv = nn.Conv1d(feature_dim, out_dim, kernel_size=history + 1 + lookahead)
        self.mix = nn.Linear(out_dim, out_dim)

    def forward(
        self, features: torch.Tensor, past: torch.Tensor | None = None, future: torch.Tensor | None = None
    ) -> torch.Tensor:
        """features [b, t, c]; past [b, history, c] (None: zeros); future [b, f, c] (None: zeros;
        only the first ``lookahead`` frames are read, missing ones count as zeros) -> [b, t, out]."""
        b, _, c = features.shape
        if past is None:
            past = features.new_zeros(b, self.history, c)
        ahead = features.new_zeros(b, self.lookahead, c)
        if future is not None and self.lookahead:
            given = future[:, : self.lookahead]
            ahead[:, : given.shape[1]] = given
        padded = torch.cat([past, features, ahead], dim=1)
        conditioning = self.conv(padded.transpose(1, 2)).transpose(1, 2)
        return self.mix(F.silu(conditioning))

    def carry(self, past: torch.Tensor | None, features: torch.Tensor) -> torch.Tensor:
        """The ``history`` frames preceding the next chunk: [b, history, c]."""
        b, _, c = features.shape
        if past is None:
            past = features.new_zeros(b, self.history, c)
        joined = torch.cat([past, features], dim=1)
        return joined[:, joined.shape[1] - self.history :]
