"""Specific behaviour of the built-in flows: the rational-quadratic spline itself, one-dimensional
flows, densities that integrate to one, and permutations."""

from __future__ import annotations

import math

import pytest
import torch

from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_flows.layers import Permutation
from styletalker_flows.rq_spline import identity_derivative_raw, rational_quadratic_spline, spline_knots


def make_flow(name: str, dim: int, context_dim: int = 2, seed: int = 0, perturb: float = 0.3):
    options = {"dim": dim, "context_dim": context_dim}
    if name != "none":
        options.update(steps=2, hidden=8)
    torch.manual_seed(seed)
    flow = build_component(get_registries(), "flow", ComponentSpec(name, options))
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(perturb * torch.randn_like(parameter))
    return flow.double()


def test_spline_is_monotonic_smooth_and_the_identity_outside_its_interval():
    torch.manual_seed(0)
    raw = torch.randn(11, dtype=torch.float64)
    x = torch.linspace(-6, 6, 24001, dtype=torch.float64)
    y, log_det = rational_quadratic_spline(x, raw.expand(len(x), 11), bound=4.0)
    assert (y[1:] > y[:-1]).all()  # strictly increasing
    outside = x.abs() > 4
    assert torch.equal(y[outside], x[outside]) and torch.equal(log_det[outside], torch.zeros_like(log_det[outside]))
    # value and derivative are continuous at every knot, the interval ends included
    knots, _ = spline_knots(raw[:4], 4.0)
    eps = 1e-9
    left, left_log_det = rational_quadratic_spline(knots - eps, raw.expand(5, 11), bound=4.0)
    right, right_log_det = rational_quadratic_spline(knots + eps, raw.expand(5, 11), bound=4.0)
    torch.testing.assert_close(left, right, atol=1e-6, rtol=0)
    torch.testing.assert_close(left_log_det, right_log_det, atol=1e-5, rtol=0)
    # between knots, central differences agree with the analytic log-derivative
    numeric = torch.log((y[2:] - y[:-2]) / (x[2:] - x[:-2]))
    away = (x[1:-1, None] - knots[None]).abs().min(dim=1).values > 1e-2
    torch.testing.assert_close(numeric[away], log_det[1:-1][away], atol=1e-3, rtol=0)


def test_spline_with_equal_bins_and_unit_derivatives_is_the_identity():
    bins = 5
    params = torch.zeros(7, 3 * bins - 1, dtype=torch.float64)
    params[:, 2 * bins:] = identity_derivative_raw()
    x = torch.linspace(-3.9, 3.9, 7, dtype=torch.float64)
    y, log_det = rational_quadratic_spline(x, params, bound=4.0)
    torch.testing.assert_close(y, x, atol=1e-6, rtol=0)
    torch.testing.assert_close(log_det, torch.zeros_like(x), atol=1e-5, rtol=0)


def test_spline_rejects_a_wrong_parameter_count():
    with pytest.raises(ValueError, match="3k - 1"):
        rational_quadratic_spline(torch.zeros(3), torch.zeros(3, 7), bound=1.0)


@pytest.mark.parametrize("name", ["none", "affine_coupling", "spline"])
def test_one_dimensional_density_integrates_to_one(name):
    """p(z | c) = N(u(z); 0, 1) |du/dz| must integrate to 1 for every context."""
    flow = make_flow(name, dim=1)
    grid = torch.linspace(-30, 30, 12001, dtype=torch.float64)[:, None]
    for seed in range(3):
        context = torch.randn(1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)).expand(len(grid), 2)
        with torch.no_grad():
            u, log_det = flow.inverse(grid, context)
        density = torch.exp(-0.5 * u[:, 0] ** 2 - 0.5 * math.log(2 * math.pi) + log_det)
        mass = torch.trapezoid(density, grid[:, 0])
        assert abs(float(mass) - 1) < 1e-3


@pytest.mark.parametrize("name", ["affine_coupling", "spline"])
def test_one_dimensional_flows_depend_on_their_context(name):
    flow = make_flow(name, dim=1)
    u = torch.zeros(2, 1, dtype=torch.float64)
    context = torch.tensor([[1.0, 0.0], [-1.0, 2.0]], dtype=torch.float64)
    z, _ = flow(u, context)
    assert (z[0] - z[1]).abs() > 1e-4


def test_permutations_are_stored_and_never_the_identity():
    for seed in range(20):
        permutation = Permutation(2, seed)
        assert permutation.order.tolist() == [1, 0]
    permutation = Permutation(5, 3)
    assert sorted(permutation.order.tolist()) == list(range(5))
    assert "order" in permutation.state_dict()
    x = torch.randn(4, 5)
    assert torch.equal(permutation.inverse(permutation(x, x)[0], x)[0], x)
