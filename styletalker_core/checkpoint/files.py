"""File-level helpers for checkpoints: atomic writes and recognising what a file is."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from styletalker_core.errors import CheckpointError

PICKLE_HINT = (
    "it is a pickle; styletalker never unpickles checkpoints: convert it first with "
    "`styletalker convert {path} OUT.safetensors`"
)


@contextlib.contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it over ``destination`` on success.

    On any error the temporary file is removed and ``destination`` is left as it was, so a
    crash never leaves a half-written file under the real name.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    # The final file gets the permissions a plain open() would give (0666 minus the umask).
    # tempfile.mkstemp files are private (0600), and so are files some writers (safetensors)
    # create themselves, so the mode is read from a file created with 0666 and set again
    # before the rename.
    while True:
        temporary_path = destination.parent / f".{destination.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(temporary_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    mode = stat.S_IMODE(temporary_path.stat().st_mode)
    try:
        yield temporary_path
        os.chmod(temporary_path, mode)
        os.replace(temporary_path, destination)
    finally:
        temporary_path.unlink(missing_ok=True)


def write_text_atomic(destination: str | Path, text: str) -> None:
    with atomic_path(destination) as temporary:
        temporary.write_text(text)


def write_json_atomic(destination: str | Path, data: object) -> None:
    write_text_atomic(destination, json.dumps(data, indent=2, sort_keys=False) + "\n")


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
