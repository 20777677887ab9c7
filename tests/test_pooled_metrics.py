"""Blink durations (issue 21, point 3) and mouth amplitude (point 5) of the synthetic domain, and the pooled
metrics they need: the KS statistic against scipy and hand-computed cases, blink runs of known lengths,
pooling over clips in evaluate and in the ablation's bootstrap."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from styletalker_core.ablate.report import mode_statistics
from styletalker_core.ablate.runs import RecipeRun
from styletalker_core.ablate.statistics import pooled_interval, pooled_paired_difference
from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate import MetricInfo, evaluate_items
from styletalker_core.interfaces import FactorOracle
from styletalker_core.interfaces.metric import EvalItem
from styletalker_synthetic.blink_duration import BlinkDuration, blink_durations, ks_statistic
from styletalker_synthetic.mouth_amplitude import MouthAmplitude

FPS = 25


class PixelOracle(FactorOracle):
    """Reads eye and mouth openness written into pixel (0, 0) and (0, 1) of channel 0: a perfect oracle."""

    resolution = 4
    factors = {"eye_open": 1, "mouth_open": 1}  # noqa: RUF012 - FactorOracle.factors, never mutated

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"eye_open": images[:, 0, 0, 0], "mouth_open": images[:, 0, 0, 1]}


def frames_with(eye_open: np.ndarray | None = None, mouth_open: np.ndarray | None = None) -> torch.Tensor:
    """Frames [t, 3, 4, 4] carrying eye and mouth openness for :class:`PixelOracle`."""
    length = len(eye_open if eye_open is not None else mouth_open)
    frames = torch.zeros(length, 3, 4, 4)
    if eye_open is not None:
        frames[:, 0, 0, 0] = torch.as_tensor(eye_open, dtype=torch.float32)
    if mouth_open is not None:
        frames[:, 0, 0, 1] = torch.as_tensor(mouth_open, dtype=torch.float32)
    return frames


def eyes_with_blinks(length: int, blinks: list[tuple[int, int]]) -> np.ndarray:
    """Eye openness [length]: open (1), closed (0.1) for each (first frame, frames) blink."""
    eyes = np.ones(length)
    for start, frames in blinks:
        eyes[start:start + frames] = 0.1
    return eyes


def blink_item(generated: list[tuple[int, int]], truth: list[tuple[int, int]], length: int = 50) -> EvalItem:
    return EvalItem(frames=frames_with(eyes_with_blinks(length, generated)), audio=torch.zeros(1),
                    labels={"eye_open": torch.as_tensor(eyes_with_blinks(length, truth))})


def blink_metric() -> BlinkDuration:
    metric = BlinkDuration()
    metric.use_oracle(PixelOracle())
    return metric


def test_ks_statistic_of_hand_computed_cases() -> None:
    assert ks_statistic([1, 2, 3], [3, 2, 1]) == 0.0
    assert ks_statistic([1, 2], [3, 4]) == 1.0  # no overlap
    assert ks_statistic([1, 2], [2, 3]) == 0.5  # F_a - F_b: 0.5 at 1, 1 - 0.5 at 2, 0 at 3
    assert ks_statistic([1, 1, 1, 2], [1, 2, 2, 2]) == 0.5  # ties: 3/4 - 1/4 at 1
    assert ks_statistic([], [0.2]) == 1.0 and ks_statistic([0.2], []) == 1.0  # one side never blinks
    assert math.isnan(ks_statistic([], []))


def test_ks_statistic_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for size_a, size_b in ((5, 7), (40, 13), (1, 30)):
        a = rng.integers(2, 9, size=size_a) / FPS  # blink durations in whole frames: many ties
        b = rng.normal(0.2, 0.08, size=size_b)
        assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_blink_durations_leave_out_blinks_cut_by_the_clip() -> None:
    eyes = eyes_with_blinks(40, [(0, 3), (10, 4), (20, 1), (35, 5)])  # the first and the last touch the ends
    assert blink_durations(eyes, FPS) == [4 / FPS, 1 / FPS]
    assert blink_durations(np.ones(10), FPS) == []


def test_blink_duration_of_one_clip() -> None:
    metric = blink_metric()
    assert metric.observe(blink_item([(5, 3), (30, 6)], [(8, 3)])) == {"generated": [3 / FPS, 6 / FPS], "truth": [3 / FPS]}
    assert metric.compute(blink_item([(5, 3)], [(8, 3)])) == {"blink_duration_ks": 0.0}  # same length, other time
    assert metric.compute(blink_item([], [(8, 3)])) == {"blink_duration_ks": 1.0}  # never blinks
    motion = blink_item([(5, 3)], [(8, 3)])
    motion.motion_labels = {"eye_open": torch.as_tensor(eyes_with_blinks(50, [(20, 5)]))}
    assert metric.compute(motion) == {"blink_duration_ks": 1.0}  # against the motion source's blinks
    with pytest.raises(StyleTalkerError, match="eye_open"):
        metric.observe(EvalItem(frames=frames_with(np.ones(5)), audio=torch.zeros(1), labels={"pose": torch.zeros(5, 3)}))


def pooled_items() -> list[tuple[str, EvalItem, dict[str, str]]]:
    """Two clips whose blinks are too short in one and too long in the other: each clip alone has KS 1,
    the pooled durations are the same (KS 0). A third clip without blinks adds nothing."""
    return [("a", blink_item([(10, 2)], [(10, 5)]), {}), ("b", blink_item([(10, 5)], [(10, 2)]), {}),
            ("c", blink_item([], []), {})]


def test_evaluate_pools_observations_over_clips() -> None:
    metric = blink_metric()
    report = evaluate_items([(MetricInfo("synthetic_blink_duration", {}, dict(metric.higher_is_better)), metric)], pooled_items())
    assert [item.values["blink_duration_ks"] for item in report.items[:2]] == [1.0, 1.0]
    assert math.isnan(report.items[2].values["blink_duration_ks"])
    summary = report.summary["blink_duration_ks"]
    assert summary.pooled and summary.mean == 0.0 and summary.count == 3 and math.isnan(summary.std)
    written = report.to_json()
    assert written["items"][0]["observations"] == {"synthetic_blink_duration": {"generated": [2 / FPS], "truth": [5 / FPS]}}
    assert written["summary"]["blink_duration_ks"]["pooled"] is True
    assert "pooled" in report.format_table()


def durations(generated: list[float], truth: list[float]) -> dict[str, list[float]]:
    return {"generated": generated, "truth": truth}


def pooled_ks(observations: list[dict[str, list[float]]]) -> float:
    return BlinkDuration().pool(observations)["blink_duration_ks"]


def test_pooled_interval_pools_the_resampled_clips() -> None:
    same = [[durations([0.1], [0.1]), durations([0.2], [0.2]), None]]  # the clip without observations is left out
    interval = pooled_interval(same, pooled_ks)
    assert (interval.mean, interval.low, interval.high, interval.count) == (0.0, 0.0, 0.0, 2)
    crossed = [[durations([0.08], [0.2]), durations([0.2], [0.08])] * 10]
    interval = pooled_interval(crossed, pooled_ks)
    assert interval.mean == 0.0 and interval.count == 20  # every clip alone would say 1
    assert 0.0 <= interval.low <= interval.high <= 1.0 and interval.high > 0  # unbalanced resamples differ
    never = [[durations([], [0.2]), durations([], [0.12])]]
    assert pooled_interval(never, pooled_ks).mean == 1.0
    assert pooled_interval([[None, None]], pooled_ks).count == 0


def test_pooled_paired_difference() -> None:
    good = [[durations([0.12], [0.12]), durations([0.2], [0.2]), durations([0.16], [0.16])] * 5]
    bad = [[durations([], [0.12]), durations([], [0.2]), durations([], [0.16])] * 5]
    difference = pooled_paired_difference(bad, good, pooled_ks)
    assert difference.interval.mean == 1.0 and difference.differs
    assert not pooled_paired_difference(good, good, pooled_ks).differs
    with pytest.raises(ValueError, match="same seeds and clips"):
        pooled_paired_difference(good, [good[0][:3]], pooled_ks)


def test_ablation_tables_use_the_pooled_value() -> None:
    metric = blink_metric()
    info = MetricInfo("synthetic_blink_duration", {}, dict(metric.higher_is_better))
    runs = []
    for name, items in (("baseline", pooled_items()), ("never_blinks", [(n, blink_item([], [(10, 2)]), s) for n, _, s in pooled_items()])):
        run = RecipeRun(name, name, Path("."), Path("model.safetensors"), 0.0, [], [], clips=["a", "b", "c"])
        run.reports = {"audio": evaluate_items([(info, metric)], items)}
        runs.append(run)
    statistics = mode_statistics(runs, "audio")["blink_duration_ks"]
    assert statistics.intervals["baseline"].mean == 0.0 and statistics.intervals["baseline"].count == 3
    assert statistics.intervals["never_blinks"].mean == 1.0
    assert statistics.differences["never_blinks"].interval.mean == 1.0


def amplitude_item(generated: np.ndarray, truth: np.ndarray) -> EvalItem:
    return EvalItem(frames=frames_with(mouth_open=generated), audio=torch.zeros(1), reference_frames=frames_with(mouth_open=truth))


def test_mouth_amplitude_ratios() -> None:
    metric = MouthAmplitude()
    metric.use_oracle(PixelOracle())
    truth = 0.4 + 0.3 * np.sin(np.arange(60) / 3)
    same = metric.compute(amplitude_item(truth, truth))
    assert same == pytest.approx({"mouth_amplitude_std_ratio": 1.0, "mouth_amplitude_mean_ratio": 1.0})
    smaller = truth.mean() + 0.5 * (truth - truth.mean())  # openings half as wide about the same mean
    assert metric.compute(amplitude_item(smaller, truth)) == pytest.approx(
        {"mouth_amplitude_std_ratio": 0.5, "mouth_amplitude_mean_ratio": 1.0}, abs=1e-6)
    shut = 0.5 * truth  # every opening halved: both ratios 0.5
    longer = np.concatenate([shut, np.ones(10)])  # extra generated frames beyond the truth are not compared
    assert metric.compute(amplitude_item(longer, truth)) == pytest.approx(
        {"mouth_amplitude_std_ratio": 0.5, "mouth_amplitude_mean_ratio": 0.5}, abs=1e-6)
    still = metric.compute(amplitude_item(truth, np.full(60, 0.3)))
    assert math.isnan(still["mouth_amplitude_std_ratio"])  # a ground truth that does not move: no ratio
