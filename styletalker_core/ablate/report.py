"""The ablation's outputs: a markdown comparison table, bar-chart PNGs and a JSON summary.

Every value is reported as the mean over clips (and training seeds, with ``--seeds``) with its 95 %
bootstrap interval (styletalker_core/ablate/statistics.py: seeds resampled, then clips within
seeds), and every recipe after the first is compared with the first (the baseline) by the paired
bootstrap of the difference over the same clips and seeds: "yes" when the difference's 95 %
interval excludes 0.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import attrs
import numpy as np

from styletalker_core.ablate.generation import MODES
from styletalker_core.ablate.runs import AblationSettings, RecipeRun
from styletalker_core.ablate.speech import CONDITIONS, split_mode_key
from styletalker_core.ablate.statistics import (
    LEVEL,
    RESAMPLES,
    RNG_SEED,
    Difference,
    Interval,
    bootstrap_interval,
    paired_difference,
    pooled_interval,
    pooled_paired_difference,
)
from styletalker_core.evaluate.report import Pool, _json_safe, format_number
from styletalker_core.io.atomic import atomic_path, write_json_atomic, write_text_atomic

COUNT_SUFFIX = "_missing_faces"  # counts of frames without a face: in the JSON, not in tables and plots


@attrs.define
class Group:
    """One recipe of the ablation: its runs, one per training seed (one run without --seeds)."""

    name: str
    runs: list[RecipeRun]

    @property
    def seeds(self) -> list[int | None]:
        return [run.seed for run in self.runs]


@attrs.define
class ValueStatistics:
    """One value of one mode: each recipe's mean with interval, and each later recipe's difference from the first."""

    key: str
    higher_is_better: bool
    intervals: dict[str, Interval]
    differences: dict[str, Difference]


def groups(runs: list[RecipeRun]) -> list[Group]:
    """The runs by recipe, in the order the recipes were given."""
    found: dict[str, Group] = {}
    for run in runs:
        found.setdefault(run.name, Group(run.name, [])).runs.append(run)
    return list(found.values())


def mode_keys(runs: list[RecipeRun]) -> list[str]:
    """Every report key (mode, or mode@speech) of any run, in the order they were evaluated."""
    keys: list[str] = []
    for run in runs:
        keys += [key for key in run.reports if key not in keys]
    return keys


def mode_title(key: str) -> str:
    """``"audio"`` -> "audio-driven"; ``"audio@flite"`` -> "audio-driven, Flite speech"."""
    mode, condition = split_mode_key(key)
    title = MODES.get(mode, mode)
    return title if condition == "espeak" else f"{title}, {CONDITIONS.get(condition, condition)} speech"


def value_keys(runs: list[RecipeRun], mode: str) -> list[str]:
    """Every value reported in ``mode`` by any run, in metric order, without face-count bookkeeping."""
    keys: list[str] = []
    for run in runs:
        report = run.reports.get(mode)
        for key in report.summary if report is not None else ():
            if key not in keys and not key.endswith(COUNT_SUFFIX):
                keys.append(key)
    return keys


def value_matrix(group: Group, mode: str, key: str) -> np.ndarray:
    """The value ``key`` of every clip of every seed of ``group`` in ``mode``: [seeds, clips], NaN where none."""
    rows = []
    for run in group.runs:
        report = run.reports.get(mode)
        by_clip = {item.name: item.values.get(key, math.nan) for item in report.items} if report is not None else {}
        rows.append([float(by_clip.get(clip, math.nan)) for clip in run.clips])
    return np.array(rows, dtype=np.float64)


def pooling(runs: list[RecipeRun], mode: str, key: str) -> tuple[str, Pool] | None:
    """(metric name, its pool function) when ``key`` of ``mode`` is a pooled metric's value, else None."""
    for run in runs:
        report = run.reports.get(mode)
        summary = report.summary.get(key) if report is not None else None
        if report is not None and summary is not None and summary.pooled and summary.metric in report.pools:
            return summary.metric, report.pools[summary.metric]
    return None


def observation_rows(group: Group, mode: str, metric: str) -> list[list[dict | None]]:
    """The observations of the pooled metric ``metric`` of every clip of every seed of ``group`` in ``mode``:
    [seeds][clips], None where a clip has none."""
    rows = []
    for run in group.runs:
        report = run.reports.get(mode)
        by_clip = {item.name: item.observations.get(metric) for item in report.items} if report is not None else {}
        rows.append([by_clip.get(clip) for clip in run.clips])
    return rows


def value_interval(group: Group, mode: str, key: str, pooled: tuple[str, Pool] | None) -> Interval:
    """``key`` of ``group`` in ``mode`` with its bootstrap interval: the mean over clips and seeds, or for a
    pooled value (``pooled``: from :func:`pooling`) the statistic of the pooled observations."""
    if pooled is None:
        return bootstrap_interval(value_matrix(group, mode, key))
    metric, pool = pooled
    return pooled_interval(observation_rows(group, mode, metric), lambda drawn: pool(drawn)[key])


def value_difference(group: Group, mode: str, base: Group, base_mode: str, key: str,
                     pooled: tuple[str, Pool] | None) -> Difference | None:
    """``key`` of ``group`` in ``mode`` minus that of ``base`` in ``base_mode``, paired over the same clips and
    seeds; None when they were not measured on the same seeds and clips."""
    if group.seeds != base.seeds or [run.clips for run in group.runs] != [run.clips for run in base.runs]:
        return None
    if pooled is None:
        return paired_difference(value_matrix(group, mode, key), value_matrix(base, base_mode, key))
    metric, pool = pooled
    return pooled_paired_difference(observation_rows(group, mode, metric), observation_rows(base, base_mode, metric),
                                    lambda drawn: pool(drawn)[key])


def higher_is_better(runs: list[RecipeRun], mode: str, key: str) -> bool:
    return next(s.higher_is_better for run in runs if (r := run.reports.get(mode)) and (s := r.summary.get(key)))


def mode_statistics(runs: list[RecipeRun], mode: str) -> dict[str, ValueStatistics]:
    """Intervals and differences from the baseline (the first recipe) of every value of ``mode``."""
    recipes = groups(runs)
    statistics = {}
    for key in value_keys(runs, mode):
        pooled = pooling(runs, mode, key)
        intervals = {group.name: value_interval(group, mode, key, pooled) for group in recipes}
        base = recipes[0]
        differences = {}
        for group in recipes[1:]:
            difference = value_difference(group, mode, base, mode, key, pooled)
            if difference is not None:
                differences[group.name] = difference
        statistics[key] = ValueStatistics(key, higher_is_better(runs, mode, key), intervals, differences)
    return statistics


def best_names(means: dict[str, float], higher: bool) -> set[str]:
    """Names with the best finite mean (all of them on a tie; none when fewer than two have one)."""
    scored = {name: mean for name, mean in means.items() if math.isfinite(mean)}
    if len(scored) < 2:
        return set()
    target = max(scored.values()) if higher else min(scored.values())
    return {name for name, mean in scored.items() if mean == target}


def best_runs(runs: list[RecipeRun], mode: str, key: str) -> set[str]:
    """Names of the runs with the best mean of ``key`` (all of them on a tie; none when fewer than two have one)."""
    summaries = {run.name: s for run in runs if (s := run.reports[mode].summary.get(key)) and s.count}
    if not summaries:
        return set()
    higher = next(iter(summaries.values())).higher_is_better
    return best_names({name: s.mean for name, s in summaries.items()}, higher)


def interval_cell(interval: Interval | None, expected: int, bold: bool) -> str:
    """'mean [low, high]', bold when best, '(n=k)' when only k of the ``expected`` values exist; '-' when none."""
    if interval is None or not interval.count:
        return "-"
    text = f"{format_number(interval.mean)} [{format_number(interval.low)}, {format_number(interval.high)}]"
    if bold:
        text = f"**{text}**"
    if interval.count < expected:
        text += f" (n={interval.count})"
    return text


def difference_cell(difference: Difference | None) -> str:
    """'yes: +d [low, high]' when the difference's interval excludes 0, else 'no: ...'; '-' without one."""
    if difference is None or not difference.interval.count:
        return "-"
    interval = difference.interval
    mean = format_number(interval.mean)
    sign = "+" if interval.mean > 0 else ""
    verdict = "**yes**" if difference.differs else "no"
    return f"{verdict}: {sign}{mean} [{format_number(interval.low)}, {format_number(interval.high)}]"


def _seeds_text(recipes: list[Group]) -> str:
    seeds = recipes[0].seeds if recipes else []
    if seeds and seeds[0] is not None:
        return f"training seeds {', '.join(map(str, seeds))} (each recipe trained once per seed)"
    return "one training run per recipe (its own seed; the intervals cover the clips only)"


def training_table(recipes: list[Group]) -> list[str]:
    """The held-out values the training stages recorded (e.g. the prior's NLL), per recipe: the mean over
    seeds with each seed's value."""
    keys: list[str] = []
    for group in recipes:
        for run in group.runs:
            for stage, values in run.training_evaluation.items():
                keys += [f"{stage}.{name}" for name in values if f"{stage}.{name}" not in keys]
    if not keys:
        return []
    lines = ["", "## Held-out values recorded by the training stages", "",
             "Each stage's own evaluation on the recipe's `data.val` (for example `prior.prior_nll`, the prior's "
             "negative log-likelihood of the motion latents, nats per frame, lower is better). With several seeds: "
             "the mean, then each seed's value.", "",
             "| recipe | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for group in recipes:
        cells = []
        for key in keys:
            stage, name = key.split(".", 1)
            per_seed = [run.training_evaluation.get(stage, {}).get(name, math.nan) for run in group.runs]
            finite = [value for value in per_seed if math.isfinite(value)]
            if not finite:
                cells.append("-")
            elif len(per_seed) == 1:
                cells.append(format_number(per_seed[0]))
            else:
                cells.append(f"{format_number(float(np.mean(finite)))} ({', '.join(format_number(v) for v in per_seed)})")
        lines.append(f"| {group.name} | " + " | ".join(cells) + " |")
    return lines


# Values compared across speech conditions (--speech): the model-free lip metric and the judge's confidence.
SPEECH_KEYS = ("mouth_envelope_corr", "mouth_envelope_lag_abs", "mouth_envelope_closed_silence", "mouth_envelope_detected",
               "lse_c")


def speech_table(runs: list[RecipeRun]) -> list[str]:
    """With speech conditions (mode keys ``audio@...``): per recipe and condition the model-free lip values,
    then each condition's paired difference from eSpeak's own speech over the same clips and seeds."""
    conditions = [key for key in mode_keys(runs) if split_mode_key(key)[0] == "audio"]
    if len(conditions) < 2 and not any("@" in key for key in conditions):
        return []
    keys = [key for key in SPEECH_KEYS if any(key in value_keys(runs, mode) for mode in conditions)]
    if not keys:
        return []
    arrows = {key: "↑" if higher_is_better(runs, next(m for m in conditions if key in value_keys(runs, m)), key) else "↓"
              for key in keys}
    lines = ["", "## Speech conditions (audio-driven)", "",
             "The same clips driven by each speech condition (docs/evaluation.md, \"Speech no training heard\"), "
             "mean [95 % interval] over clips and seeds; then each condition minus eSpeak's own speech, paired over "
             "the same clips and seeds (**yes**: the interval excludes 0).", "",
             "| recipe | speech | " + " | ".join(f"{key} {arrows[key]}" for key in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    differences = []
    for group in groups(runs):
        expected = len(group.runs[0].clips) * len(group.runs)
        matrices = {mode: {key: value_matrix(group, mode, key) for key in keys} for mode in conditions}
        for mode in conditions:
            condition = CONDITIONS.get(split_mode_key(mode)[1], mode)
            cells = [interval_cell(bootstrap_interval(matrices[mode][key]), expected, False) for key in keys]
            lines.append(f"| {group.name} | {condition} | " + " | ".join(cells) + " |")
            if mode != "audio" and "audio" in matrices:
                cells = [difference_cell(paired_difference(matrices[mode][key], matrices["audio"][key])) for key in keys]
                differences.append(f"| {group.name} | {condition} | " + " | ".join(cells) + " |")
    if differences:
        lines += ["", "| recipe | speech minus eSpeak | " + " | ".join(f"Δ {key}" for key in keys) + " |",
                  "|---|---|" + "---|" * len(keys), *differences]
    return lines


def markdown(settings: AblationSettings, runs: list[RecipeRun]) -> str:
    """The comparison as markdown: the command, the runs, one table per mode with its differences from the baseline."""
    recipes = groups(runs)
    clips = len(runs[0].clips) if runs else 0
    seeded = bool(runs) and runs[0].seed is not None
    lines = [
        f"# Ablation: {', '.join(group.name for group in recipes)}",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} by:",
        "",
        "    " + settings.command,
        "",
        f"Each recipe was trained (or its finished run reused; a model given with --model is evaluated as it is), "
        f"then generated {clips} clips of split `{settings.split}` of "
        f"`{runs[0].data if runs else ''}` ({', '.join(runs[0].clips) if runs else ''}) in each mode; "
        f"{_seeds_text(recipes)}. Values are the mean over clips{' and seeds' if seeded else ''} with its "
        f"{100 * LEVEL:.0f} % bootstrap interval [low, high] ({RESAMPLES} resamples: seeds with replacement, then "
        f"clips with replacement within each seed; bootstrap RNG seed {RNG_SEED}); n = values present, when fewer "
        "than clips x seeds. Bold: best mean per column. Arrows: which way is better. Under each table, every "
        f"recipe minus the baseline ({recipes[0].name if recipes else ''}), paired over the same clips and seeds: "
        f"**yes** when the difference's {100 * LEVEL:.0f} % interval excludes 0.",
        "",
        "| recipe | " + ("seed | " if seeded else "") + "run | stages trained | training time | reproduce the training |",
        "|---|" + ("---|" if seeded else "") + "---|---|---|---|",
    ]
    for run in runs:
        seed_cell = f"{run.seed} | " if seeded else ""
        if run.given_model:
            lines.append(f"| {run.name} | {seed_cell}`{run.model}` | none (given model) | - | not trained here |")
            continue
        trained = ", ".join(run.stages_run) or "none (all reused)"
        overrides = "".join(f" --set {o}" for o in settings.overrides)
        if run.seed is not None:
            overrides += f" --set seed={run.seed}"
        lines.append(f"| {run.name} | {seed_cell}`{run.run_dir}` | {trained} | {run.train_seconds:.0f} s | "
                     f"`styletalker train {run.source}{overrides} --resume {run.run_dir}` |")
    lines += training_table(recipes)
    lines += speech_table(runs)
    for mode in mode_keys(runs):
        keys = value_keys(runs, mode)
        lines += ["", f"## {mode_title(mode)}", ""]
        if not keys:
            lines.append("No metric produced a value in this mode.")
            continue
        statistics = mode_statistics(runs, mode)
        arrows = {key: "↑" if statistics[key].higher_is_better else "↓" for key in keys}
        lines.append("| recipe | " + " | ".join(f"{key} {arrows[key]}" for key in keys) + " |")
        lines.append("|---|" + "---|" * len(keys))
        best = {key: best_names({name: i.mean for name, i in statistics[key].intervals.items() if i.count},
                                statistics[key].higher_is_better) for key in keys}
        for group in recipes:
            expected = clips * len(group.runs)
            cells = [interval_cell(statistics[key].intervals.get(group.name), expected, group.name in best[key]) for key in keys]
            lines.append(f"| {group.name} | " + " | ".join(cells) + " |")
        if len(recipes) > 1:
            lines += ["", f"Difference from {recipes[0].name} (paired bootstrap; **yes**: larger than its interval):", "",
                      "| recipe | " + " | ".join(f"Δ {key}" for key in keys) + " |", "|---|" + "---|" * len(keys)]
            for group in recipes[1:]:
                cells = [difference_cell(statistics[key].differences.get(group.name)) for key in keys]
                lines.append(f"| {group.name} | " + " | ".join(cells) + " |")
        skipped = sorted({f"{metric} ({reason})" for run in runs if mode in run.reports for item in run.reports[mode].items
                          for metric, reason in item.skipped.items()})
        if skipped:
            lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    return "\n".join(lines) + "\n"


def plot_mode(runs: list[RecipeRun], mode: str, destination: Path) -> Path | None:
    """One panel per value some recipe has a score for: a bar per recipe (mean, 95 % bootstrap interval as
    error bar). None when there is nothing to draw."""
    statistics = mode_statistics(runs, mode)
    keys = [key for key, value in statistics.items() if any(i.count for i in value.intervals.values())]
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = groups(runs)
    columns = min(4, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    names = [group.name for group in recipes]
    colours = [plt.get_cmap("tab10")(index % 10) for index in range(len(recipes))]
    for axis, key in zip(axes.flat, keys):
        intervals = [statistics[key].intervals[name] for name in names]
        means = [i.mean if i.count else math.nan for i in intervals]
        below = [max(0.0, i.mean - i.low) if i.count and math.isfinite(i.low) else 0.0 for i in intervals]
        above = [max(0.0, i.high - i.mean) if i.count and math.isfinite(i.high) else 0.0 for i in intervals]
        axis.bar(range(len(names)), [0.0 if math.isnan(m) else m for m in means], yerr=[below, above], color=colours, capsize=3)
        for position, mean in enumerate(means):
            if math.isnan(mean):
                axis.text(position, 0, "n/a", ha="center", va="bottom", fontsize=7)
        higher = statistics[key].higher_is_better
        axis.set_title(f"{key} ({'higher' if higher else 'lower'} is better)", fontsize=8)
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        axis.tick_params(axis="y", labelsize=7)
    for axis in list(axes.flat)[len(keys):]:
        axis.axis("off")
    figure.suptitle(f"ablation, {mode_title(mode)} (95 % bootstrap intervals)", fontsize=10)
    figure.tight_layout()
    with atomic_path(destination) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return destination


def statistics_json(runs: list[RecipeRun]) -> dict:
    """Per mode and value: each recipe's mean and interval, and each later recipe's difference from the first."""
    out: dict = {}
    for mode in mode_keys(runs):
        out[mode] = {
            key: {
                "higher_is_better": value.higher_is_better,
                "recipes": {name: interval.to_json() for name, interval in value.intervals.items()},
                "difference_from_baseline": {name: difference.to_json() for name, difference in value.differences.items()},
            }
            for key, value in mode_statistics(runs, mode).items()
        }
    return out


def speech_differences_json(runs: list[RecipeRun]) -> dict:
    """Per recipe, speech condition and value: the condition minus eSpeak's own speech, paired over clips and seeds."""
    conditions = [key for key in mode_keys(runs) if split_mode_key(key)[0] == "audio" and key != "audio"]
    if not conditions or not any("audio" in run.reports for run in runs):
        return {}
    out: dict = {}
    for group in groups(runs):
        for mode in conditions:
            for key in value_keys(runs, mode):
                if key not in value_keys(runs, "audio"):
                    continue
                difference = value_difference(group, mode, group, "audio", key, pooling(runs, mode, key))
                if difference is not None:
                    out.setdefault(group.name, {}).setdefault(mode, {})[key] = difference.to_json()
    return out


def summary_json(settings: AblationSettings, runs: list[RecipeRun]) -> dict:
    recipes = groups(runs)
    return {
        "format": "styletalker-ablation",
        "version": 2,
        "command": settings.command,
        "modes": mode_keys(runs),
        "split": settings.split,
        "seeds": settings.seeds,
        "speech": list(settings.speech),
        "baseline": recipes[0].name if recipes else None,
        "bootstrap": {"resamples": RESAMPLES, "rng_seed": RNG_SEED, "level": LEVEL,
                      "method": "seeds resampled with replacement, then clips with replacement within each seed; "
                                "differences paired over the same seeds and clips"},
        "runs": [
            {
                "recipe": run.name,
                "seed": run.seed,
                "source": run.source,
                "run_dir": str(run.run_dir),
                "model": str(run.model),
                "given_model": run.given_model,
                "train_seconds": run.train_seconds,
                "stages_run": run.stages_run,
                "stages_skipped": run.stages_skipped,
                "training_evaluation": run.training_evaluation,
                "data": run.data,
                "clips": run.clips,
                "results": {mode: report.to_json()["summary"] for mode, report in run.reports.items()},
            }
            for run in runs
        ],
        "statistics": statistics_json(runs),
        "speech_minus_espeak": speech_differences_json(runs),
    }


def write_outputs(settings: AblationSettings, runs: list[RecipeRun]) -> None:
    """ablation.md, ablation.json and ablation_<mode>.png in ``settings.out``."""
    write_text_atomic(settings.out / "ablation.md", markdown(settings, runs))
    write_json_atomic(settings.out / "ablation.json", _json_safe(summary_json(settings, runs)))
    for mode in mode_keys(runs):
        plot_mode(runs, mode, settings.out / f"ablation_{mode}.png")
