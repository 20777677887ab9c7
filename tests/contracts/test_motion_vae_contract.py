"""Contract of the ``motion_vae`` kind, for every registered motion VAE built with its example options."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import MotionVAE
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

ENTRIES = list(get_registries()["motion_vae"])
IDS = [entry.name for entry in ENTRIES]


def build(name: str, seed: int = 0) -> MotionVAE:
    torch.manual_seed(seed)
    entry = get_registries()["motion_vae"].get(name)
    return build_component(get_registries(), "motion_vae", ComponentSpec(name, dict(entry.example_options)))


def inputs(vae: MotionVAE, b: int = 2, t: int = 7, seed: int = 1):
    rng = torch.Generator().manual_seed(seed)
    dw = torch.randn(b, t, vae.num_ws, vae.w_dim, generator=rng)
    audio = torch.randn(b, t, vae.feature_dim, generator=rng)
    w_id = torch.randn(b, vae.num_ws, vae.w_dim, generator=rng)
    z = torch.randn(b, t, vae.z_dim, generator=rng)
    return dw, audio, w_id, z


def test_builtin_motion_vae_is_registered():
    assert "sequential" in IDS


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_shapes(entry):
    vae = build(entry.name)
    dw, audio, w_id, z = inputs(vae)
    mean, log_var = vae.posterior(dw, audio)
    assert mean.shape == log_var.shape == (2, 7, vae.z_dim)
    assert torch.isfinite(mean).all() and torch.isfinite(log_var).all()
    assert vae.decode(z, w_id).shape == (2, 7, vae.num_ws, vae.w_dim)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_decoder_works_frame_by_frame(entry):
    """dw_mot_t depends on z_t (and w_id) only, so motion can be decoded in chunks."""
    vae = build(entry.name).eval()
    _, _, w_id, z = inputs(vae)
    whole = vae.decode(z, w_id)
    pieces = torch.cat([vae.decode(z[:, :3], w_id), vae.decode(z[:, 3:], w_id)], dim=1)
    torch.testing.assert_close(pieces, whole)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_gradients_reach_every_parameter(entry):
    vae = build(entry.name)
    dw, audio, w_id, _ = inputs(vae)
    mean, log_var = vae.posterior(dw, audio)
    z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
    (vae.decode(z, w_id).pow(2).sum() + log_var.sum()).backward()
    for name, parameter in vae.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_checkpoint_round_trip(entry, tmp_path):
    vae = build(entry.name).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "v.safetensors", {"motion_vae": vae}),
                             get_registries())["motion_vae"].eval()
    dw, audio, w_id, z = inputs(vae)
    assert torch.equal(vae.posterior(dw, audio)[0], loaded.posterior(dw, audio)[0])
    assert torch.equal(vae.decode(z, w_id), loaded.decode(z, w_id))
