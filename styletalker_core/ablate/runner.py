"""Running an ablation: train (or reuse) each recipe, or take given model files, generate held-out
clips in each mode, evaluate.

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

from styletalker_core.ablate.clips import EVALUATION_SPLIT, HeldoutClip, dataset_root, load_clips
from styletalker_core.ablate.generation import MODES, generate_items
from styletalker_core.ablate.runs import AblationSettings, RecipeRun
from styletalker_core.ablate.speech import CONDITIONS, condition_clips, mode_key
from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate import EvalReport, MetricInfo, build_metrics, evaluate_items, metric_specs
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_core.recipe import load_recipe
from styletalker_core.recipe.schema import Recipe
from styletalker_core.registry import Registries

LOG = logging.getLogger(__name__)


@attrs.define
class Entry:
    """One row of an ablation: its name, where it came from, its recipe, and a given model file (or None: train)."""

    name: str
    source: str
    recipe: Recipe
    model: Path | None = None


def model_recipe(model: str | Path, overrides: Sequence[str], registries: Registries) -> Recipe:
    """The recipe stored in a model file (the one it was trained with), with ``overrides`` applied."""
    from styletalker_core.checkpoint import read_metadata
    from styletalker_core.recipe.options import upgrade_recipe
    from styletalker_core.recipe.validate import apply_override, structure

    raw = read_metadata(model).get("recipe")
    if not isinstance(raw, dict) or not raw:
        raise StyleTalkerError(f"{model}: stores no recipe; give the recipe to evaluate it with as well")
    raw = upgrade_recipe(raw, registries)  # written by an earlier version: today's option names
    for assignment in overrides:
        apply_override(raw, assignment, registries)
    return structure(raw, registries, source=f"{model} (its recipe)")


def check_model_file(model: str | Path, flag: str = "--model") -> Path:
    path = Path(model)
    if not path.is_file():
        raise StyleTalkerError(f"{flag} {model}: no such file (a trained model, e.g. runs/<recipe>/model.safetensors)")
    return path


def given_model_problems(model: Path, recipe: Recipe, metrics: list[tuple[MetricInfo, Metric]],
                         registries: Registries) -> list[str]:
    """Problems of evaluating ``model`` with ``metrics``: a training signal of the recipe stored in the
    model file (how it was trained) that is the same file as a judge of ``metrics``."""
    from styletalker_core.evaluate.judges import judge_problems, metric_judge_files
    from styletalker_core.registry.components import ComponentSpec

    judges = list(metric_judge_files([ComponentSpec(info.name, info.options) for info, _ in metrics], registries,
                                     prefix="metrics"))
    try:
        trained_with = model_recipe(model, [], registries)
    except StyleTalkerError:
        return []  # no (valid) stored recipe: nothing known of its training
    return judge_problems(trained_with, registries, judges)


def warn_self_judging(model: Path, metrics: list[tuple[MetricInfo, Metric]]) -> None:
    """Warn when a metric judges the model with the model file itself (its own lip-sync discriminator)."""
    from styletalker_core.evaluate.judges import file_sha256
    from styletalker_core.paths import find_project_file

    digest = file_sha256(model)
    for info, _ in metrics:
        for key, value in info.options.items():
            found = find_project_file(value) if isinstance(value, str) and value else None
            if found is not None and found.is_file() and file_sha256(found) == digest:
                LOG.warning("metric %s judges %s with the model's own file (%s = %s): a model scores well with "
                            "the network it trained against; use an independent judge", info.name, model, key, value)


def _load_entries(settings: AblationSettings, registries: Registries) -> list[Entry]:
    """The rows: recipes to train; with --model, the i-th model in place of training the i-th recipe,
    or, without recipes, each model with the recipe stored in it (named after the file)."""
    if not settings.recipes and not settings.models:
        raise StyleTalkerError("give recipes to train and compare, or model files with --model")
    if settings.recipes and settings.models and len(settings.models) != len(settings.recipes):
        raise StyleTalkerError(f"{len(settings.models)} --model files for {len(settings.recipes)} recipes: give one model "
                               "per recipe (in order), or models alone (each evaluated with the recipe stored in it)")
    if settings.seeds is not None:
        if settings.models:
            raise StyleTalkerError("--seeds trains each recipe once per seed; a model given with --model is evaluated as "
                                   "it is: give recipes without --model, or drop --seeds")
        if not settings.seeds or len(set(settings.seeds)) != len(settings.seeds):
            raise StyleTalkerError(f"--seeds {','.join(map(str, settings.seeds))}: give distinct seeds, e.g. 0,1,2")
    models = [check_model_file(model) for model in settings.models]
    if settings.recipes:
        recipes = [load_recipe(reference, settings.overrides, registries) for reference in settings.recipes]
        entries = [Entry(recipe.name, str(reference), recipe, models[index] if models else None)
                   for index, (reference, recipe) in enumerate(zip(settings.recipes, recipes))]
    else:
        entries = [Entry(model.stem, str(model), model_recipe(model, settings.overrides, registries), model) for model in models]
    names = [entry.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        what = "recipes" if settings.recipes else "model files"
        raise StyleTalkerError(f"{what} named {', '.join(duplicates)} appear more than once; each recipe of an ablation needs its own name")
    unknown = [mode for mode in settings.modes if mode not in MODES]
    if unknown or not settings.modes:
        raise StyleTalkerError(f"modes {', '.join(unknown) or '(none)'}: choose from {', '.join(MODES)}")
    check_speech(settings.speech, settings.modes)
    return entries


def check_speech(speech: Sequence[str], modes: Sequence[str]) -> None:
    """Speech conditions are known ones, and other than eSpeak's own only with the audio mode."""
    unknown = [name for name in speech if name not in CONDITIONS]
    if unknown or not speech:
        raise StyleTalkerError(f"--speech {','.join(unknown) or '(none)'}: choose from {', '.join(CONDITIONS)}")
    if tuple(speech) != ("espeak",) and "audio" not in modes:
        raise StyleTalkerError("--speech drives the audio-driven mode: add audio to --modes")


# The model-free lip metric every speech condition is scored with (no labels follow another engine's timing).
SPEECH_METRIC = "mouth_envelope"


def speech_metric_specs(specs: list, speech: Sequence[str]) -> list:
    """``specs`` with :data:`SPEECH_METRIC` added (default options) when speech conditions other than
    eSpeak's own are evaluated and the metrics lack it; a recipe listing it gives its options."""
    from styletalker_core.registry.components import ComponentSpec

    if tuple(speech) == ("espeak",) or any(spec.name == SPEECH_METRIC for spec in specs):
        return specs
    return [*specs, ComponentSpec(SPEECH_METRIC)]


def speech_clip_sets(clips: list[HeldoutClip], settings: AblationSettings) -> dict[str, list[HeldoutClip]]:
    """The evaluation clips under each speech condition of ``settings`` (made once, for every recipe)."""
    if "audio" not in settings.modes:
        return {}
    sets = {}
    for condition in settings.speech:
        started = time.time()
        sets[condition] = condition_clips(clips, condition)
        if condition != "espeak":
            LOG.info("speech %s: %d clips in %.1f s", condition, len(clips), time.time() - started)
    return sets


def _load_recipes(settings: AblationSettings, registries: Registries) -> list[Recipe]:
    return [entry.recipe for entry in _load_entries(settings, registries)]


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
    out_dir: Path | None,
    speech_clips: dict[str, list[HeldoutClip]] | None = None,
) -> dict[str, EvalReport]:
    """Generate ``clips`` with the model in every mode of ``settings`` and evaluate; writes <mode>.json and
    the first ``settings.videos`` videos into ``out_dir`` (nothing when None). The audio mode runs once per
    speech condition of ``settings`` (report key ``audio@<condition>``, plain ``audio`` for eSpeak's own), on
    ``speech_clips[condition]`` (made by :func:`speech_clip_sets` when not given)."""
    from styletalker_core.model import TalkingHead

    head = TalkingHead.from_checkpoint(model_path, registries)
    if speech_clips is None:
        speech_clips = speech_clip_sets(clips, settings)
    reports = {}
    for mode in settings.modes:
        for condition in settings.speech if mode == "audio" else ("espeak",):
            key = mode_key(mode, condition)
            mode_clips = speech_clips.get(condition, clips) if mode == "audio" else clips
            started = time.time()
            generated = list(generate_items(head, mode_clips, mode, settings.seed, recipe.sample.temperature,
                                            recipe.sample.pose_scale))
            report = evaluate_items(metrics, generated)
            if out_dir is not None:
                report.write_json(out_dir / f"{key}.json")
                _write_videos(out_dir, key, [(name, item) for name, item, _ in generated], settings.videos)
            LOG.info("%s, %s (%s speech): %d clips in %.1f s", recipe.name, MODES[mode], condition, len(clips),
                     time.time() - started)
            reports[key] = report
    return reports


def evaluation_clips(settings: AblationSettings, recipes: list[Recipe]) -> tuple[Path, list[HeldoutClip]]:
    """The dataset and held-out clips (of ``settings.split``) every recipe is evaluated on (one set for
    all, for a fair comparison)."""
    roots = {dataset_root(recipe, settings.data).resolve(): recipe.name for recipe in recipes}
    if len(roots) > 1:
        listing = ", ".join(f"{name}: {root}" for root, name in roots.items())
        raise StyleTalkerError(f"the recipes evaluate on different datasets ({listing}); name one with --data DIR")
    root = dataset_root(recipes[0], settings.data)
    count = settings.clips or recipes[0].evaluate.clips
    return root, load_clips(root, count, explicit=settings.data is not None, split=settings.split)


def run_ablation(settings: AblationSettings, registries: Registries) -> list[RecipeRun]:
    """Train or reuse every recipe (or take the given model files), evaluate each on the same held-out
    clips, write the comparison.

    The recipes, the evaluation clips and the metrics are all checked before any training starts.
    """
    from styletalker_core.ablate.report import write_outputs
    from styletalker_core.train import train_recipe

    entries = _load_entries(settings, registries)
    root, clips = evaluation_clips(settings, [entry.recipe for entry in entries])
    metrics = [build_metrics(registries, speech_metric_specs(metric_specs(settings.metrics, entry.recipe), settings.speech))
               for entry in entries]
    for entry, entry_metrics in zip(entries, metrics):
        if entry.model is not None:
            problems = given_model_problems(entry.model, entry.recipe, entry_metrics, registries)
            if problems:
                raise StyleTalkerError(f"{entry.model}: trained against a file that judges it here: {'; '.join(problems)}")
            warn_self_judging(entry.model, entry_metrics)
    speech_clips = speech_clip_sets(clips, settings)  # engines run once, before any training
    seeds: list[int | None] = [*settings.seeds] if settings.seeds else [None]
    seeded = [(entry, entry_metrics, seed, seeded_recipe(entry, seed, settings, registries))
              for entry, entry_metrics in zip(entries, metrics) for seed in seeds]
    runs = []
    for entry, entry_metrics, seed, recipe in seeded:
        out_dir = settings.out / entry.name if seed is None else settings.out / entry.name / f"seed{seed}"
        if entry.model is not None:  # evaluated as given, not trained
            run = RecipeRun(entry.name, entry.source, entry.model.parent, entry.model, 0.0, [], [],
                            clips=[clip.clip_id for clip in clips], data=str(root), given_model=True,
                            training_evaluation=stored_evaluation(entry.model))
        else:
            run_dir = seed_run_dir(settings.runs / recipe.name if settings.runs else Path(recipe.run_dir()), seed)
            started = time.time()
            result = train_recipe(recipe, registries, run_dir=run_dir)
            run = RecipeRun(entry.name, entry.source, result.run_dir, result.model, time.time() - started,
                            [stage.name for stage in result.stages], list(result.skipped),
                            clips=[clip.clip_id for clip in clips], data=str(root), seed=seed,
                            training_evaluation=stored_evaluation(result.model))
        run.reports = evaluate_model(run.model, recipe, clips, entry_metrics, settings, registries, out_dir, speech_clips)
        runs.append(run)
    write_outputs(settings, runs)
    return runs


def seeded_recipe(entry: Entry, seed: int | None, settings: AblationSettings, registries: Registries) -> Recipe:
    """The entry's recipe, with ``seed = <seed>`` applied after the other overrides (unchanged for None)."""
    if seed is None or entry.model is not None:
        return entry.recipe
    return load_recipe(entry.source, [*settings.overrides, f"seed={seed}"], registries)


def seed_run_dir(run_dir: Path, seed: int | None) -> Path:
    """The run folder of one training seed: ``<run folder>_seed<seed>`` beside the recipe's own (None: its own)."""
    return run_dir if seed is None else run_dir.with_name(f"{run_dir.name}_seed{seed}")


def stored_evaluation(model: Path) -> dict[str, dict[str, float]]:
    """The held-out values the training stages recorded in a model file (stage -> value name -> value);
    empty when the file has none."""
    from styletalker_core.checkpoint import read_metadata

    try:
        evaluation = (read_metadata(model).get("extra") or {}).get("evaluation")
    except Exception:  # noqa: BLE001 - an unreadable file fails later, where it is loaded for evaluation
        return {}
    if not isinstance(evaluation, dict):
        return {}
    return {str(stage): {str(k): float(v) for k, v in values.items() if isinstance(v, (int, float))}
            for stage, values in evaluation.items() if isinstance(values, dict)}


def quote_command(parts: Sequence[str]) -> str:
    """A shell command line from its arguments."""
    import shlex

    return " ".join(shlex.quote(part) for part in parts)


@attrs.define
class ModelEvaluation:
    """``styletalker evaluate --model``: one model file generating clips of a dataset split, evaluated."""

    model: Path
    recipe: Recipe
    data: Path
    split: str
    clips: list[str]
    reports: dict[str, EvalReport]
    seed: int
    speech: tuple[str, ...] = ("espeak",)

    def to_json(self) -> dict:
        return {
            "format": "styletalker-model-evaluation",
            "version": 1,
            "model": str(self.model),
            "recipe": self.recipe.name,
            "data": str(self.data),
            "split": self.split,
            "clips": self.clips,
            "seed": self.seed,
            "temperature": self.recipe.sample.temperature,
            "pose_scale": self.recipe.sample.pose_scale,
            "speech": list(self.speech),
            "modes": {mode: report.to_json() for mode, report in self.reports.items()},
        }


def evaluate_model_file(
    model: str | Path,
    registries: Registries,
    recipe: Recipe | None = None,
    metrics: list[str] | None = None,
    data: str | Path | None = None,
    split: str = EVALUATION_SPLIT,
    clips: int | None = None,
    modes: Sequence[str] = tuple(MODES),
    seed: int = 0,
    clip_ids: Sequence[str] | None = None,
    speech: Sequence[str] = ("espeak",),
) -> ModelEvaluation:
    """Evaluate a trained model file without training: generate the first ``clips`` clips of ``split``
    of ``data`` (default: the recipe's dataset) in each of ``modes`` and score them with the recipe's
    ``[evaluate]`` metrics (or ``metrics``). ``recipe`` defaults to the one stored in the model file.
    ``clip_ids`` picks the clips (in that order) instead of the first ``clips``. ``speech``: the speech
    conditions of the audio mode (styletalker_core/ablate/speech.py; reports ``audio@<condition>``)."""
    from styletalker_core.ablate.clips import heldout_clip_ids, read_clips
    from styletalker_core.data.shards import ShardReader

    path = check_model_file(model)
    recipe = recipe if recipe is not None else model_recipe(path, [], registries)
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        raise StyleTalkerError(f"modes {', '.join(unknown) or '(none)'}: choose from {', '.join(MODES)}")
    check_speech(speech, modes)
    root = dataset_root(recipe, str(data) if data else None)
    if clip_ids is not None:
        reader = ShardReader(root)
        available = set(heldout_clip_ids(reader, explicit=data is not None, split=split))
        missing = [clip for clip in clip_ids if clip not in available]
        if missing:
            raise StyleTalkerError(f"{root}: clips {', '.join(missing[:5])} are not in split {split!r}")
        held = read_clips(reader, list(clip_ids))
    else:
        held = load_clips(root, clips or recipe.evaluate.clips, explicit=data is not None, split=split)
    built = build_metrics(registries, speech_metric_specs(metric_specs(metrics, recipe), speech))
    problems = given_model_problems(path, recipe, built, registries)
    if problems:
        raise StyleTalkerError(f"{path}: trained against a file that judges it here: {'; '.join(problems)}")
    warn_self_judging(path, built)
    settings = AblationSettings([], Path("."), modes=tuple(modes), seed=seed, videos=0, split=split, speech=tuple(speech))
    reports = evaluate_model(path, recipe, held, built, settings, registries, None)
    return ModelEvaluation(path, recipe, root, split, [clip.clip_id for clip in held], reports, seed, tuple(speech))
