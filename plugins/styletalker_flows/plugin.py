"""Registers the flows plugin's components: normalizing flows for the motion prior (none, affine coupling, rational-quadratic spline)."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Components are registered here as they are implemented."""
