"""Confidence intervals for ablation tables: a two-level bootstrap over training seeds and clips.

An ablation measures every recipe on the same clips, once per training seed, so one value of a
recipe is a matrix ``values[seed, clip]`` (NaN where a clip has no value, e.g. blink F1 of a clip
without blinks). The number reported is the mean of the finite values. Its uncertainty comes
from both levels: another training seed gives another model, another clip another test case.
Each bootstrap resample draws the seeds with replacement and then, within each drawn seed, the
clips with replacement, and takes the mean of the finite values drawn; the 95 % interval is the
2.5th and 97.5th percentile of ``RESAMPLES`` such means. The bootstrap's random numbers come from
a fixed seed (``RNG_SEED``), so a table is reproducible to the digit.

A recipe is compared with the baseline (the first recipe) by the *paired* bootstrap of the
difference: the same seeds and clips are drawn for both (clip c of seed s of the recipe against
clip c of seed s of the baseline), so what the clips have in common cancels. The difference is
called larger than its interval when the 95 % interval of the difference excludes 0.

With one seed only the clips are resampled: the interval then says nothing about training
variability (the tables say how many seeds they hold).

A *pooled* value (a statistic of the observations of all clips together, such as the
Kolmogorov-Smirnov distance between generated and true blink durations: one clip holds too few
blinks for a per-clip value) is bootstrapped the same way, except that each resample pools the
drawn clips' observations and computes the statistic of the pool instead of a mean.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

RESAMPLES = 2000
RNG_SEED = 20261204
LEVEL = 0.95


@attrs.frozen
class Interval:
    """A mean with its bootstrap interval; ``count``: finite values it was computed from."""

    mean: float
    low: float
    high: float
    count: int

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely above or below 0 (False when it is undefined)."""
        return bool(self.low > 0 or self.high < 0)

    def to_json(self) -> dict[str, float | int | None]:
        def safe(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {"mean": safe(self.mean), "low": safe(self.low), "high": safe(self.high), "count": self.count}


@attrs.frozen
class Difference:
    """A recipe minus the baseline: the mean paired difference with its interval; ``differs``: the
    interval excludes 0 (the difference is larger than its uncertainty)."""

    interval: Interval

    @property
    def differs(self) -> bool:
        return self.interval.excludes_zero

    def to_json(self) -> dict[str, object]:
        return {**self.interval.to_json(), "differs": self.differs}


def as_matrix(values: np.ndarray | list[list[float]]) -> np.ndarray:
    """``values`` as a float64 matrix [seeds, clips]; a flat list is one seed."""
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None]
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ValueError(f"expected values [seeds, clips] with at least one of each, got shape {matrix.shape}")
    return matrix


def resample_indices(seeds: int, clips: int, resamples: int = RESAMPLES, rng_seed: int = RNG_SEED
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Seed indices [resamples, seeds] and, within each drawn seed, clip indices [resamples, seeds, clips].
    With one seed the seed level is not resampled."""
    rng = np.random.default_rng(rng_seed)
    seed_index = rng.integers(0, seeds, size=(resamples, seeds)) if seeds > 1 else np.zeros((resamples, 1), dtype=np.int64)
    clip_index = rng.integers(0, clips, size=(resamples, seeds, clips))
    return seed_index, clip_index


def _finite_mean(values: np.ndarray, axis: tuple[int, ...] | None = None) -> Any:  # an array along axis, else a numpy float
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without finite values: NaN
        return np.nanmean(np.where(np.isfinite(values), values, np.nan), axis=axis)


def _interval(matrix: np.ndarray, resamples: int, rng_seed: int, level: float) -> Interval:
    finite = np.isfinite(matrix)
    count = int(finite.sum())
    if not count:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(_finite_mean(matrix))
    seeds, clips = matrix.shape
    seed_index, clip_index = resample_indices(seeds, clips, resamples=resamples, rng_seed=rng_seed)
    drawn = matrix[seed_index[:, :, None], clip_index]  # [resamples, seeds, clips]
    means = _finite_mean(drawn, axis=(1, 2))
    means = means[np.isfinite(means)]
    if not len(means):
        return Interval(mean, math.nan, math.nan, count)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), count)


def bootstrap_interval(values: np.ndarray | list[list[float]], resamples: int = RESAMPLES, rng_seed: int = RNG_SEED,
                       level: float = LEVEL) -> Interval:
    """Mean of the finite ``values`` [seeds, clips] and its ``level`` bootstrap interval over seeds and clips."""
    return _interval(as_matrix(values), resamples, rng_seed, level)


def paired_difference(values: np.ndarray | list[list[float]], baseline: np.ndarray | list[list[float]],
                      resamples: int = RESAMPLES, rng_seed: int = RNG_SEED, level: float = LEVEL) -> Difference:
    """``values`` minus ``baseline`` (both [seeds, clips], the same seeds and clips in the same order),
    paired: the same seeds and clips are drawn for both. Pairs where either is NaN are left out."""
    matrix, base = as_matrix(values), as_matrix(baseline)
    if matrix.shape != base.shape:
        raise ValueError(f"paired values need the same seeds and clips: shapes {matrix.shape} and {base.shape}")
    return Difference(_interval(matrix - base, resamples, rng_seed, level))


def _pooled_interval(observations: Sequence[Sequence[Any]], statistic: Callable[[list[Any]], float], resamples: int,
                     rng_seed: int, level: float) -> Interval:
    """``statistic`` of the observations present (not None) of ``observations`` [seeds][clips], with the
    bootstrap interval of the same statistic over resampled seeds and clips (the draws of
    :func:`resample_indices`, as for the mean)."""
    present = [observation for row in observations for observation in row if observation is not None]
    if not present:
        return Interval(math.nan, math.nan, math.nan, 0)
    value = float(statistic(present))
    seeds, clips = len(observations), len(observations[0])
    seed_index, clip_index = resample_indices(seeds, clips, resamples=resamples, rng_seed=rng_seed)
    values = []
    for draw in range(resamples):
        drawn = [observations[seed][clip] for position, seed in enumerate(seed_index[draw])
                 for clip in clip_index[draw, position]]
        drawn = [observation for observation in drawn if observation is not None]
        values.append(float(statistic(drawn)) if drawn else math.nan)
    finite = np.array([v for v in values if math.isfinite(v)])
    if not len(finite):
        return Interval(value, math.nan, math.nan, len(present))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(value, float(low), float(high), len(present))


def _check_rows(observations: Sequence[Sequence[Any]]) -> None:
    if not observations or not observations[0] or any(len(row) != len(observations[0]) for row in observations):
        raise ValueError("expected observations [seeds][clips] with at least one of each and the same clips per seed")


def pooled_interval(observations: Sequence[Sequence[Any]], statistic: Callable[[list[Any]], float],
                    resamples: int = RESAMPLES, rng_seed: int = RNG_SEED, level: float = LEVEL) -> Interval:
    """A statistic of observations pooled over clips (and seeds): ``observations`` [seeds][clips] holds each
    clip's observations (None where it has none), ``statistic`` maps a list of them to a number (e.g. the
    KS statistic of all clips' blink durations). The value is the statistic of every clip's observations
    together; its interval pools the clips of each bootstrap resample (seeds, then clips within seeds, as
    :func:`bootstrap_interval`). ``count``: clips with observations."""
    _check_rows(observations)
    return _pooled_interval(observations, statistic, resamples, rng_seed, level)


def pooled_paired_difference(observations: Sequence[Sequence[Any]], baseline: Sequence[Sequence[Any]],
                             statistic: Callable[[list[Any]], float], resamples: int = RESAMPLES,
                             rng_seed: int = RNG_SEED, level: float = LEVEL) -> Difference:
    """``statistic`` of the pooled ``observations`` minus that of the pooled ``baseline`` (both [seeds][clips],
    the same seeds and clips in the same order), paired: each resample pools the same seeds and clips of
    both. Clips without observations in either are left out of both."""
    _check_rows(observations)
    _check_rows(baseline)
    if (len(observations), len(observations[0])) != (len(baseline), len(baseline[0])):
        raise ValueError("paired observations need the same seeds and clips: "
                         f"{len(observations)}x{len(observations[0])} and {len(baseline)}x{len(baseline[0])}")
    pairs = [[(ours, theirs) if ours is not None and theirs is not None else None for ours, theirs in zip(row, base)]
             for row, base in zip(observations, baseline)]

    def difference(drawn: list[tuple[Any, Any]]) -> float:
        return float(statistic([ours for ours, _ in drawn])) - float(statistic([theirs for _, theirs in drawn]))

    return Difference(_pooled_interval(pairs, difference, resamples, rng_seed, level))
