"""File-level helpers for checkpoints: recognising what a file is, and whether a safetensors file is whole.

Checkpoints are written atomically with :mod:`styletalker_core.io.atomic`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from styletalker_core.errors import CheckpointError

PICKLE_HINT = (
    "it is a pickle; styletalker never unpickles checkpoints: convert it first with "
    "`styletalker convert {path} OUT.safetensors`"
)


def sniff_format(path: str | Path) -> str:
    """'safetensors', 'pickle', 'torch-zip' (torch.save archive, pickle inside) or 'unknown'."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(16)
    size = path.stat().st_size
    if head[:2] == b"PK":
        return "torch-zip"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6):
        return "pickle"
    if len(head) >= 9:
        (header_length,) = struct.unpack("<Q", head[:8])
        if 0 < header_length <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    return "unknown"


def require_safetensors(path: str | Path) -> Path:
    """``path`` as a Path if it is a readable safetensors file; otherwise one clear CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    kind = sniff_format(path)
    if kind in ("pickle", "torch-zip"):
        raise CheckpointError(f"{path}: not a safetensors checkpoint; " + PICKLE_HINT.format(path=path))
    if kind != "safetensors":
        raise CheckpointError(f"{path}: not a safetensors checkpoint (unrecognised or truncated file)")
    return path


def safetensors_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a complete safetensors file, or None when it is.

    Reads only the header: its length, its JSON, and whether the file is exactly as long as
    the tensors' offsets say (a write cut by a kill or a full disk leaves it shorter).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if size < 8:
        return f"truncated: {size} bytes"
    with path.open("rb") as handle:
        (header_length,) = struct.unpack("<Q", handle.read(8))
        if header_length == 0 or header_length > size - 8:
            return f"truncated or not safetensors: a {header_length}-byte header in a {size}-byte file"
        raw = handle.read(header_length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "its header is not valid JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            return f"tensor {key!r} has no valid data offsets"
    expected = 8 + header_length + end
    if size < expected:
        return f"truncated: {size} of {expected} bytes"
    if size > expected:
        return f"{size - expected} bytes longer than its header says"
    return None
