"""Registers the e4e plugin's components: e4e / pSp image encoder, its training stages and checkpoint importers."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Components are registered here as they are implemented."""
