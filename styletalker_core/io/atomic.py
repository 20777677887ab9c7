"""Atomic file writes: every file is written under a temporary name beside it and renamed into place.

A temporary is named after its output and the process writing it::

    .<output name>.<host>-<pid>.<8 hex>.tmp      e.g. .step_00000008.safetensors.gpu01-4242.1f0c9a2b.tmp

so that one left behind by a killed process (SIGKILL, power loss) is recognised and removed
the next time the same output is written: :func:`remove_stale_temporaries` removes the
temporaries of that output whose process, on this host, has ended, and never touches
anything else (files of other outputs, temporaries of running processes or other hosts).

A leaf module: it imports nothing of styletalker, so every layer (media, data, checkpoints,
reports) writes files the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

LOG = logging.getLogger(__name__)

HOST_TAG = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"
_TEMPORARY = re.compile(r"^\.(?P<inner>.+)\.(?P<host>[A-Za-z0-9]{1,16})-(?P<pid>[0-9]{1,10})\.[0-9a-f]{8}\.tmp$")
# Temporaries seen in each folder by this process, by the output they belong to. A folder is
# listed once per process (a shard folder holds thousands of files), then looked up per write.
_SEEN: dict[str, dict[str, list[str]]] = {}
_SEEN_LOCK = threading.Lock()


def temporary_path_for(destination: str | Path) -> Path:
    """A fresh temporary name beside ``destination`` that says whose output and process it is."""
    destination = Path(destination)
    return destination.parent / f".{destination.name}.{HOST_TAG}-{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _owner_of(name: str) -> tuple[str, list[tuple[str, int]]] | None:
    """(output name, [(host, pid), ...]) of a temporary's name, or None for any other name.

    A temporary of a temporary (a writer streaming into a staging file) belongs to the same output.
    """
    owners = []
    while (match := _TEMPORARY.match(name)) is not None:
        owners.append((match["host"], int(match["pid"])))
        name = match["inner"]
    return (name, owners) if owners else None


def _process_ended(pid: int) -> bool:
    if os.name != "posix" or pid <= 0:
        return False  # cannot tell: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def _temporaries_in(folder: Path) -> dict[str, list[str]]:
    key = str(folder.resolve())
    with _SEEN_LOCK:
        if key not in _SEEN:
            found: dict[str, list[str]] = {}
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                            owner = _owner_of(entry.name)
                            if owner is not None:
                                found.setdefault(owner[0], []).append(entry.name)
            except FileNotFoundError:
                return {}
            _SEEN[key] = found
        return _SEEN[key]


def remove_stale_temporaries(destination: str | Path) -> list[Path]:
    """Remove the temporaries of ``destination`` left by processes of this host that have ended.

    Called before every write of ``destination``; returns the removed paths. Temporaries of
    other outputs, of running processes and of other hosts are left alone.
    """
    destination = Path(destination)
    removed = []
    seen = _temporaries_in(destination.parent)
    with _SEEN_LOCK:
        names = list(seen.get(destination.name, []))
    for name in names:
        owner = _owner_of(name)
        assert owner is not None  # _temporaries_in lists temporaries' names only
        _, owners = owner
        if all(host == HOST_TAG and _process_ended(pid) for host, pid in owners):
            path = destination.parent / name
            path.unlink(missing_ok=True)
            removed.append(path)
            LOG.info("removed %s, a temporary left by process %d (ended)", path, owners[0][1])
            with _SEEN_LOCK:
                if name in seen.get(destination.name, []):
                    seen[destination.name].remove(name)
    return removed


def _fsync(path: Path) -> None:
    """Put ``path``'s data on disk, so that after the rename a crash cannot leave it truncated."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it over ``destination`` on success.

    On any error (Ctrl-C and SIGTERM included) the temporary file is removed and ``destination``
    is left as it was, so a crash never leaves a half-written file under the real name. The data
    is flushed to disk before the rename. Stale temporaries of ``destination`` (from killed
    processes) are removed first.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(destination)
    # The final file gets the permissions a plain open() would give (0666 minus the umask).
    # tempfile.mkstemp files are private (0600), and so are files some writers (safetensors)
    # create themselves, so the mode is read from a file created with 0666 and set again
    # before the rename.
    while True:
        temporary_path = temporary_path_for(destination)
        try:
            os.close(os.open(temporary_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    mode = stat.S_IMODE(temporary_path.stat().st_mode)
    try:
        yield temporary_path
        os.chmod(temporary_path, mode)
        _fsync(temporary_path)
        os.replace(temporary_path, destination)
    finally:
        temporary_path.unlink(missing_ok=True)


def write_text_atomic(destination: str | Path, text: str) -> None:
    """Write ``text`` to ``destination`` through :func:`atomic_path`."""
    with atomic_path(destination) as temporary:
        temporary.write_text(text)


def write_json_atomic(destination: str | Path, data: object) -> None:
    """Write ``data`` as indented JSON (keys in their order) with a final newline, atomically."""
    write_text_atomic(destination, json.dumps(data, indent=2, sort_keys=False) + "\n")
