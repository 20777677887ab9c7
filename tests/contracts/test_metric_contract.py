"""The contract of the ``metric`` kind (styletalker_core.testing.checks.metric), run on every
registered metric built with its example options (checkpoint options get untrained components)."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts
from styletalker_core.testing.checks.metric import has_defined_best


def test_builtin_metrics_are_registered() -> None:
    names = {factory.name for factory in factories_of_kind("metric")}
    assert {"psnr", "ssim", "lmd", "csim", "blink_rate", "pose_diversity", "cpbd"} <= names


def test_the_best_score_check_covers_the_reference_metrics() -> None:
    with_best = {factory.name for factory in factories_of_kind("metric") if has_defined_best(factory)}
    assert {"psnr", "ssim", "lmd", "csim"} <= with_best


@parametrize_with_contracts("metric")
def test_metric_contract(component, contract) -> None:
    contract(component)
