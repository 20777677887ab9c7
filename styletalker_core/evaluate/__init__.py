"""Evaluation engine: metric plugins over generated videos, aggregated to JSON and a table.

- pairing: which reference, motion source and audio belong to each generated video
- loading: files -> EvalItem
- engine: build metric components, score items, aggregate
- report: EvalReport (JSON, table)
"""

from styletalker_core.evaluate.engine import DEFAULT_METRICS, build_metrics, evaluate_items, metric_specs, missing_requirements, score_item
from styletalker_core.evaluate.loading import ClipCache, frames_to_tensor, load_job, read_labels
from styletalker_core.evaluate.pairing import ClipRef, EvalJob, match_name, pair_inputs, read_manifest
from styletalker_core.evaluate.report import EvalReport, ItemResult, MetricInfo, Summary, format_number

__all__ = [
    "DEFAULT_METRICS",
    "ClipCache",
    "ClipRef",
    "EvalJob",
    "EvalReport",
    "ItemResult",
    "MetricInfo",
    "Summary",
    "build_metrics",
    "evaluate_items",
    "format_number",
    "frames_to_tensor",
    "load_job",
    "match_name",
    "metric_specs",
    "missing_requirements",
    "pair_inputs",
    "read_labels",
    "read_manifest",
    "score_item",
]
