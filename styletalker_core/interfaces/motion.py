"""Motion latent model: conditional sequential VAE, autoregressive prior, normalizing flows."""

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
        """dw [b, t, l, w] (w_t - w_id), audio_features [b, t, c] -> (mean [b, t, z], log_var [b, t, z])."""

    @abc.abstractmethod
    def decode(self, z: torch.Tensor, w_id: torch.Tensor) -> torch.Tensor:
        """z [b, t, z], w_id [b, l, w] -> dw_mot [b, t, l, w]."""


class Flow(nn.Module, abc.ABC):
    """Conditional invertible map between a base sample u and a motion latent z.

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
    """Autoregressive prior p(z_t | z_<t, audio), optionally with a flow on each step.

    Attributes: z_dim, feature_dim (c of the audio features).
    """

    z_dim: int
    feature_dim: int

    @abc.abstractmethod
    def log_prob(self, z: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """z [b, t, z], audio_features [b, t, c] -> log p(z_t | z_<t, audio) [b, t] (nats)."""

    @abc.abstractmethod
    def sample(
        self,
        audio_features: torch.Tensor,
        temperature: float = 1.0,
        state: Any = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """audio_features [b, t, c] -> (z [b, t, z], state).

        Pass the returned ``state`` back to continue sampling the next chunk as if the two
        chunks had been one call.
        """
