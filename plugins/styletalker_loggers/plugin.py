"""Registers the built-in loggers."""

from __future__ import annotations

from styletalker_core.plugin_host import hookimpl
from styletalker_core.registry import Registrar
from styletalker_loggers.jsonl import JsonLinesLogger
from styletalker_loggers.tensorboard import TensorBoardLogger


@hookimpl
def styletalker_register(registrar: Registrar) -> None:
    registrar.register("logger", "jsonl", JsonLinesLogger)
    registrar.register("logger", "tensorboard", TensorBoardLogger)
