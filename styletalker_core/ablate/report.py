"""The ablation's outputs: a markdown comparison table, bar-chart PNGs and a JSON summary."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from styletalker_core.ablate.generation import MODES
from styletalker_core.checkpoint import atomic_path, write_json_atomic
from styletalker_core.checkpoint.files import write_text_atomic
from styletalker_core.evaluate.report import Summary, format_number

if TYPE_CHECKING:
    from styletalker_core.ablate.runner import AblationSettings, RecipeRun

COUNT_SUFFIX = "_missing_faces"  # counts of frames without a face: in the JSON, not in tables and plots


def value_keys(runs: list[RecipeRun], mode: str) -> list[str]:
    """Every value reported in ``mode`` by any run, in metric order, without face-count bookkeeping."""
    keys: list[str] = []
    for run in runs:
        for key in run.reports[mode].summary:
            if key not in keys and not key.endswith(COUNT_SUFFIX):
                keys.append(key)
    return keys


def _summary(run: RecipeRun, mode: str, key: str) -> Summary | None:
    return run.reports[mode].summary.get(key)


def best_runs(runs: list[RecipeRun], mode: str, key: str) -> set[str]:
    """Names of the runs with the best mean of ``key`` (all of them on a tie; none when fewer than two have one)."""
    scored = [(run.name, s.mean, s.higher_is_better) for run in runs if (s := _summary(run, mode, key)) and s.count and math.isfinite(s.mean)]
    if len(scored) < 2:
        return set()
    higher = scored[0][2]
    target = max(mean for _, mean, _ in scored) if higher else min(mean for _, mean, _ in scored)
    return {name for name, mean, _ in scored if mean == target}


def cell(summary: Summary | None, clips: int, bold: bool) -> str:
    """'mean ± std', '(n=k)' when only k of the clips had a value, bold when best; '-' when none."""
    if summary is None or not summary.count:
        return "-"
    text = f"{format_number(summary.mean)} ± {format_number(summary.std)}"
    if bold:
        text = f"**{text}**"
    if summary.count < clips:
        text += f" (n={summary.count})"
    return text


def markdown(settings: AblationSettings, runs: list[RecipeRun]) -> str:
    """The comparison as markdown: the command, the runs, one table per mode."""
    clips = len(runs[0].clips) if runs else 0
    lines = [
        f"# Ablation: {', '.join(run.name for run in runs)}",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')} by:",
        "",
        "    " + settings.command,
        "",
        f"Each recipe was trained (or its finished run reused; a model given with --model is evaluated as it is), "
        f"then generated {clips} clips of split `{settings.split}` of "
        f"`{runs[0].data if runs else ''}` ({', '.join(runs[0].clips) if runs else ''}) in each mode; values are the mean ± "
        "std over clips (n = clips with a value, when fewer). Bold: best per column. "
        "Arrows: which way is better.",
        "",
        "| recipe | run | stages trained | training time | reproduce the training |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        if run.given_model:
            lines.append(f"| {run.name} | `{run.model}` | none (given model) | - | not trained here |")
            continue
        trained = ", ".join(run.stages_run) or "none (all reused)"
        overrides = "".join(f" --set {o}" for o in settings.overrides)
        lines.append(f"| {run.name} | `{run.run_dir}` | {trained} | {run.train_seconds:.0f} s | "
                     f"`styletalker train {run.source}{overrides} --resume {run.run_dir}` |")
    for mode in settings.modes:
        keys = value_keys(runs, mode)
        lines += ["", f"## {MODES[mode]}", ""]
        if not keys:
            lines.append("No metric produced a value in this mode.")
            continue
        arrows = {}
        for key in keys:
            summary = next(s for run in runs if (s := _summary(run, mode, key)))
            arrows[key] = "↑" if summary.higher_is_better else "↓"
        lines.append("| recipe | " + " | ".join(f"{key} {arrows[key]}" for key in keys) + " |")
        lines.append("|---|" + "---|" * len(keys))
        best = {key: best_runs(runs, mode, key) for key in keys}
        for run in runs:
            cells = [cell(_summary(run, mode, key), clips, run.name in best[key]) for key in keys]
            lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
        skipped = sorted({f"{metric} ({reason})" for run in runs for item in run.reports[mode].items
                          for metric, reason in item.skipped.items()})
        if skipped:
            lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    return "\n".join(lines) + "\n"


def plot_mode(runs: list[RecipeRun], mode: str, destination: Path) -> Path | None:
    """One panel per value some recipe has a score for: a bar per recipe (mean, std as error bar).
    None when there is nothing to draw."""
    keys = [key for key in value_keys(runs, mode) if any((s := _summary(run, mode, key)) and s.count for run in runs)]
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    names = [run.name for run in runs]
    colours = [plt.get_cmap("tab10")(index % 10) for index in range(len(runs))]
    for axis, key in zip(axes.flat, keys):
        summaries = [_summary(run, mode, key) for run in runs]
        means = [s.mean if s and s.count else math.nan for s in summaries]
        stds = [s.std if s and s.count else 0.0 for s in summaries]
        axis.bar(range(len(runs)), [0.0 if math.isnan(m) else m for m in means], yerr=stds, color=colours, capsize=3)
        for position, mean in enumerate(means):
            if math.isnan(mean):
                axis.text(position, 0, "n/a", ha="center", va="bottom", fontsize=7)
        higher = next((s.higher_is_better for s in summaries if s), True)
        axis.set_title(f"{key} ({'higher' if higher else 'lower'} is better)", fontsize=8)
        axis.set_xticks(range(len(runs)), names, rotation=30, ha="right", fontsize=7)
        axis.tick_params(axis="y", labelsize=7)
    for axis in list(axes.flat)[len(keys):]:
        axis.axis("off")
    figure.suptitle(f"ablation, {MODES[mode]}", fontsize=10)
    figure.tight_layout()
    with atomic_path(destination) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return destination


def summary_json(settings: AblationSettings, runs: list[RecipeRun]) -> dict:
    return {
        "format": "styletalker-ablation",
        "version": 1,
        "command": settings.command,
        "modes": list(settings.modes),
        "split": settings.split,
        "runs": [
            {
                "recipe": run.name,
                "source": run.source,
                "run_dir": str(run.run_dir),
                "model": str(run.model),
                "given_model": run.given_model,
                "train_seconds": run.train_seconds,
                "stages_run": run.stages_run,
                "stages_skipped": run.stages_skipped,
                "data": run.data,
                "clips": run.clips,
                "results": {mode: report.to_json()["summary"] for mode, report in run.reports.items()},
            }
            for run in runs
        ],
    }


def write_outputs(settings: AblationSettings, runs: list[RecipeRun]) -> None:
    """ablation.md, ablation.json and ablation_<mode>.png in ``settings.out``."""
    write_text_atomic(settings.out / "ablation.md", markdown(settings, runs))
    write_json_atomic(settings.out / "ablation.json", summary_json(settings, runs))
    for mode in settings.modes:
        plot_mode(runs, mode, settings.out / f"ablation_{mode}.png")
