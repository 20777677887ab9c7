"""Registers the lipsync plugin's components: contrastive lip-sync discriminator, its pretraining stage and the SyncNet-protocol metric."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Components are registered here as they are implemented."""
