"""The contract of the ``logger`` kind (styletalker_core.testing), run on every registered logger,
plus the specific behaviour of the built-in JSON-lines and TensorBoard loggers."""

from __future__ import annotations

import json
import logging
import math

import pytest

from styletalker_core.interfaces import MetricLogger
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def build(name: str) -> MetricLogger:
    entry = get_registries()["logger"].get(name)
    return build_component(get_registries(), "logger", ComponentSpec(name, dict(entry.example_options)))


def test_builtin_loggers_are_registered():
    assert {"jsonl", "tensorboard"} <= {factory.name for factory in factories_of_kind("logger")}


@parametrize_with_contracts("logger")
def test_logger_contract(component, contract):
    contract(component)


def test_jsonl_writes_one_parseable_line_per_call(tmp_path):
    logger = build("jsonl")
    logger.open(tmp_path)
    logger.log("fit", 0, {"loss": 0.5, "accuracy": 1})
    logger.log("sync", 10, {"loss": math.inf, "nan": math.nan})
    logger.close()
    logger.open(tmp_path)  # resume appends
    logger.log("fit", 11, {"loss": 0.25})
    logger.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 3
    assert all(isinstance(r.pop("time"), float) for r in records)
    assert records == [
        {"stage": "fit", "step": 0, "loss": 0.5, "accuracy": 1.0},
        {"stage": "sync", "step": 10, "loss": "inf", "nan": "nan"},
        {"stage": "fit", "step": 11, "loss": 0.25},
    ]


def test_jsonl_filename_option_and_read_back(tmp_path):
    from styletalker_loggers.jsonl import read_jsonl

    logger = build_component(get_registries(), "logger", ComponentSpec("jsonl", {"filename": "train.jsonl"}))
    logger.open(tmp_path / "deeper")
    logger.log("fit", 1, {"loss": 2.0})
    logger.close()
    records = read_jsonl(tmp_path / "deeper" / "train.jsonl")
    assert [(r["stage"], r["step"], r["loss"]) for r in records] == [("fit", 1, 2.0)]


def test_jsonl_log_before_open_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="before open"):
        build("jsonl").log("fit", 0, {"loss": 1.0})


def test_tensorboard_without_tensorboard_is_a_no_op_with_one_warning(tmp_path, caplog, monkeypatch):
    from styletalker_loggers import tensorboard

    monkeypatch.setattr(tensorboard, "tensorboard_installed", lambda: False)
    logger = build("tensorboard")
    with caplog.at_level(logging.WARNING):
        logger.open(tmp_path)
        for step in range(3):
            logger.log("fit", step, {"loss": 1.0})
        logger.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "tensorboard is not installed" in warnings[0].getMessage()
    assert "pip install tensorboard" in warnings[0].getMessage()
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_writes_event_files_when_installed(tmp_path):
    from styletalker_loggers.tensorboard import tensorboard_installed

    if not tensorboard_installed():
        pytest.skip("tensorboard is not installed")
    logger = build("tensorboard")
    logger.open(tmp_path)
    logger.log("fit", 0, {"loss": 1.0})
    logger.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
