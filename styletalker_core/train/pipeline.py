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
from typing import Any, cast

import attrs
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric_logger import MetricLogger
from styletalker_core.io.atomic import write_json_atomic, write_text_atomic
from styletalker_core.recipe.loader import read_toml
from styletalker_core.recipe.options import upgrade_recipe
from styletalker_core.recipe.roles import missing_inputs
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


# Engine fields that do not change what a stage trains.
_COSMETIC_STAGE_FIELDS = ("checkpoint_every", "log_every")
# Runtime fields that change the numbers (device and threads do not change what is trained).
_NUMERIC_RUNTIME_FIELDS = ("precision", "deterministic", "channels_last")


def stage_configuration(raw: dict, stage: str) -> dict | None:
    """What decides stage ``stage``'s result, from a resolved recipe as stored in ``recipe.toml``:
    the seed, the runtime's numeric settings, the data tables, the model, and the tables of this
    stage and every stage before it (their outputs are its inputs). None when the recipe has no such
    stage. Names, descriptions, output folders, sampling, evaluation, loggers, checkpoint and log
    intervals, devices and loader workers are left out: they change nothing a stage trains."""
    stages = raw.get("stages") or {}
    if stage not in stages:
        return None
    names = list(stages)
    tables = {}
    for name in names[: names.index(stage) + 1]:
        table = {k: v for k, v in (stages[name] or {}).items() if k not in _COSMETIC_STAGE_FIELDS}
        if name == stage:
            table.pop("enabled", None)  # it ran, so it was enabled
        tables[name] = table
    runtime = {k: v for k, v in (raw.get("runtime") or {}).items() if k in _NUMERIC_RUNTIME_FIELDS}
    data = {k: v for k, v in (raw.get("data") or {}).items() if k != "num_workers"}
    found = {"seed": raw.get("seed"), "runtime": runtime, "data": data, "model": raw.get("model") or {}, "stages": tables}
    return cast("dict[str, Any]", _absolute_paths(found))  # a dict stays a dict


def _absolute_paths(node: object) -> object:
    """Path options as absolute paths, so a run folder written when recipes kept relative paths
    compares equal to the same recipe read now (the loader resolves them: recipe/loader.py)."""
    from styletalker_core.recipe.loader import is_path_key, resolve_recipe_path

    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if is_path_key(key) and isinstance(value, str) and value:
                local = Path(value).expanduser()
                value = str(local.resolve()) if local.exists() else resolve_recipe_path(value)
            out[key] = _absolute_paths(value)
        return out
    if isinstance(node, list):
        return [_absolute_paths(item) for item in node]
    return node


def _differences(old: object, new: object, path: str = "") -> list[str]:
    """Dotted paths of the leaves where ``old`` and ``new`` differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return found
    return [] if old == new else [path or "(everything)"]


def _finished(run_dir: Path, name: str) -> bool:
    return (run_dir / name / "done.json").is_file()


def _check_run_recipe(run_dir: Path, recipe: Recipe, registries: Registries, restart_from: str | None = None) -> None:
    """Write the run's recipe; on a rerun with another recipe, keep what still holds.

    A stage folder is reused as long as the stage's own configuration (:func:`stage_configuration`)
    is the one it ran with: a changed later stage, evaluation or name never blocks the run. An
    unfinished stage whose configuration changed starts afresh (its resume checkpoints are
    removed). A finished stage whose configuration changed is refused, naming ``--restart-from``,
    which removes that stage's folder and every later one's before training them again.
    """
    import shutil

    path = run_dir / "recipe.toml"
    current = cast("dict[str, Any]", _without_none(unstructure(recipe)))  # a dict stays a dict
    names = list(recipe.stages)
    if restart_from is not None and restart_from not in names:
        raise StyleTalkerError(f"--restart-from {restart_from}: recipe {recipe.name} has no such stage; "
                               f"stages: {', '.join(names)}")
    # a run folder an earlier version wrote: its stage options under today's names
    previous = upgrade_recipe(read_toml(path), registries) if path.is_file() else None
    if restart_from is not None:
        for name in names[names.index(restart_from):]:
            if (run_dir / name).exists():
                LOG.info("--restart-from %s: removing %s", restart_from, run_dir / name)
                shutil.rmtree(run_dir / name)
    if previous is not None and previous != current:
        changed = {name: _differences(stage_configuration(previous, name), stage_configuration(current, name))
                   for name in names if (run_dir / name).exists()}
        changed = {name: differences for name, differences in changed.items() if differences}
        changed_finished = [(name, differences) for name, differences in changed.items() if _finished(run_dir, name)]
        if changed_finished:
            name, differences = changed_finished[0]
            shown = ", ".join(differences[:4]) + (", ..." if len(differences) > 4 else "")
            raise StyleTalkerError(
                f"{run_dir}: holds a run of a different recipe whose finished stage {name} was trained with "
                f"another configuration (differs in: {shown}); add --restart-from {name} to train {name} and "
                f"the stages after it again (their folders are replaced), or use another output folder "
                f"(--set output_dir=...)"
            )
        for name in changed:  # unfinished: resume checkpoints of another configuration; start afresh
            LOG.warning("stage %s: its configuration changed since its checkpoints were written; starting it afresh", name)
            shutil.rmtree(run_dir / name)
        LOG.info("%s: the recipe changed; finished stages whose configuration is unchanged are kept", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if previous != current:
        write_text_atomic(path, dumps(current))


def _recorded_clips(spec: ComponentSpec | None) -> tuple[str, dict[str, dict[str, str]]] | None:
    """(dataset root, clip id -> what its record says of identity, sentence and voice) of the clips a
    data table selects (its ``root``, ``split`` and ``clip_ids`` options), or None when the table
    names no clip dataset folder."""
    from styletalker_core.data.shards import ShardReader, clip_keys

    if spec is None:
        return None
    root = spec.options.get("root")
    if not isinstance(root, str) or not root or not (Path(root) / "manifest.json").is_file():
        return None
    reader = ShardReader(root)
    chosen = reader.clip_ids()
    clip_ids = spec.options.get("clip_ids")
    if isinstance(clip_ids, list):
        chosen = [clip for clip in clip_ids if clip in reader.records]
    split = spec.options.get("split")
    if isinstance(split, str) and split:
        in_split = set(reader.split_clip_ids(split))
        chosen = [clip for clip in chosen if clip in in_split]
    return str(Path(root).resolve()), {clip: clip_keys(reader.records[clip]) for clip in chosen}


def _examples(values: set[str], count: int = 3) -> str:
    ordered = sorted(values)
    return ", ".join(ordered[:count]) + (", ..." if len(ordered) > count else "")


def check_train_val_disjoint(recipe: Recipe) -> None:
    """Refuse a recipe whose validation clips share clips, identities or sentences with its training
    clips (where the datasets record them: meta identity_id / speaker, sentence_id / transcript)."""
    train, val = _recorded_clips(recipe.data.train), _recorded_clips(recipe.data.val)
    if train is None or val is None:
        return
    overlaps = []
    if train[0] == val[0]:
        shared = set(train[1]) & set(val[1])
        if shared:
            overlaps.append(f"{len(shared)} clips ({_examples(shared)})")
    for kind, plural in (("identity", "identities"), ("sentence", "sentences")):
        seen = {keys[kind] for keys in train[1].values() if kind in keys}
        shared = seen & {keys[kind] for keys in val[1].values() if kind in keys}
        if shared:
            overlaps.append(f"{len(shared)} {plural} ({_examples(shared)})")
    if overlaps:
        raise StyleTalkerError(
            f"recipe {recipe.name}: data.train and data.val overlap: they share {'; '.join(overlaps)}; validate on "
            "clips no training saw (split = \"val\" of a dataset made by `styletalker data synth`)"
        )


def _open_loggers(recipe: Recipe, registries: Registries, runtime: Runtime, run_dir: Path) -> list[MetricLogger]:
    if not runtime.is_main:
        return []
    specs = recipe.loggers or [ComponentSpec("jsonl")]
    loggers = [build_component(registries, "logger", spec, recipe_path=f"loggers[{index}]")
               for index, spec in enumerate(specs)]
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
    restart_from: str | None = None,
) -> TrainResult:
    """Run the enabled stages of ``recipe`` in order (or only ``only_stages``), resuming where a previous
    run stopped and skipping finished stages; then write ``model.safetensors``. A rerun with a changed
    recipe keeps the finished stages whose own configuration is unchanged; ``restart_from`` trains
    that stage and the later ones again (:func:`_check_run_recipe`).

    Refused before anything runs: validation clips that share clips, identities or sentences with
    the training clips, and a training signal that is the same file as an evaluation judge."""
    from styletalker_core.evaluate.judges import check_judge_separation

    check_train_val_disjoint(recipe)
    check_judge_separation(recipe, registries)
    runtime = setup_runtime(recipe.runtime)
    run_dir = Path(run_dir or recipe.run_dir())
    if runtime.is_main:
        _check_run_recipe(run_dir, recipe, registries, restart_from)
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
            stage = build_component(registries, "stage", ComponentSpec(config.name, config.options),
                                    recipe_path=f"stages.{name}")
            for role in missing_inputs(stage, produced, recipe):
                LOG.warning("stage %s: no earlier stage produced %s and [model.%s] has no weights file: it starts "
                            "from untrained weights (recipes validate reports this)", name, role, role)
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
