"""The ablation's bootstrap statistics on constructed data: known means, intervals that cover them,
a clearly different pair that is called different and a clearly equal pair that is not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from styletalker_core.ablate.statistics import (
    bootstrap_interval,
    paired_difference,
    resample_indices,
)


def test_interval_of_constant_values_is_the_value() -> None:
    interval = bootstrap_interval(np.full((3, 20), 0.25))
    assert interval.mean == interval.low == interval.high == pytest.approx(0.25)
    assert interval.count == 60


def test_known_mean_and_a_covering_interval() -> None:
    rng = np.random.default_rng(0)
    values = 1.0 + rng.normal(0, 0.5, size=(3, 40))
    interval = bootstrap_interval(values)
    assert interval.mean == pytest.approx(values.mean())
    assert interval.low < 1.0 < interval.high  # the true mean (1.0) is inside
    # width about 2 * 1.96 * 0.5 / sqrt(120) = 0.18 (clips alone), a little wider with the seed level
    assert 0.1 < interval.high - interval.low < 0.5


def test_seed_level_widens_the_interval() -> None:
    """Seeds that differ by a constant shift: resampling seeds must show that spread, which a
    clip-only bootstrap of the pooled values would hide."""
    rng = np.random.default_rng(1)
    clips = rng.normal(0, 0.1, size=40)
    shifted = np.stack([clips + shift for shift in (-1.0, 0.0, 1.0)])
    two_level = bootstrap_interval(shifted)
    one_seed = bootstrap_interval(shifted.reshape(1, -1))
    assert two_level.mean == pytest.approx(one_seed.mean)
    assert two_level.high - two_level.low > 2 * (one_seed.high - one_seed.low)


def test_nan_values_are_left_out() -> None:
    values = np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, np.nan]])
    interval = bootstrap_interval(values)
    assert interval.mean == pytest.approx(2.0) and interval.count == 3
    assert 1.0 <= interval.low <= interval.high <= 3.0
    empty = bootstrap_interval(np.full((2, 3), np.nan))
    assert empty.count == 0 and math.isnan(empty.mean) and not empty.excludes_zero


def test_fixed_rng_makes_tables_reproducible() -> None:
    values = np.random.default_rng(2).normal(size=(2, 10))
    assert bootstrap_interval(values) == bootstrap_interval(values)
    seeds, clips = resample_indices(3, 5, resamples=7)
    assert seeds.shape == (7, 3) and clips.shape == (7, 3, 5)
    assert resample_indices(1, 5, resamples=4)[0].tolist() == [[0]] * 4  # one seed: not resampled


def test_a_clearly_different_pair_differs() -> None:
    rng = np.random.default_rng(3)
    clip_effect = rng.normal(0, 1.0, size=(3, 20))  # large, shared by both recipes: cancels in pairs
    baseline = 0.8 + clip_effect + rng.normal(0, 0.05, size=(3, 20))
    worse = 0.5 + clip_effect + rng.normal(0, 0.05, size=(3, 20))
    difference = paired_difference(worse, baseline)
    assert difference.interval.mean == pytest.approx(-0.3, abs=0.05)
    assert difference.interval.high < 0 and difference.differs
    # unpaired, the intervals of the two means overlap: the pairing is what resolves the difference
    a, b = bootstrap_interval(worse), bootstrap_interval(baseline)
    assert a.high > b.low
    assert difference.to_json()["differs"] is True


def test_a_clearly_equal_pair_does_not_differ() -> None:
    rng = np.random.default_rng(4)
    baseline = 0.5 + rng.normal(0, 0.2, size=(3, 20))
    same = 0.5 + rng.normal(0, 0.2, size=(3, 20))
    difference = paired_difference(same, baseline)
    assert difference.interval.low < 0 < difference.interval.high
    assert not difference.differs
    identical = paired_difference(baseline, baseline)
    assert identical.interval.mean == identical.interval.low == identical.interval.high == 0 and not identical.differs


def test_paired_difference_needs_the_same_seeds_and_clips() -> None:
    with pytest.raises(ValueError, match="same seeds and clips"):
        paired_difference(np.zeros((2, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="seeds, clips"):
        bootstrap_interval(np.zeros((0, 3)))
