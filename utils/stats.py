"""Uncertainty for the numbers lectures compare: intervals for a rate and for a difference of two rates.

    rate_ci([True, False, True])                  -> (0.667, 0.208, 0.939)   Wilson interval
    difference_ci(with_memory, without_memory)    -> (diff, low, high)       bootstrap, paired when lengths match
    fmt_rate(outcomes)                            -> "0.67 [0.21, 0.94] (n=3)"
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def rate_ci(outcomes: Sequence[bool] | Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(rate, low, high): the Wilson score interval of a success rate over independent 0/1 outcomes."""
    n = len(outcomes)
    if n == 0:
        return math.nan, math.nan, math.nan
    p = float(np.mean(np.asarray(outcomes, dtype=float)))
    z = _z(confidence)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, max(0.0, centre - half), min(1.0, centre + half)


def difference_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95, paired: bool | None = None,
                  n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:  # fmt: skip
    """(mean(a) - mean(b), low, high) by the percentile bootstrap.

    Paired (the same items under two conditions: resample items, keep their pairs) when the lengths match, unless
    paired=False; otherwise each group is resampled on its own.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    paired = len(a) == len(b) if paired is None else paired
    rng = np.random.default_rng(seed)
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
        idx = rng.integers(0, len(a), (n_boot, len(a)))
        diffs = a[idx].mean(1) - b[idx].mean(1)
    else:
        diffs = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(a.mean() - b.mean()), float(low), float(high)


def fmt_rate(outcomes: Sequence[bool] | Sequence[float], digits: int = 2) -> str:
    """'rate [low, high] (n=N)' with the Wilson interval."""
    p, low, high = rate_ci(outcomes)
    return f"{p:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}] (n={len(outcomes)})"


def fmt_difference(a: Sequence[float], b: Sequence[float], digits: int = 2, **kwargs) -> str:
    """'+diff [low, high]' with the bootstrap interval of mean(a) - mean(b)."""
    d, low, high = difference_ci(a, b, **kwargs)
    return f"{d:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _z(confidence: float) -> float:
    """The standard normal quantile for a two-sided interval (the inverse error function, by bisection)."""
    target, low, high = (1 + confidence) / 2, 0.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < target else (low, mid)
    return (low + high) / 2
