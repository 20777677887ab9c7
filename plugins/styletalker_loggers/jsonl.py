"""Metrics as JSON lines: one object per log call, appended to ``metrics.jsonl``.

A resumed stage starts again from its last checkpoint, so the training loop calls
:meth:`JsonLinesLogger.rewind` first: the lines that stage logged after the checkpoint's step
(and a last line cut by a kill) are dropped, and each step appears once.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TextIO

from styletalker_core.interfaces import MetricLogger
from styletalker_core.io.atomic import write_text_atomic


class JsonLinesLogger(MetricLogger):
    """Appends ``{"stage", "step", "time", **values}`` lines to ``<run_dir>/<filename>``."""

    def __init__(self, filename: str = "metrics.jsonl") -> None:
        self.filename = filename
        self._handle: TextIO | None = None
        self._path: Path | None = None

    def open(self, run_dir: Path) -> None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self._path = Path(run_dir) / self.filename
        self._handle = self._path.open("a", encoding="utf-8")

    def rewind(self, stage: str, step: int) -> None:
        """Drop the records of ``stage`` after ``step``, and a last line cut short (rewrites the file atomically)."""
        if self._path is None or not self._path.is_file():
            return
        parts = self._path.read_text(encoding="utf-8").split("\n")
        lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        kept, changed = [], False
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                if not line.endswith("\n"):  # cut by a kill in the middle of a write
                    changed = True
                    continue
                record = None  # not ours to judge: kept as it is
            if isinstance(record, dict) and record.get("stage") == stage and isinstance(record.get("step"), int) \
                    and record["step"] > step:
                changed = True
                continue
            if not line.endswith("\n"):  # complete but unterminated: the next line must not join it
                line += "\n"
                changed = True
            kept.append(line)
        if not changed:
            return
        was_open = self._handle is not None
        if self._handle is not None:
            self._handle.close()
        write_text_atomic(self._path, "".join(kept))
        if was_open:
            self._handle = self._path.open("a", encoding="utf-8")

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
