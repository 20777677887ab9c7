"""Progress bars: one switch for every command, engine and stage.

Bars go to stderr and show only on a terminal: they are hidden when stderr is not one (logs, CI,
pipes), and when ``STYLETALKER_PROGRESS=0``, which the commands' ``--no-progress`` sets for the
whole process (stages deep inside the engine, and worker processes, inherit it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

PROGRESS_ENV = "STYLETALKER_PROGRESS"  # "0" hides progress bars
T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether progress bars show: stderr is a terminal and ``STYLETALKER_PROGRESS`` is not "0"."""
    stream = sys.stderr
    return os.environ.get(PROGRESS_ENV, "1") != "0" and stream is not None and stream.isatty()


def hide_progress() -> None:
    """Hide every progress bar of this process and the processes it starts (``--no-progress``)."""
    os.environ[PROGRESS_ENV] = "0"


def progress_bar(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
                 **options: Any) -> tqdm:
    """``iterable`` wrapped in a tqdm bar with an ETA (``total`` items), shown when :func:`progress_enabled`;
    the finished bar stays (its line says how long the pass took)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not progress_enabled(), dynamic_ncols=True,
                **options)
