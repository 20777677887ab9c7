"""Registers the stylegan2 plugin's components: StyleGAN2 generator and discriminator, and importers of NVlabs and rosinality checkpoints."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Components are registered here as they are implemented."""
