"""Motion latent model: conditional sequential VAE, autoregressive prior, normalizing flows.

The motion latent z_t (``z_dim`` numbers per video frame, default 16) carries what the
audio does not explain: head pose, blinks, non-lip expression. The VAE's posterior reads
it from a driving video's W+ latents, its decoder turns it into W+ offsets, and the prior
samples it from audio alone.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn


class MotionVAE(nn.Module, abc.ABC):
    """Posterior q(z | frame latents, audio) and decoder (z_t, w_id) -> motion offsets.

    Attributes: z_dim, num_ws, w_dim, feature_dim (c of the audio features).
    """

    z_dim: int
    num_ws: int
    w_dim: int
    feature_dim: int

    @abc.abstractmethod
    def posterior(self, dw: torch.Tensor, audio_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """dw [b, t, l, w] (w_t - w_id), audio_features [b, t, c] -> (mean [b, t, z], log_var [b, t, z]).

        The posterior sees the whole sequence (it may be bidirectional); ``audio_features``
        may be all zeros when the driving video has no audio.
        """

    @abc.abstractmethod
    def decode(self, z: torch.Tensor, w_id: torch.Tensor) -> torch.Tensor:
        """z [b, t, z], w_id [b, l, w] -> dw_mot [b, t, l, w]; frame by frame (no temporal context)."""


class Flow(nn.Module, abc.ABC):
    """Conditional invertible map between a base sample u and a motion latent z.

    ``forward`` and ``inverse`` are exact inverses of each other for every context, and the
    log-determinants they return are those of the map's Jacobian (not estimates).
    Attributes: dim (z), context_dim (h of the conditioning hidden state).
    """

    dim: int
    context_dim: int

    @abc.abstractmethod
    def forward(self, u: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampling direction. u [n, z], context [n, h] -> (z [n, z], log|det dz/du| [n])."""

    @abc.abstractmethod
    def inverse(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density direction. z [n, z], context [n, h] -> (u [n, z], log|det du/dz| [n])."""


class Prior(nn.Module, abc.ABC):
    """Autoregressive prior p(z_t | z_<t, a_<=t+k), optionally with a flow on each step.

    Step t reads the audio features of frames up to t + ``lookahead`` (k); features past
    the end of the sequence count as zeros. Attributes: z_dim, feature_dim (c of the audio
    features), lookahead (k, video frames).
    """

    z_dim: int
    feature_dim: int
    lookahead: int = 0

    @abc.abstractmethod
    def log_prob(
        self, z: torch.Tensor, audio_features: torch.Tensor, future: torch.Tensor | None = None
    ) -> torch.Tensor:
        """z [b, t, z], audio_features [b, t, c] -> log p(z_t | z_<t, audio) [b, t] (nats), exact.

        The sequence starts at t = 0 (no earlier z). ``future`` [b, f, c]: features of the
        frames after the last one (None: zeros), as in :meth:`sample`.
        """

    @abc.abstractmethod
    def sample(
        self,
        audio_features: torch.Tensor,
        temperature: float = 1.0,
        state: Any = None,
        generator: torch.Generator | None = None,
        future: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """audio_features [b, t, c] -> (z [b, t, z], state), drawn step by step.

        ``temperature`` scales the base Gaussian's standard deviation (0: its mean).
        ``future`` [b, f, c] holds the features of the frames right after this chunk (the
        first ``lookahead`` of them are read); None means the sequence ends here. Passing
        the returned ``state`` and the next chunk continues sampling exactly as one call
        over the whole sequence would, with the same ``generator``.
        """
