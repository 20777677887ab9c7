"""Loss curves of a stage as a PNG, drawn from its JSON-lines metrics."""

from __future__ import annotations

import json
from pathlib import Path

from styletalker_core.io.atomic import atomic_path


def read_stage_metrics(metrics_file: Path, stage: str) -> dict[str, tuple[list[int], list[float]]]:
    """name -> (steps, values) of every numeric value logged for ``stage``."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    if not metrics_file.is_file():
        return series
    for line in metrics_file.read_text().splitlines():
        record = json.loads(line)
        if record.get("stage") != stage:
            continue
        for name, value in record.items():
            if name in ("stage", "step", "time") or not isinstance(value, (int, float)):
                continue
            steps, values = series.setdefault(name, ([], []))
            steps.append(record["step"])
            values.append(float(value))
    return series


def plot_losses(metrics_file: Path, stage: str, destination: Path) -> Path | None:
    """Draw every logged value of ``stage`` against the step, one panel each. None if nothing was logged."""
    series = read_stage_metrics(metrics_file, stage)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(series)
    columns = min(3, len(names))
    rows = (len(names) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names):
        steps, values = series[name]
        axis.plot(steps, values, linewidth=1)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
        if all(v > 0 for v in values) and max(values) / max(min(values), 1e-12) > 100:
            axis.set_yscale("log")
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figure.suptitle(f"stage {stage}")
    # Margins fixed in inches (room for tick labels, a title and an x label per panel): tight_layout
    # measured every label by drawing the figure an extra time, 40 % of a plot's time.
    width, height = figure.get_size_inches()
    top, bottom, row_gap = 0.65, 0.5, 0.9
    panel_height = (height - top - bottom - row_gap * (rows - 1)) / rows
    figure.subplots_adjust(left=0.7 / width, right=1 - 0.2 / width, bottom=bottom / height, top=1 - top / height,
                           wspace=0.3, hspace=row_gap / panel_height)
    with atomic_path(destination) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return destination
