"""Running a recipe: its stages in order, skipping finished ones, then one model file for sampling.

Run folder layout::

    recipe.toml               the resolved recipe of this run (a rerun must match it)
    metrics.jsonl             every logged value (and tensorboard/ when installed)
    <stage>/checkpoints/      resume checkpoints (step_*.safetensors, latest.json)
    <stage>/final.safetensors the stage's output components
    <stage>/done.json         marks the stage finished
    <stage>/losses.png        loss curves
    model.safetensors         every component of the recipe, trained or loaded: what sampling uses
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import attrs
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint, write_json_atomic
from styletalker_core.checkpoint.files import write_text_atomic
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric_logger import MetricLogger
from styletalker_core.recipe.loader import read_toml
from styletalker_core.recipe.schema import Recipe
from styletalker_core.recipe.toml_writer import dumps
from styletalker_core.recipe.validate import unstructure
from styletalker_core.registry.components import ComponentSpec, build_component
from styletalker_core.registry.registry import Registries
from styletalker_core.train.context import StageContext, build_recipe_component
from styletalker_core.train.loop import StageResult, run_stage
from styletalker_core.train.runtime import Runtime, derive_seed, setup_runtime

LOG = logging.getLogger(__name__)
MODEL_FILE = "model.safetensors"


@attrs.define
class TrainResult:
    run_dir: Path
    model: Path
    stages: list[StageResult]
    skipped: list[str]


def _without_none(value: object) -> object:
    """TOML has no null: compare recipes as their TOML files store them."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(v) for v in value]
    return value


def _check_run_recipe(run_dir: Path, recipe: Recipe) -> None:
    """Write the run's recipe, or check that a rerun uses the same one."""
    path = run_dir / "recipe.toml"
    current = _without_none(unstructure(recipe))
    if path.is_file():
        previous = read_toml(path)
        if previous != current:
            changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
            raise StyleTalkerError(
                f"{run_dir}: holds a run of a different recipe (differs in: {', '.join(changed)}); "
                "use another output_dir (--set output_dir=...) or delete that folder"
            )
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, dumps(current))


def _open_loggers(recipe: Recipe, registries: Registries, runtime: Runtime, run_dir: Path) -> list[MetricLogger]:
    if not runtime.is_main:
        return []
    specs = recipe.loggers or [ComponentSpec("jsonl")]
    loggers = [build_component(registries, "logger", spec) for spec in specs]
    for logger in loggers:
        logger.open(run_dir)
    return loggers


def _stage_outputs(stage_dir: Path) -> list[str]:
    return json.loads((stage_dir / "done.json").read_text())["roles"]


def assemble_model(recipe: Recipe, registries: Registries, run_dir: Path, produced: dict[str, Path],
                   evaluations: dict[str, dict[str, float]]) -> Path:
    """One checkpoint with every component of the recipe: the latest trained version of each role,
    else the recipe's component (with its ``weights`` if given)."""
    components = {}
    for role in dict.fromkeys([*produced, *recipe.model]):
        if role in produced:
            components[role] = load_checkpoint(produced[role], registries, roles=[role])[role]
            continue
        # Untrained components (without weights) start from a seeded initialisation, so rebuilding
        # the model file of a finished run gives the same file.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(recipe.seed, "assemble", role))
            components[role] = build_recipe_component(registries, recipe.name, role, recipe.model[role])
    path = run_dir / MODEL_FILE
    extra = {"recipe_name": recipe.name, "evaluation": evaluations}
    save_checkpoint(path, components, recipe=unstructure(recipe), extra=extra)
    return path


def train_recipe(
    recipe: Recipe,
    registries: Registries,
    run_dir: str | Path | None = None,
    only_stages: list[str] | None = None,
) -> TrainResult:
    """Run the enabled stages of ``recipe`` in order (or only ``only_stages``), resuming where a previous
    run stopped and skipping finished stages; then write ``model.safetensors``."""
    runtime = setup_runtime(recipe.runtime)
    run_dir = Path(run_dir or recipe.run_dir())
    if runtime.is_main:
        _check_run_recipe(run_dir, recipe)
    runtime.barrier()
    unknown = sorted(set(only_stages or []) - set(recipe.stages))
    if unknown:
        raise StyleTalkerError(f"recipe {recipe.name}: no stage named {', '.join(unknown)}; stages: {', '.join(recipe.stages)}")
    loggers = _open_loggers(recipe, registries, runtime, run_dir)
    produced: dict[str, Path] = {}
    evaluations: dict[str, dict[str, float]] = {}
    results, skipped = [], []
    try:
        for name, config in recipe.stages.items():
            stage_dir = run_dir / name
            if (stage_dir / "done.json").is_file():
                skipped.append(name)
                evaluations[name] = json.loads((stage_dir / "done.json").read_text()).get("evaluation", {})
                produced.update({role: stage_dir / "final.safetensors" for role in _stage_outputs(stage_dir)})
                LOG.info("stage %s already finished; skipping", name)
                continue
            if not config.enabled or (only_stages is not None and name not in only_stages):
                continue
            stage = build_component(registries, "stage", ComponentSpec(config.name, config.options))
            context = StageContext(recipe, name, config, registries, runtime, run_dir, dict(produced))
            result = run_stage(stage, context, loggers)
            results.append(result)
            evaluations[name] = result.evaluation
            produced.update({role: result.checkpoint for role in result.roles})
    finally:
        for logger in loggers:
            logger.close()
    model = run_dir / MODEL_FILE
    if runtime.is_main:
        started = time.time()
        model = assemble_model(recipe, registries, run_dir, produced, evaluations)
        write_json_atomic(run_dir / "summary.json", {"recipe": recipe.name, "evaluation": evaluations,
                                                     "stages_run": [r.name for r in results], "skipped": skipped})
        LOG.info("wrote %s in %.1f s", model, time.time() - started)
    runtime.barrier()
    return TrainResult(run_dir, model, results, skipped)
