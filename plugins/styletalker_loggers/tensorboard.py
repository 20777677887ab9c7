"""Metrics to TensorBoard event files, when the ``tensorboard`` package is installed."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from styletalker_core.interfaces import MetricLogger

LOG = logging.getLogger(__name__)


def tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger(MetricLogger):
    """Scalars as ``<stage>/<name>`` in ``<run_dir>/<subdir>``. Without tensorboard installed it
    logs one warning and records nothing (``pip install tensorboard`` enables it)."""

    def __init__(self, subdir: str = "tensorboard", flush_secs: int = 30) -> None:
        self.subdir = subdir
        self.flush_secs = flush_secs
        self._writer: Any = None

    def open(self, run_dir: Path) -> None:
        if not tensorboard_installed():
            LOG.warning("tensorboard is not installed; TensorBoard logging is off (pip install tensorboard)")
            return
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(Path(run_dir) / self.subdir), flush_secs=self.flush_secs)

    def log(self, stage: str, step: int, values: dict[str, float]) -> None:
        if self._writer is None:
            return
        for name, value in values.items():
            self._writer.add_scalar(f"{stage}/{name}", float(value), global_step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
