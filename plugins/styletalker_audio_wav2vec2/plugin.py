"""Registers the audio_wav2vec2 plugin's components: wav2vec2 / HuBERT audio encoder."""

from __future__ import annotations

from styletalker_core.plugins import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """Components are registered here as they are implemented."""
