"""Evaluation results: per-video values, their aggregate, JSON output and a printed table."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from styletalker_core.interfaces.metric import Observations, PooledMetric
from styletalker_core.io.atomic import write_json_atomic

FORMAT_NAME = "styletalker-evaluation"
FORMAT_VERSION = 1


@attrs.define
class MetricInfo:
    """One metric component that ran: its plugin name, options and the values it reports."""

    name: str
    options: dict[str, Any]
    higher_is_better: dict[str, bool]


@attrs.define
class ItemResult:
    """Values of every metric on one generated video. NaN: the metric could not score it (no face found)."""

    name: str
    values: dict[str, float]
    source: dict[str, str] = attrs.Factory(dict)  # what was compared: generated file, reference, ...
    skipped: dict[str, str] = attrs.Factory(dict)  # metric name -> why it did not run on this item
    # pooled metric name -> its observations of this item (name -> values), pooled over items for the summary
    observations: dict[str, dict[str, list[float]]] = attrs.Factory(dict)


@attrs.define
class Summary:
    """Aggregate of one value over the videos: mean and population std of the finite values.

    count: videos with a finite value; missing: videos where the metric ran but returned NaN.
    pooled: the value of a pooled metric (interfaces/metric.py, PooledMetric) computed from the
    observations of all videos together: ``mean`` holds it (NaN when the pooled observations do not
    define it), ``std`` is NaN, ``count`` the videos observed and ``missing`` 0.
    """

    key: str
    metric: str
    higher_is_better: bool
    mean: float
    std: float
    count: int
    missing: int
    pooled: bool = False


Pool = Callable[[Sequence[Observations]], dict[str, float]]


@attrs.define
class EvalReport:
    """metrics that ran, per-video results and their summary. pools: the ``pool`` function of each
    pooled metric (by metric name; not written to JSON), for statistics that pool resampled videos."""

    metrics: list[MetricInfo]
    items: list[ItemResult]
    summary: dict[str, Summary]
    pools: dict[str, Pool] = attrs.Factory(dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN and infinities become null (JSON has neither)."""
        return _json_safe(
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "metrics": [attrs.asdict(m) for m in self.metrics],
                "summary": {key: attrs.asdict(s) for key, s in self.summary.items()},
                "items": [attrs.asdict(item) for item in self.items],
            }
        )

    def write_json(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_json())

    def table_rows(self) -> list[list[str]]:
        rows = []
        for key, s in self.summary.items():
            arrow = "higher" if s.higher_is_better else "lower"
            spread = "pooled" if s.pooled else format_number(s.std)
            rows.append([key, format_number(s.mean), spread, str(s.count), str(s.missing), arrow])
        return rows

    def format_table(self) -> str:
        """Plain-text table: one row per value with mean, std, count, missing and which way is better
        (a pooled metric's value is in the mean column, with "pooled" for its std)."""
        from styletalker_core.io.table import format_table

        return format_table(["value", "mean", "std", "videos", "no score", "better"], self.table_rows())


def format_number(value: float) -> str:
    """Four significant digits; '-' for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def summarize(metrics: list[tuple[MetricInfo, Any]], items: list[ItemResult]) -> dict[str, Summary]:
    """Aggregate every value of every metric over ``items`` (items where a metric was skipped do not count):
    the mean of the per-video values, or for a pooled metric its ``pool`` of every video's observations."""
    summary = {}
    for info, metric in metrics:
        if isinstance(metric, PooledMetric):
            observed = [item.observations[info.name] for item in items if info.name in item.observations]
            pooled = metric.pool(observed) if observed else {}
            for key, higher in info.higher_is_better.items():
                summary[key] = Summary(key, info.name, higher, float(pooled.get(key, math.nan)), math.nan, len(observed), 0,
                                       pooled=True)
            continue
        for key, higher in info.higher_is_better.items():
            values = np.array([item.values[key] for item in items if key in item.values], dtype=np.float64)
            finite = values[np.isfinite(values)]
            count = int(len(finite))
            mean = float(finite.mean()) if count else float("nan")
            std = float(finite.std()) if count else float("nan")
            summary[key] = Summary(key, info.name, higher, mean, std, count, int(len(values) - count))
    return summary
