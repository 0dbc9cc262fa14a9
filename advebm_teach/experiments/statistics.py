"""Means over seeds with their 95 % intervals, and the paired difference of two methods.

A quantity measured once per seed (n seeds, mean m, sample standard deviation s) is reported as
m [m - h, m + h] with h = t_{0.975, n-1} s / sqrt(n), Student's t interval (``scipy.stats.t``).

Two methods trained and tested on the same seeds are compared by the differences d_k = a_k - b_k
seed by seed: their interval, and in how many seeds the first is ahead. That is the right test for
paired runs: two overlapping per-method intervals do not mean "no effect", since much of each
interval's width is variation the two methods share.
"""

from __future__ import annotations

from typing import Sequence

from scipy import stats


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values``, its 95 % t-interval (a point for one value)."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("values must hold at least one number, got none")
    mean = sum(values) / n
    sem = float(stats.sem(values)) if n > 1 else 0.0  # s / sqrt(n)
    if sem == 0:  # one value, or all equal: no spread to widen the mean into an interval
        return mean, mean, mean
    low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def paired_difference(first: Sequence[float], second: Sequence[float]
                      ) -> tuple[tuple[float, float, float], int]:
    """The interval of ``first - second`` seed by seed, and in how many seeds ``first`` leads."""
    if len(first) != len(second):
        raise ValueError(f"first and second must hold one value per seed each, got {len(first)} "
                         f"and {len(second)}")
    return (interval([a - b for a, b in zip(first, second)]),
            sum(a > b for a, b in zip(first, second)))
