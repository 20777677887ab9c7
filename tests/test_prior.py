"""The autoregressive prior: exact likelihood (integrates to one), sampling consistent with it,
chunked sampling with carried state equal to one pass, causality, and multi-modality from the flow."""

from __future__ import annotations

import math

import pytest
import torch

from styletalker_core.errors import RegistryError
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_motion.backbones import build_backbone

FLOWS = ["none", "affine_coupling", "spline"]
BACKBONES = ["gru", "lstm", "transformer"]


def make_prior(flow: str = "affine_coupling", backbone: str = "gru", z_dim: int = 1, feature_dim: int = 3,
               seed: int = 0, perturb: float = 0.2, **options):
    flow_table = {"name": flow} if flow == "none" else {"name": flow, "steps": 2, "hidden": 8}
    spec = ComponentSpec("autoregressive", {"z_dim": z_dim, "hidden": 12, "audio_hidden": 6, "backbone": backbone,
                                            "window": 4, "heads": 2, "flow": flow_table, **options})
    torch.manual_seed(seed)
    prior = build_component(get_registries(), "prior", spec, feature_dim=feature_dim)
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.add_(perturb * torch.randn_like(parameter))
    return prior.double().eval()


@pytest.mark.parametrize("flow", FLOWS)
def test_likelihood_of_one_step_integrates_to_one(flow):
    prior = make_prior(flow)
    audio = torch.randn(1, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grid = torch.linspace(-25, 25, 10001, dtype=torch.float64)
    with torch.no_grad():
        log_p = prior.log_prob(grid[:, None, None], audio.expand(len(grid), 1, 3))[:, 0]
    assert abs(float(torch.trapezoid(log_p.exp(), grid)) - 1) < 2e-3


@pytest.mark.parametrize("flow", ["affine_coupling", "spline"])
def test_likelihood_of_two_steps_integrates_to_one(flow):
    """The joint of z_0 and z_1 | z_0 (the second step conditioned on the first) has mass 1."""
    prior = make_prior(flow)
    audio = torch.randn(1, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    axis = torch.linspace(-12, 12, 481, dtype=torch.float64)
    z0, z1 = torch.meshgrid(axis, axis, indexing="ij")
    z = torch.stack([z0.flatten(), z1.flatten()], dim=1)[..., None]
    with torch.no_grad():
        joint = prior.log_prob(z, audio.expand(len(z), 2, 3)).sum(-1).exp().view(len(axis), len(axis))
    mass = torch.trapezoid(torch.trapezoid(joint, axis, dim=1), axis)
    assert abs(float(mass) - 1) < 5e-3


def test_samples_follow_the_likelihood():
    """The histogram of many one-step samples matches exp(log_prob) (both from the same prior)."""
    prior = make_prior("spline", perturb=0.4)
    audio = torch.randn(1, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).expand(20000, 1, 3)
    with torch.no_grad():
        z, _ = prior.sample(audio, generator=torch.Generator().manual_seed(4))
        edges = torch.linspace(float(z.min()), float(z.max()), 41, dtype=torch.float64)
        centres = 0.5 * (edges[1:] + edges[:-1])
        density = prior.log_prob(centres[:, None, None], audio[: len(centres)]).exp()[:, 0]
    counts = torch.histogram(z.flatten(), edges).hist
    expected = density * (edges[1] - edges[0]) * len(z)
    assert (counts - expected).abs().sum() / len(z) < 0.06  # total variation between the two, in mass


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("flow", FLOWS)
def test_chunked_sampling_with_carried_state_equals_one_pass(backbone, flow):
    prior = make_prior(flow, backbone, z_dim=3, lookahead=2, audio_history=3)
    audio = torch.randn(2, 17, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        whole, _ = prior.sample(audio, temperature=0.8, generator=torch.Generator().manual_seed(6))
        rng, state, pieces = torch.Generator().manual_seed(6), None, []
        for start, stop in [(0, 1), (1, 7), (7, 8), (8, 17)]:
            piece, state = prior.sample(audio[:, start:stop], 0.8, state, rng, future=audio[:, stop:])
            pieces.append(piece)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-12, rtol=0)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_backbone_steps_equal_the_teacher_forced_sequence(backbone):
    torch.manual_seed(0)
    network = build_backbone(backbone, input_dim=5, hidden=8, layers=2, heads=2, window=3).double()
    inputs = torch.randn(2, 11, 5, dtype=torch.float64)
    sequence = network.sequence(inputs)
    state, steps = None, []
    for t in range(inputs.shape[1]):
        hidden, state = network.step(inputs[:, t], state)
        steps.append(hidden)
    torch.testing.assert_close(torch.stack(steps, dim=1), sequence, atol=1e-12, rtol=0)
    if backbone == "transformer":  # the carried cache stays bounded by the window
        assert all(cache.shape[1] == 2 for cache in state)


def test_log_prob_is_causal_in_z_and_reads_audio_only_up_to_the_lookahead():
    prior = make_prior("affine_coupling", z_dim=2, lookahead=1, audio_history=1)
    rng = torch.Generator().manual_seed(7)
    z = torch.randn(1, 6, 2, dtype=torch.float64, generator=rng)
    audio = torch.randn(1, 6, 3, dtype=torch.float64, generator=rng)
    base = prior.log_prob(z, audio)
    later_z = z.clone()
    later_z[:, 4] += 1.0
    changed = prior.log_prob(later_z, audio) != base
    assert changed[0].tolist() == [False, False, False, False, True, True]
    later_audio = audio.clone()
    later_audio[:, 4] += 1.0
    changed = prior.log_prob(z, later_audio) != base
    assert changed[0].tolist() == [False, False, False, True, True, True]  # step 3 looks one frame ahead


def test_future_features_at_the_end_of_a_sequence_count_as_zeros():
    prior = make_prior("spline", z_dim=2, lookahead=2)
    rng = torch.Generator().manual_seed(8)
    z = torch.randn(1, 5, 2, dtype=torch.float64, generator=rng)
    audio = torch.randn(1, 5, 3, dtype=torch.float64, generator=rng)
    none = prior.log_prob(z, audio)
    zeros = prior.log_prob(z, audio, future=torch.zeros(1, 2, 3, dtype=torch.float64))
    real = prior.log_prob(z, audio, future=torch.ones(1, 2, 3, dtype=torch.float64))
    assert torch.equal(none, zeros)
    assert not torch.equal(none[:, -2:], real[:, -2:]) and torch.equal(none[:, :-2], real[:, :-2])


def test_temperature_zero_is_deterministic_and_temperature_widens_samples():
    prior = make_prior("affine_coupling", z_dim=2)
    audio = torch.randn(1, 8, 3, dtype=torch.float64).expand(400, 8, 3)
    with torch.no_grad():
        cold, _ = prior.sample(audio, temperature=0.0, generator=torch.Generator().manual_seed(0))
        warm, _ = prior.sample(audio, temperature=0.5, generator=torch.Generator().manual_seed(0))
        hot, _ = prior.sample(audio, temperature=1.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(cold, cold[:1].expand_as(cold), atol=1e-12, rtol=0)
    assert 0 < warm.std(0).mean() < hot.std(0).mean()


def bimodal_data(count: int, generator: torch.Generator) -> torch.Tensor:
    """One-step sequences whose z is +-2 (equally likely) plus small noise: [count, 1, 1]."""
    sign = torch.randint(0, 2, (count, 1, 1), generator=generator) * 2 - 1
    return 2.0 * sign + 0.3 * torch.randn(count, 1, 1, generator=generator)


def fitted_nll(flow: str, steps: int = 100) -> float:
    torch.manual_seed(0)
    prior = make_prior(flow, perturb=0.0).float().train()
    optimizer = torch.optim.Adam(prior.parameters(), lr=1e-2)
    rng = torch.Generator().manual_seed(1)
    audio = torch.zeros(256, 1, 3)
    for _ in range(steps):
        loss = -prior.log_prob(bimodal_data(256, rng), audio).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        held_out = bimodal_data(4000, torch.Generator().manual_seed(99))
        return float(-prior.log_prob(held_out, torch.zeros(4000, 1, 3)).mean())


def test_a_flow_lets_the_prior_fit_a_bimodal_motion_a_gaussian_cannot():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of tiny steps: threading only adds overhead
    try:
        gaussian, flow = fitted_nll("none"), fitted_nll("spline")
    finally:
        torch.set_num_threads(threads)
    best_gaussian = 0.5 * math.log(2 * math.pi * math.e * (4 + 0.09))  # NLL of the moment-matched normal
    assert gaussian > best_gaussian - 0.05
    assert flow < gaussian - 0.5


def test_the_flow_comes_from_the_registries_the_prior_is_built_from():
    """No global lookup: registries holding their own 'spline' (and 'affine_coupling', the default)
    give the prior those flows, in a recipe table and as the parameter's default."""
    from conftest import TEST_ORIGIN, TinyAffineFlow

    from styletalker_core.registry import Registrar, Registries
    from styletalker_motion import plugin as motion_plugin

    def motion_only() -> Registries:  # the motion plugin's components (the prior among them), no flows
        fresh = Registries()
        motion_plugin.styletalker_register(registrar=Registrar(fresh, TEST_ORIGIN))
        return fresh

    registries = motion_only()
    for name in ("spline", "affine_coupling"):
        registries["flow"].register(name, TinyAffineFlow, TEST_ORIGIN)
    options = {"z_dim": 2, "hidden": 6, "audio_hidden": 4}
    named = build_component(registries, "prior", ComponentSpec("autoregressive", {**options, "flow": {"name": "spline"}}),
                            feature_dim=3)
    default = build_component(registries, "prior", ComponentSpec("autoregressive", options), feature_dim=3)
    for prior in (named, default):
        assert type(prior.flow) is TinyAffineFlow
        assert (prior.flow.dim, prior.flow.context_dim) == (2, 6)  # wired by the prior
        z, _ = prior.sample(torch.randn(1, 4, 3))
        assert z.shape == (1, 4, 2) and prior.log_prob(z, torch.randn(1, 4, 3)).shape == (1, 4)
    # what a checkpoint records: the recipe's nested table as written; the default is not recorded
    assert named.component_spec.options["flow"] == ComponentSpec("spline")
    assert "flow" not in default.component_spec.options
    # registries without that flow: the prior cannot fall back on the installed plugins
    bare = motion_only()
    with pytest.raises(RegistryError, match="unknown flow 'affine_coupling': no flow is registered"):
        build_component(bare, "prior", ComponentSpec("autoregressive", options), feature_dim=3)
