"""Running metric components over evaluation items and aggregating their values.

Metrics are ``metric`` components (plugins). Each declares the EvalItem fields it needs
(``requires``); an item without them is skipped for that metric and the reason recorded,
so one run can mix videos with and without ground truth.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate.report import EvalReport, ItemResult, MetricInfo, Pool, summarize
from styletalker_core.interfaces.metric import EvalItem, Metric, PooledMetric
from styletalker_core.recipe.schema import Recipe
from styletalker_core.registry import ComponentSpec, Registries, build_component

LOG = logging.getLogger(__name__)

# Used when neither --metrics nor a recipe's [evaluate] metrics say otherwise: the video metrics
# that need no trained weights.
DEFAULT_METRICS = ("psnr", "ssim", "lmd", "csim", "blink_rate", "pose_diversity")


def metric_specs(names: Sequence[str] | None, recipe: Recipe | None) -> list[ComponentSpec]:
    """Which metrics to run: ``names`` (with the options the recipe gives a metric of the same name),
    else the recipe's ``evaluate.metrics``, else :data:`DEFAULT_METRICS` with default options."""
    from_recipe = list(recipe.evaluate.metrics) if recipe is not None else []
    if names:
        by_name = {spec.name: spec for spec in from_recipe}
        return [by_name.get(name, ComponentSpec(name)) for name in names]
    if from_recipe:
        return from_recipe
    return [ComponentSpec(name) for name in DEFAULT_METRICS]


def build_metrics(registries: Registries, specs: Iterable[ComponentSpec]) -> list[tuple[MetricInfo, Metric]]:
    """Build each metric component. Two metrics reporting the same value name are an error."""
    built: list[tuple[MetricInfo, Metric]] = []
    owners: dict[str, str] = {}
    for spec in specs:
        metric = build_component(registries, "metric", spec)
        resolved = getattr(metric, "component_spec", spec)
        for key in metric.higher_is_better:
            if key in owners:
                raise StyleTalkerError(
                    f"metrics {owners[key]!r} and {spec.name!r} both report {key!r}; list each metric once"
                )
            owners[key] = spec.name
        built.append((MetricInfo(spec.name, dict(resolved.options), dict(metric.higher_is_better)), metric))
    return built


def missing_requirements(metric: Metric, item: EvalItem) -> list[str]:
    """The entries of ``metric.requires`` that ``item`` lacks.

    An entry is an EvalItem field (missing when None, empty tensor or empty dict) or ``labels.NAME`` /
    ``motion_labels.NAME`` for one per-frame label.
    """
    missing = []
    for requirement in metric.requires:
        field, _, label = requirement.partition(".")
        value = getattr(item, field, None)
        if label:
            present = isinstance(value, dict) and label in value
        else:
            present = value is not None and not (isinstance(value, (dict, torch.Tensor)) and len(value) == 0)
        if not present:
            missing.append(requirement)
    return missing


def checked_observations(metric: str, observations: dict) -> dict[str, list[float]]:
    """A pooled metric's observations of one item as {name: [float]} (JSON-ready); a clear error otherwise."""
    if not isinstance(observations, dict):
        raise StyleTalkerError(f"metric {metric!r}: observe() must return a dict of lists of numbers, got {type(observations).__name__}")
    try:
        return {str(name): [float(value) for value in values] for name, values in observations.items()}
    except (TypeError, ValueError) as error:
        raise StyleTalkerError(f"metric {metric!r}: observe() must return a dict of lists of numbers ({error})") from None


def score_item(metrics: list[tuple[MetricInfo, Metric]], item: EvalItem, name: str, source: dict[str, str] | None = None) -> ItemResult:
    """Run every metric on one item. Values are checked against what the metric declared."""
    result = ItemResult(name, {}, dict(source or {}))
    for info, metric in metrics:
        missing = missing_requirements(metric, item)
        if missing:
            result.skipped[info.name] = "needs " + ", ".join(missing)
            continue
        try:
            if isinstance(metric, PooledMetric):
                observations = checked_observations(info.name, metric.observe(item))
                result.observations[info.name] = observations
                values = metric.pool([observations])
            else:
                values = metric.compute(item)
        except StyleTalkerError as error:
            message = str(error)
            prefix = "" if message.startswith(f"metric {info.name}") else f"metric {info.name}: "
            raise StyleTalkerError(f"{name}: {prefix}{message}") from None
        unexpected = sorted(set(values) - set(info.higher_is_better))
        if unexpected:
            raise StyleTalkerError(f"metric {info.name!r} returned values it does not declare in higher_is_better: {', '.join(unexpected)}")
        for key in info.higher_is_better:
            value = float(values.get(key, math.nan))
            result.values[key] = value
    return result


def evaluate_items(
    metrics: list[tuple[MetricInfo, Metric]],
    items: Iterable[tuple[str, EvalItem, dict[str, str]]],
) -> EvalReport:
    """Score (name, item, source description) triples one at a time (items can be produced lazily)."""
    results = []
    for name, item, source in items:
        LOG.info("evaluating %s", name)
        results.append(score_item(metrics, item, name, source))
    for info, _ in metrics:
        if results and all(info.name in r.skipped for r in results):
            LOG.warning("metric %s ran on no video (%s)", info.name, results[0].skipped[info.name])
    pools: dict[str, Pool] = {info.name: metric.pool for info, metric in metrics if isinstance(metric, PooledMetric)}
    return EvalReport([info for info, _ in metrics], results, summarize(metrics, results), pools)
