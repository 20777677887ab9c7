"""The latent arithmetic of StyleTalker, shared by training and inference.

    w_t = w_id + dw_lip_t + pose_scale * dw_mot_t        (dw_mot = 0 in still mode)

and the motion KL of the main stage, E_q[log q(z) - log p(z)], by Monte-Carlo.
"""

from __future__ import annotations

import math

import torch

from styletalker_core.interfaces import Prior

LOG_2PI = math.log(2 * math.pi)


def compose(w_id: torch.Tensor, dw_lip: torch.Tensor, dw_mot: torch.Tensor | None, pose_scale: float = 1.0) -> torch.Tensor:
    """w_id [b, l, w], dw_lip [b, t, l, w], dw_mot [b, t, l, w] or None (still) -> w [b, t, l, w]."""
    ws = w_id[:, None] + dw_lip
    if dw_mot is not None:
        ws = ws + pose_scale * dw_mot
    return ws


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample of N(mean, exp(log_var)) that gradients pass through: [..., z]."""
    device = generator.device if generator is not None else mean.device
    noise = torch.randn(mean.shape, generator=generator, device=device, dtype=mean.dtype).to(mean.device)
    return mean + (0.5 * log_var).exp() * noise


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(log_var)) summed over the last axis: [...]."""
    return -0.5 * ((z - mean) ** 2 * (-log_var).exp() + log_var + LOG_2PI).sum(-1)


def motion_kl(
    prior: Prior,
    z: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    audio_features: torch.Tensor,
    future: torch.Tensor | None = None,
) -> torch.Tensor:
    """Single-sample Monte-Carlo KL(q || p) per frame: log q(z) - log p(z), z [b, t, z] drawn
    from q = N(mean, exp(log_var)) -> [b, t] nats (its expectation over z is the KL)."""
    return gaussian_log_prob(z, mean, log_var) - prior.log_prob(z, audio_features, future=future)
