"""Registers the audio_wav2vec2 plugin's components: wav2vec2 / HuBERT audio encoder."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar

# A tiny model with the real layout (7 conv layers, stride 320) for tests and CPU demos.
TINY_OPTIONS = {
    "architecture": "base",
    "embed_dim": 32,
    "num_layers": 2,
    "num_heads": 2,
    "ff_dim": 64,
    "conv_channels": 16,
    "pos_conv_kernel": 8,
    "pos_conv_groups": 2,
    "feature_dim": 24,
}


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    """audio_encoder 'wav2vec2'."""
    from styletalker_audio_wav2vec2.encoder import Wav2Vec2AudioEncoder

    registrar.register("audio_encoder", "wav2vec2", Wav2Vec2AudioEncoder, example_options=dict(TINY_OPTIONS))
