"""Metrics as JSON lines: one object per log call, appended to ``metrics.jsonl``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TextIO

from styletalker_core.interfaces import MetricLogger


class JsonLinesLogger(MetricLogger):
    """Appends ``{"stage", "step", "time", **values}`` lines to ``<run_dir>/<filename>``."""

    def __init__(self, filename: str = "metrics.jsonl") -> None:
        self.filename = filename
        self._handle: TextIO | None = None

    def open(self, run_dir: Path) -> None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self._handle = (Path(run_dir) / self.filename).open("a", encoding="utf-8")

    def log(self, stage: str, step: int, values: dict[str, float]) -> None:
        if self._handle is None:
            raise RuntimeError("JsonLinesLogger.log called before open()")
        clean = {k: (float(v) if math.isfinite(float(v)) else str(float(v))) for k, v in values.items()}
        record = {"stage": stage, "step": int(step), "time": round(time.time(), 3), **clean}
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_jsonl(path: str | Path) -> list[dict]:
    """All records of a metrics file (for plots and tests)."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
