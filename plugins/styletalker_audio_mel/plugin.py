"""Registers the audio_mel plugin's components: mel-spectrogram audio encoder."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """audio_encoder 'mel'."""
    from styletalker_audio_mel.encoder import MelAudioEncoder

    registrar.register(
        "audio_encoder",
        "mel",
        MelAudioEncoder,
        example_options={"feature_dim": 16, "hidden_channels": 16, "num_layers": 2, "norm_groups": 4},
    )
