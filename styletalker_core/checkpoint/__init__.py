"""Checkpoints: safetensors weights with JSON metadata; loading never unpickles."""

from styletalker_core.checkpoint.files import require_safetensors, sniff_format
from styletalker_core.checkpoint.format import (
    Checkpoint,
    load_checkpoint,
    load_component_weights,
    load_state_strict,
    read_metadata,
    read_tensors,
    save_checkpoint,
)

__all__ = [
    "Checkpoint",
    "load_checkpoint",
    "load_component_weights",
    "load_state_strict",
    "read_metadata",
    "read_tensors",
    "require_safetensors",
    "save_checkpoint",
    "sniff_format",
]
