"""Registers the synthetic plugin's components: factor oracle, its training stage and ground-truth metrics of the synthetic domain."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Components are registered here as they are implemented."""
