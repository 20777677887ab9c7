"""Checkpoints: safetensors weights with JSON metadata; loading never unpickles."""

from styletalker_core.checkpoint.files import atomic_path, require_safetensors, sniff_format, write_json_atomic
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
    "atomic_path",
    "load_checkpoint",
    "load_component_weights",
    "load_state_strict",
    "read_metadata",
    "read_tensors",
    "require_safetensors",
    "save_checkpoint",
    "sniff_format",
    "write_json_atomic",
]
