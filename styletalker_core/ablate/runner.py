"""Running an ablation: train (or reuse) each recipe, generate held-out clips in each mode, evaluate.

Output folder::

    ablation.md                 comparison tables (markdown) with the commands that produced them
    ablation.json               every number: per recipe, per mode, the evaluation summary
    ablation_<mode>.png         one bar chart per value, recipes side by side
    <recipe>/<mode>.json        the full evaluation report (per clip values)
    <recipe>/<mode>_<clip>.mp4  the first generated videos, with their audio, to look at
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from styletalker_core.ablate.clips import HeldoutClip, dataset_root, load_clips
from styletalker_core.ablate.generation import MODES, generate_items
from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate import EvalReport, MetricInfo, build_metrics, evaluate_items, metric_specs
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_core.recipe import load_recipe
from styletalker_core.recipe.schema import Recipe
from styletalker_core.registry import Registries

LOG = logging.getLogger(__name__)


@attrs.define
class AblationSettings:
    """What ``styletalker ablate`` was asked to do (every field has a command-line flag)."""

    recipes: list[str]
    out: Path
    overrides: list[str] = attrs.Factory(list)
    clips: int | None = None  # None: the first recipe's evaluate.clips
    modes: tuple[str, ...] = ("audio", "motion", "reconstruction")
    metrics: list[str] | None = None  # None: each recipe's [evaluate] metrics
    data: str | None = None
    runs: Path | None = None  # None: each recipe's output_dir
    seed: int = 0
    videos: int = 1
    command: str = ""


@attrs.define
class RecipeRun:
    """One recipe's part of the ablation."""

    name: str
    source: str
    run_dir: Path
    model: Path
    train_seconds: float
    stages_run: list[str]
    stages_skipped: list[str]
    reports: dict[str, EvalReport] = attrs.Factory(dict)
    clips: list[str] = attrs.Factory(list)
    data: str = ""


def _load_recipes(settings: AblationSettings, registries: Registries) -> list[Recipe]:
    recipes = [load_recipe(reference, settings.overrides, registries) for reference in settings.recipes]
    names = [recipe.name for recipe in recipes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise StyleTalkerError(f"recipes named {', '.join(duplicates)} appear more than once; each recipe of an ablation needs its own name")
    unknown = [mode for mode in settings.modes if mode not in MODES]
    if unknown or not settings.modes:
        raise StyleTalkerError(f"modes {', '.join(unknown) or '(none)'}: choose from {', '.join(MODES)}")
    return recipes


def _write_videos(run_dir: Path, mode: str, items: list[tuple[str, EvalItem]], count: int) -> None:
    """The first ``count`` generated videos as mp4 with their audio."""
    from styletalker_core.media import write_video

    for name, item in items[:count]:
        frames = ((item.frames.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        write_video(run_dir / f"{mode}_{name}.mp4", frames, item.audio.numpy().astype(np.float32))


def evaluate_model(
    model_path: Path,
    recipe: Recipe,
    clips: list[HeldoutClip],
    metrics: list[tuple[MetricInfo, Metric]],
    settings: AblationSettings,
    registries: Registries,
    out_dir: Path,
) -> dict[str, EvalReport]:
    """Generate ``clips`` with the model in every mode of ``settings`` and evaluate; writes <mode>.json and videos."""
    from styletalker_core.model import TalkingHead

    head = TalkingHead.from_checkpoint(model_path, registries)
    reports = {}
    for mode in settings.modes:
        started = time.time()
        generated = list(generate_items(head, clips, mode, settings.seed, recipe.sample.temperature, recipe.sample.pose_scale))
        report = evaluate_items(metrics, generated)
        report.write_json(out_dir / f"{mode}.json")
        _write_videos(out_dir, mode, [(name, item) for name, item, _ in generated], settings.videos)
        LOG.info("%s, %s: %d clips in %.1f s", recipe.name, MODES[mode], len(clips), time.time() - started)
        reports[mode] = report
    return reports


def evaluation_clips(settings: AblationSettings, recipes: list[Recipe]) -> tuple[Path, list[HeldoutClip]]:
    """The dataset and held-out clips every recipe is evaluated on (one set for all, for a fair comparison)."""
    roots = {dataset_root(recipe, settings.data).resolve(): recipe.name for recipe in recipes}
    if len(roots) > 1:
        listing = ", ".join(f"{name}: {root}" for root, name in roots.items())
        raise StyleTalkerError(f"the recipes evaluate on different datasets ({listing}); name one with --data DIR")
    root = dataset_root(recipes[0], settings.data)
    count = settings.clips or recipes[0].evaluate.clips
    return root, load_clips(root, count, explicit=settings.data is not None)


def run_ablation(settings: AblationSettings, registries: Registries) -> list[RecipeRun]:
    """Train or reuse every recipe, evaluate each on the same held-out clips, write the comparison.

    The recipes, the evaluation clips and the metrics are all checked before any training starts.
    """
    from styletalker_core.ablate.report import write_outputs
    from styletalker_core.train import train_recipe

    recipes = _load_recipes(settings, registries)
    root, clips = evaluation_clips(settings, recipes)
    metrics = [build_metrics(registries, metric_specs(settings.metrics, recipe)) for recipe in recipes]
    runs = []
    for reference, recipe, recipe_metrics in zip(settings.recipes, recipes, metrics):
        run_dir = settings.runs / recipe.name if settings.runs else Path(recipe.run_dir())
        started = time.time()
        result = train_recipe(recipe, registries, run_dir=run_dir)
        run = RecipeRun(recipe.name, str(reference), result.run_dir, result.model, time.time() - started,
                        [stage.name for stage in result.stages], list(result.skipped),
                        clips=[clip.clip_id for clip in clips], data=str(root))
        run.reports = evaluate_model(result.model, recipe, clips, recipe_metrics, settings, registries, settings.out / recipe.name)
        runs.append(run)
    write_outputs(settings, runs)
    return runs


def quote_command(parts: Sequence[str]) -> str:
    """A shell command line from its arguments."""
    import shlex

    return " ".join(shlex.quote(part) for part in parts)
