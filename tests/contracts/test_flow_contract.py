"""Contract of the ``flow`` kind, run for every registered flow built with its example options:
exact inverse, log-determinants equal to the autograd Jacobian's, gradients reach every
parameter, shapes, and a checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import Flow
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

FLOWS = list(get_registries()["flow"])
IDS = [entry.name for entry in FLOWS]


def build(name: str, seed: int = 0, perturb: float = 0.2) -> Flow:
    """The example flow in float64, its parameters moved off their near-identity start."""
    entry = get_registries()["flow"].get(name)
    torch.manual_seed(seed)
    flow = build_component(get_registries(), "flow", ComponentSpec(name, dict(entry.example_options)))
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(perturb * torch.randn_like(parameter))
    return flow.double()


def inputs(flow: Flow, n: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    # wide enough that spline flows see both their spline interval and their identity tails
    u = 3 * torch.randn(n, flow.dim, generator=rng, dtype=torch.float64)
    context = torch.randn(n, flow.context_dim, generator=rng, dtype=torch.float64)
    return u, context


def test_builtin_flows_are_registered():
    assert {"none", "affine_coupling", "spline"} <= set(IDS)


@pytest.mark.parametrize("entry", FLOWS, ids=IDS)
def test_shapes(entry):
    flow = build(entry.name)
    assert isinstance(flow, Flow) and isinstance(flow.dim, int) and isinstance(flow.context_dim, int)
    u, context = inputs(flow)
    z, log_det = flow(u, context)
    back, inverse_log_det = flow.inverse(z, context)
    assert z.shape == u.shape and back.shape == u.shape
    assert log_det.shape == (u.shape[0],) and inverse_log_det.shape == (u.shape[0],)
    assert torch.isfinite(z).all() and torch.isfinite(log_det).all()


@pytest.mark.parametrize("entry", FLOWS, ids=IDS)
def test_inverse_undoes_forward(entry):
    flow = build(entry.name)
    u, context = inputs(flow)
    z, log_det = flow(u, context)
    back, inverse_log_det = flow.inverse(z, context)
    torch.testing.assert_close(back, u, rtol=0, atol=1e-9)
    torch.testing.assert_close(inverse_log_det, -log_det, rtol=0, atol=1e-9)
    again, _ = flow(flow.inverse(u, context)[0], context)
    torch.testing.assert_close(again, u, rtol=0, atol=1e-9)


@pytest.mark.parametrize("entry", FLOWS, ids=IDS)
def test_log_determinant_matches_the_autograd_jacobian(entry):
    flow = build(entry.name)
    u, context = inputs(flow, n=4)
    _, log_det = flow(u, context)
    z, _ = flow(u, context)
    _, inverse_log_det = flow.inverse(z, context)
    for row in range(u.shape[0]):
        forward_map = lambda x, c=context[row : row + 1]: flow(x[None], c)[0][0]  # noqa: E731
        inverse_map = lambda x, c=context[row : row + 1]: flow.inverse(x[None], c)[0][0]  # noqa: E731
        forward_jacobian = torch.autograd.functional.jacobian(forward_map, u[row])
        inverse_jacobian = torch.autograd.functional.jacobian(inverse_map, z[row])
        torch.testing.assert_close(torch.linalg.slogdet(forward_jacobian)[1], log_det[row], rtol=0, atol=1e-8)
        torch.testing.assert_close(torch.linalg.slogdet(inverse_jacobian)[1], inverse_log_det[row], rtol=0, atol=1e-8)


@pytest.mark.parametrize("entry", FLOWS, ids=IDS)
def test_gradients_reach_every_parameter(entry):
    flow = build(entry.name)
    u, context = inputs(flow, n=16)
    u.requires_grad_(True)
    context.requires_grad_(True)
    z, log_det = flow.inverse(u, context)
    loss = (z**2).sum() - log_det.sum()
    loss.backward()
    for name, parameter in flow.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert u.grad is not None and u.grad.abs().sum() > 0
    if list(flow.parameters()):  # a flow with parameters is conditional: gradients reach its context
        assert context.grad is not None and context.grad.abs().sum() > 0


@pytest.mark.parametrize("entry", FLOWS, ids=IDS)
def test_sampling_a_batch_of_base_draws(entry):
    flow = build(entry.name).float()
    torch.manual_seed(3)
    u = torch.randn(64, flow.dim)
    context = torch.randn(64, flow.context_dim)
    z, log_det = flow(u, context)
    assert z.shape == (64, flow.dim) and z.dtype == torch.float32 and log_det.shape == (64,)
    assert torch.isfinite(z).all() and z.std() > 0


@pytest.mark.parametrize("entry", FLOWS, ids=IDS)
def test_checkpoint_round_trip(entry, tmp_path):
    flow = build(entry.name).float()
    path = save_checkpoint(tmp_path / "flow.safetensors", {"flow": flow})
    loaded = load_checkpoint(path, get_registries())["flow"]
    u, context = inputs(flow)
    u, context = u.float(), context.float()
    for original, restored in zip(flow(u, context), loaded(u, context)):
        assert torch.equal(original, restored)
