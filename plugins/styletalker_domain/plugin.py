"""Registers the domain plugin's components: domain pretraining stages (StyleGAN training, encoder training, joint autoencoding)."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Components are registered here as they are implemented."""
