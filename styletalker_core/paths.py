"""The project folder, and relative paths looked up from it.

The project installs in editable mode, so files it ships (checkpoints/, recipes/, assets/) sit
beside the ``styletalker_core`` package. A recipe naming ``checkpoints/...`` then works from any
working directory.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def find_project_file(path: str | Path) -> Path:
    """``path`` as given when it exists there (or is absolute), else relative to the project folder
    (which may not exist either: callers report a missing file with their own advice)."""
    candidate = Path(path)
    if candidate.is_file() or candidate.is_absolute():
        return candidate
    return PROJECT_ROOT / candidate
