"""Registers the metrics plugin's components: video metrics (PSNR, SSIM, LMD, CSIM, blink rate, pose diversity)."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Components are registered here as they are implemented."""
