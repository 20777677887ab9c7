"""Judges no training saw: a recipe must not train against a file its evaluation scores with.

A network optimised against can be fooled, and a model trained against a judge scores well
with that judge. So a file that is a *training signal* of a recipe may not be, by content
(sha256), a file one of its *evaluation judges* reads.

Training signals (field paths as in the recipe):

- stage options named ``readings_oracle`` or ending in ``_oracle`` (loss oracles, such as the
  readings terms of the domain stages and the main stage), ``lpips_weights`` or ending in
  ``perceptual_weights`` (perceptual networks), or naming a discriminator
  (``*discriminator*``), also inside nested option tables;
- the same options of model components, and the ``weights`` of components whose kind is a
  discriminator (``lipsync_discriminator``: the sync loss; ``discriminator``: the adversarial
  term), which the stages train against when they load them from a file.

Evaluation judges: every option of ``[evaluate].metrics[*]`` naming a file (``checkpoint``,
``oracle``, ...), including the metric's defaults (``synthetic_*`` read
``checkpoints/oracle_synthetic.safetensors`` unless told otherwise), and the ``oracle`` option
of a stage (the judge of the numbers the stage reports).

Paths are found as the components find them (:func:`styletalker_core.paths.find_project_file`);
files that do not exist (yet) are left out.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from styletalker_core.errors import RecipeError
from styletalker_core.paths import find_project_file
from styletalker_core.recipe.schema import Recipe
from styletalker_core.registry.components import ComponentSpec
from styletalker_core.registry.registry import Registries

DISCRIMINATOR_KINDS = ("lipsync_discriminator", "discriminator")
_HASHES: dict[tuple[str, int, int], str] = {}


def is_training_signal_option(name: str) -> bool:
    """Whether an option of this name names a file that a training loss reads."""
    return (name == "readings_oracle" or (name.endswith("_oracle") and name != "oracle")
            or name == "lpips_weights" or name.endswith("perceptual_weights") or "discriminator" in name)


def file_sha256(path: Path) -> str:
    """sha256 of a file's content (cached by path, size and modification time)."""
    status = path.stat()
    key = (str(path.resolve()), status.st_size, status.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _existing_file(value: Any) -> Path | None:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        return None
    try:
        path = find_project_file(os.path.expanduser(value))
        return path if path.is_file() else None
    except (OSError, ValueError):
        return None


def _signal_options(options: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """(field path, value) of the training-signal options in ``options``, nested tables included."""
    for key, value in options.items():
        field = f"{path}.{key}"
        if isinstance(value, ComponentSpec):
            yield from _component_signals(value, field, value.kind or "")
        elif isinstance(value, dict):
            yield from _signal_options(value, field)
        elif isinstance(key, str) and is_training_signal_option(key):
            yield field, value


def _component_signals(spec: ComponentSpec, path: str, kind: str) -> Iterator[tuple[str, Any]]:
    if spec.weights and (spec.kind or kind) in DISCRIMINATOR_KINDS:
        yield f"{path}.weights", spec.weights
    yield from _signal_options(spec.options, path)


def training_signal_files(recipe: Recipe) -> Iterator[tuple[str, Path]]:
    """(field path, file) of every existing file the recipe's training losses read."""
    fields: list[tuple[str, Any]] = []
    for role, spec in recipe.model.items():
        fields += _component_signals(spec, f"model.{role}", spec.kind or role)
    for name, stage in recipe.stages.items():
        fields += _signal_options(stage.options, f"stages.{name}")
    for field, value in fields:
        path = _existing_file(value)
        if path is not None:
            yield field, path


def _defaults(registries: Registries | None, kind: str, name: str) -> dict[str, Any]:
    """String defaults of a component's constructor parameters (empty when it is unknown)."""
    if registries is None or name not in registries[kind]:
        return {}
    try:
        signature = registries[kind].get(name).signature()
    except (TypeError, ValueError):
        return {}
    return {key: p.default for key, p in signature.parameters.items()
            if p.default is not inspect.Parameter.empty and isinstance(p.default, str)}


def metric_judge_files(specs: list[ComponentSpec], registries: Registries | None = None,
                       prefix: str = "evaluate.metrics") -> Iterator[tuple[str, Path]]:
    """(field path, file) of every existing file the metrics ``specs`` read (options naming a file,
    and string defaults of the metric that do, marked ``(default)``)."""
    for index, spec in enumerate(specs):
        path = f"{prefix}[{index}]"
        for key, value in {**_defaults(registries, "metric", spec.name), **spec.options}.items():
            found = _existing_file(value) if isinstance(key, str) else None
            if found is not None:
                yield f"{path}.{key}" + ("" if key in spec.options else " (default)"), found


def evaluation_judge_files(recipe: Recipe, registries: Registries | None = None) -> Iterator[tuple[str, Path]]:
    """(field path, file) of every existing file an evaluation judge of the recipe reads: its
    ``[evaluate]`` metrics (defaults marked ``(default)``) and its stages' ``oracle`` option."""
    yield from metric_judge_files(list(recipe.evaluate.metrics), registries)
    for name, stage in recipe.stages.items():
        found = _existing_file(stage.options.get("oracle"))
        if found is not None:
            yield f"stages.{name}.oracle", found


def judge_problems(recipe: Recipe, registries: Registries | None = None,
                   judges: list[tuple[str, Path]] | None = None) -> list[str]:
    """One line per training-signal field of ``recipe`` that is the same file (by content) as an
    evaluation judge's: the recipe's own (default), or ``judges`` (field path, file)."""
    found = evaluation_judge_files(recipe, registries) if judges is None else judges
    judged = [(field, path, file_sha256(path)) for field, path in found]
    if not judged:
        return []
    problems = []
    for field, path in training_signal_files(recipe):
        digest = file_sha256(path)
        for judge_field, judge_path, judge_digest in judged:
            if digest == judge_digest:
                same = str(path) if path.resolve() == judge_path.resolve() else f"{path} and {judge_path}"
                problems.append(
                    f"{field} and {judge_field} are the same file ({same}, sha256 {digest[:12]}): a model trained "
                    "against its judge scores well with it; train against another file or judge with another"
                )
    return problems


def check_judge_separation(recipe: Recipe, registries: Registries | None = None, source: str = "") -> None:
    """Raise RecipeError listing every training signal that is also an evaluation judge."""
    problems = judge_problems(recipe, registries)
    if problems:
        raise RecipeError(source or f"recipe {recipe.name}", problems)
