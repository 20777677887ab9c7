"""Contract of the ``prior`` kind, for every registered prior built with its example options:
shapes, exactness of chunked sampling with carried state, gradients, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import Prior
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

ENTRIES = list(get_registries()["prior"])
IDS = [entry.name for entry in ENTRIES]


def build(name: str, seed: int = 0) -> Prior:
    torch.manual_seed(seed)
    entry = get_registries()["prior"].get(name)
    return build_component(get_registries(), "prior", ComponentSpec(name, dict(entry.example_options)))


def audio(prior: Prior, b: int = 2, t: int = 10, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, prior.feature_dim, generator=torch.Generator().manual_seed(seed))


def test_builtin_prior_is_registered():
    assert "autoregressive" in IDS


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_shapes(entry):
    prior = build(entry.name).eval()
    assert isinstance(prior.z_dim, int) and isinstance(prior.feature_dim, int) and isinstance(prior.lookahead, int)
    features = audio(prior)
    z, state = prior.sample(features, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 10, prior.z_dim) and torch.isfinite(z).all()
    log_p = prior.log_prob(z, features)
    assert log_p.shape == (2, 10) and torch.isfinite(log_p).all()


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_sampling_is_reproducible_and_chunks_continue_exactly(entry):
    prior = build(entry.name).eval()
    features = audio(prior, t=12)
    with torch.no_grad():
        first, _ = prior.sample(features, 0.7, generator=torch.Generator().manual_seed(3))
        again, _ = prior.sample(features, 0.7, generator=torch.Generator().manual_seed(3))
        rng = torch.Generator().manual_seed(3)
        head, state = prior.sample(features[:, :5], 0.7, None, rng, future=features[:, 5:])
        tail, _ = prior.sample(features[:, 5:], 0.7, state, rng)
    assert torch.equal(first, again)
    torch.testing.assert_close(torch.cat([head, tail], dim=1), first, atol=1e-5, rtol=0)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_gradients_reach_every_parameter(entry):
    prior = build(entry.name)
    features = audio(prior)
    z = torch.randn(2, 10, prior.z_dim, generator=torch.Generator().manual_seed(2), requires_grad=True)
    (-prior.log_prob(z, features).mean()).backward()
    for name, parameter in prior.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_checkpoint_round_trip(entry, tmp_path):
    prior = build(entry.name).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "p.safetensors", {"prior": prior}), get_registries())["prior"].eval()
    features = audio(prior)
    z, _ = prior.sample(features, generator=torch.Generator().manual_seed(5))
    assert torch.equal(prior.log_prob(z, features), loaded.log_prob(z, features))
    z_loaded, _ = loaded.sample(features, generator=torch.Generator().manual_seed(5))
    assert torch.equal(z, z_loaded)
