"""Registers the flows plugin's components: normalizing flows for the motion prior (none, affine coupling, rational-quadratic spline)."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Flows ``none``, ``affine_coupling`` and ``spline`` (``dim`` and ``context_dim`` are wired by the prior)."""
    from styletalker_flows.affine import AffineCouplingFlow
    from styletalker_flows.identity import IdentityFlow
    from styletalker_flows.spline import SplineFlow

    small = {"dim": 3, "context_dim": 4}
    registrar.register("flow", "none", IdentityFlow, example_options=small)
    registrar.register("flow", "affine_coupling", AffineCouplingFlow, example_options={**small, "steps": 2, "hidden": 8})
    registrar.register("flow", "spline", SplineFlow, example_options={**small, "steps": 2, "bins": 4, "hidden": 8})
