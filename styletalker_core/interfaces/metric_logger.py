"""Training metric loggers (JSON lines, TensorBoard, ...)."""

from __future__ import annotations

import abc
from pathlib import Path


class MetricLogger(abc.ABC):
    """Receives scalar metrics from the training engine (rank 0 only)."""

    @abc.abstractmethod
    def open(self, run_dir: Path) -> None:
        """Start writing into ``run_dir`` (appending when resuming)."""

    @abc.abstractmethod
    def log(self, stage: str, step: int, values: dict[str, float]) -> None:
        """Record scalar ``values`` for ``stage`` at global ``step``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release files."""
