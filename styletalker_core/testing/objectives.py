"""Per-kind training objectives for the integration contract: a loss that exercises the kind's
interface the way training does, and a probe (a fixed forward pass) that tells two instances apart.

Inputs are drawn from a generator seeded by the step, so a run is reproducible and each step sees
new inputs. Losses are bounded (squared errors to fixed targets, likelihoods), so two steps of Adam
at a small learning rate keep them finite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.nn.functional as F

# Modules are typed Any: each objective reads the attributes of its kind's interface.
Loss = Callable[[Any, int], torch.Tensor]
Probe = Callable[[Any], torch.Tensor]


@attrs.frozen
class Objective:
    """``loss(module, step)`` -> scalar to minimise; ``probe(module)`` -> a tensor of outputs on fixed inputs."""

    loss: Loss
    probe: Probe


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _target(shape: tuple[int, ...], seed: int = 99) -> torch.Tensor:
    """Fixed targets in [-1, 1]."""
    return torch.rand(shape, generator=_rng(seed)) * 2 - 1


def _on(module: Any, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` on the device and in the floating dtype of ``module``'s first parameter or buffer."""
    reference: torch.Tensor | None = next(iter(module.parameters()), None)
    if reference is None:
        reference = next(iter(module.buffers()), None)
    return tensor if reference is None else tensor.to(reference.device, reference.dtype)


# -- generator / discriminator ----------------------------------------------------------------


def _generator_inputs(module: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    rng = _rng(seed)
    z = torch.randn(2, module.z_dim, generator=rng)
    c = torch.randn(2, module.c_dim, generator=rng) if module.c_dim > 0 else None
    return _on(module, z), None if c is None else _on(module, c)


def _generator_loss(module: Any, step: int) -> torch.Tensor:
    z, c = _generator_inputs(module, step)
    images = module.synthesis(module.mapping(z, c), noise_mode="random")
    return (images - _on(module, _target(tuple(images.shape)))).square().mean()


def _generator_probe(module: Any) -> torch.Tensor:
    z, c = _generator_inputs(module, 7)
    return module(z, c, noise_mode="const")


def _images(module: Any, seed: int, channels: int = 3) -> torch.Tensor:
    r = module.resolution
    return _on(module, torch.rand(2, channels, r, r, generator=_rng(seed)) * 2 - 1)


def _discriminator_labels(module: Any, seed: int) -> torch.Tensor | None:
    return _on(module, torch.randn(2, module.c_dim, generator=_rng(seed))) if module.c_dim > 0 else None


def _discriminator_loss(module: Any, step: int) -> torch.Tensor:
    """The non-saturating logistic loss on 'real' and 'fake' random images."""
    real, fake = _images(module, 2 * step, module.img_channels), _images(module, 2 * step + 1, module.img_channels)
    c = _discriminator_labels(module, step)
    return (F.softplus(-module(real, c)) + F.softplus(module(fake, c))).mean()


def _discriminator_probe(module: Any) -> torch.Tensor:
    return module(_images(module, 7, module.img_channels), _discriminator_labels(module, 7))


# -- encoders -----------------------------------------------------------------------------------


def _image_encoder_loss(module: Any, step: int) -> torch.Tensor:
    codes = module.encode(_images(module, step))
    return (codes - _on(module, _target(tuple(codes.shape)))).square().mean()


def _image_encoder_probe(module: Any) -> torch.Tensor:
    return module.encode(_images(module, 7))


def _wave(module: Any, seed: int, frames: int = 10) -> torch.Tensor:
    samples = frames * module.samples_per_frame
    envelope = torch.sin(torch.linspace(0, 20, samples)).abs()[None]
    return _on(module, 0.3 * torch.randn(2, samples, generator=_rng(seed)) * envelope)


def _audio_encoder_loss(module: Any, step: int) -> torch.Tensor:
    features = module.features(_wave(module, step), 10)
    return (features - _on(module, _target(tuple(features.shape)))).square().mean()


def _audio_encoder_probe(module: Any) -> torch.Tensor:
    return module.features(_wave(module, 7), 10)


def _sync_inputs(module: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = _rng(seed)
    waves = torch.randn(3, module.window_samples, generator=rng)
    faces = torch.rand(3, module.window_frames, 3, 32, 32, generator=rng) * 2 - 1
    return _on(module, waves), _on(module, faces)


def _lipsync_loss(module: Any, step: int) -> torch.Tensor:
    """Contrastive: item i's audio matches item i's mouths."""
    waves, faces = _sync_inputs(module, step)
    logits = module.logit_scale() * module.embed_audio(waves) @ module.embed_mouth(module.mouth_crop(faces)).T
    return F.cross_entropy(logits, torch.arange(len(waves), device=logits.device))


def _lipsync_probe(module: Any) -> torch.Tensor:
    waves, faces = _sync_inputs(module, 7)
    return torch.cat([module.embed_audio(waves), module.embed_mouth(module.mouth_crop(faces))])


# -- motion ---------------------------------------------------------------------------------------


def _mapper_inputs(module: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = _rng(seed)
    return (_on(module, torch.randn(2, 9, module.feature_dim, generator=rng)),
            _on(module, torch.randn(2, module.num_ws, module.w_dim, generator=rng)))


def _lip_mapper_loss(module: Any, step: int) -> torch.Tensor:
    out = module(*_mapper_inputs(module, step))
    return (out - _on(module, _target(tuple(out.shape)))).square().mean()


def _lip_mapper_probe(module: Any) -> torch.Tensor:
    return module(*_mapper_inputs(module, 7))


def _vae_inputs(module: Any, seed: int) -> tuple[torch.Tensor, ...]:
    rng = _rng(seed)
    dw = torch.randn(2, 7, module.num_ws, module.w_dim, generator=rng)
    audio = torch.randn(2, 7, module.feature_dim, generator=rng)
    w_id = torch.randn(2, module.num_ws, module.w_dim, generator=rng)
    noise = torch.randn(2, 7, module.z_dim, generator=rng)
    return tuple(_on(module, tensor) for tensor in (dw, audio, w_id, noise))


def _motion_vae_loss(module: Any, step: int) -> torch.Tensor:
    """Reconstruction of dw from a posterior sample plus the KL to N(0, 1)."""
    dw, audio, w_id, noise = _vae_inputs(module, step)
    mean, log_var = module.posterior(dw, audio)
    z = mean + (0.5 * log_var).exp() * noise
    kl = 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(-1).mean()
    return (module.decode(z, w_id) - dw).square().mean() + 0.01 * kl


def _motion_vae_probe(module: Any) -> torch.Tensor:
    dw, audio, w_id, _ = _vae_inputs(module, 7)
    mean, _ = module.posterior(dw, audio)
    return torch.cat([mean.flatten(), module.decode(mean, w_id).flatten()])


def _prior_inputs(module: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = _rng(seed)
    return (_on(module, torch.randn(2, 10, module.z_dim, generator=rng)),
            _on(module, torch.randn(2, 10, module.feature_dim, generator=rng)))


def _prior_loss(module: Any, step: int) -> torch.Tensor:
    """Negative log-likelihood per frame."""
    z, features = _prior_inputs(module, step)
    return -module.log_prob(z, features).mean() / module.z_dim


def _prior_probe(module: Any) -> torch.Tensor:
    return module.log_prob(*_prior_inputs(module, 7))


def _flow_inputs(module: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = _rng(seed)
    return (_on(module, 2 * torch.randn(16, module.dim, generator=rng)),
            _on(module, torch.randn(16, module.context_dim, generator=rng)))


def _flow_loss(module: Any, step: int) -> torch.Tensor:
    """Negative log-likelihood of z under a standard normal base, per dimension."""
    z, context = _flow_inputs(module, step)
    u, log_det = module.inverse(z, context)
    return (0.5 * u.square().sum(-1) - log_det).mean() / module.dim


def _flow_probe(module: Any) -> torch.Tensor:
    z, log_det = module(*_flow_inputs(module, 7))
    return torch.cat([z.flatten(), log_det])


# -- oracle -------------------------------------------------------------------------------------


def _oracle_readings(module: Any, seed: int) -> torch.Tensor:
    readings = module(_images(module, seed))
    return torch.cat([readings[name].reshape(2, -1) for name in sorted(readings)], dim=1)


def _oracle_loss(module: Any, step: int) -> torch.Tensor:
    readings = _oracle_readings(module, step)
    return (readings - _on(module, _target(tuple(readings.shape)))).square().mean()


def _oracle_probe(module: Any) -> torch.Tensor:
    return _oracle_readings(module, 7)


OBJECTIVES: dict[str, Objective] = {
    "generator": Objective(_generator_loss, _generator_probe),
    "discriminator": Objective(_discriminator_loss, _discriminator_probe),
    "image_encoder": Objective(_image_encoder_loss, _image_encoder_probe),
    "audio_encoder": Objective(_audio_encoder_loss, _audio_encoder_probe),
    "lipsync_discriminator": Objective(_lipsync_loss, _lipsync_probe),
    "lip_mapper": Objective(_lip_mapper_loss, _lip_mapper_probe),
    "motion_vae": Objective(_motion_vae_loss, _motion_vae_probe),
    "prior": Objective(_prior_loss, _prior_probe),
    "flow": Objective(_flow_loss, _flow_probe),
    "oracle": Objective(_oracle_loss, _oracle_probe),
}
