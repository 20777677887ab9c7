"""Where the shipped files are, and relative paths looked up from there.

The project ships files beside its code: ``checkpoints/*.safetensors``, ``recipes/*.toml`` and
``assets/``. An installed wheel holds them as the package data of ``styletalker_shipped`` (a
data-only package whose folder, in the repository, is the project folder itself: setup.py), read
with :mod:`importlib.resources`; a source checkout (the editable install) has them in the project
folder. Either way :data:`SHIPPED_ROOT` is the folder holding those three, so a recipe naming
``checkpoints/...`` works from any working directory.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

SHIPPED_PACKAGE = "styletalker_shipped"
# The folder above the styletalker_core package: the project folder when running from a checkout.
CHECKOUT = Path(__file__).resolve().parents[1]


def shipped_root() -> Path:
    """The folder holding the shipped ``checkpoints/``, ``recipes/`` and ``assets/``: the package data
    of an installed wheel, else the project folder of the source checkout this code runs from."""
    try:
        recipes = importlib.resources.files(SHIPPED_PACKAGE).joinpath("recipes")
    except (ModuleNotFoundError, NotADirectoryError):
        # A source checkout: its editable install maps styletalker_shipped onto the project folder (and
        # Python 3.11 cannot read that namespace mapping: NotADirectoryError), or predates the package.
        return CHECKOUT
    return Path(str(recipes)).parent.resolve()


SHIPPED_ROOT = shipped_root()
# The project folder in a checkout; for an installed wheel, the folder of its shipped files.
PROJECT_ROOT = SHIPPED_ROOT


def find_project_file(path: str | Path) -> Path:
    """``path`` as given when it exists there (or is absolute), else relative to the shipped files'
    folder (which may not hold it either: callers report a missing file with their own advice)."""
    candidate = Path(path)
    if candidate.is_file() or candidate.is_absolute():
        return candidate
    return SHIPPED_ROOT / candidate
