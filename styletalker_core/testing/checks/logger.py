"""Contract of the ``logger`` kind: open a run folder, log values (NaN included), close twice,
resume into the same folder, and write nothing outside it."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from styletalker_core.interfaces import MetricLogger
from styletalker_core.testing.factory import ComponentFactory, require


def check_logger_lifecycle(factory: ComponentFactory) -> None:
    logger = factory()
    require(isinstance(logger, MetricLogger), factory, f"built a {type(logger).__qualname__}, not a MetricLogger")
    spec = getattr(logger, "component_spec", None)
    require(spec is not None and spec.kind == "logger" and spec.name == factory.name, factory,
            "build_component did not record its component_spec (a slotted or frozen class cannot be checkpointed)")
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        logger.open(run_dir)
        for step in range(3):
            logger.log("fit", step, {"loss": 1.0 / (step + 1), "lr": 1e-3})
        logger.log("fit", 3, {"loss": math.nan})
        logger.close()
        logger.close()  # closing twice is harmless
        logger.open(run_dir)  # resuming into the same folder works
        logger.log("fit", 4, {"loss": 0.1})
        logger.close()
        written = sorted(path.name for path in Path(folder).iterdir())
    require(written in (["run"], []), factory, f"wrote outside its run folder: {written}")
