"""Adversarial terms of StyleGAN2 training, shared by the GAN stage and the adversarial autoencoder.

Non-saturating logistic loss (Goodfellow et al. 2014) and the R1 gradient penalty on real
images (Mescheder et al. 2018). Axis letters: b batch, h/w height/width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: mean softplus(-D(fake)); logits [b, 1] -> []."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic discriminator loss: mean softplus(D(fake)) + mean softplus(-D(real)) -> []."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """Squared gradient norm of D's logits at real images [b, 3, h, w] -> [b] (create_graph for training)."""
    real = real.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
    return gradient.pow(2).sum(dim=(1, 2, 3))


def lazy_adam_settings(interval: int, beta1: float, beta2: float) -> tuple[float, tuple[float, float]]:
    """(learning-rate scale, betas) of an optimiser whose regulariser runs every ``interval`` steps
    (StyleGAN2's lazy regularisation: c = interval / (interval + 1); 0 means no lazy regulariser)."""
    ratio = interval / (interval + 1) if interval > 0 else 1.0
    return ratio, (beta1**ratio, beta2**ratio)
