"""Evaluation metrics as pure functions of arrays.

Ranking metrics take ``scores`` of shape ``(N, R)`` (one row per request, one
column per candidate slot, higher is better) and ``targets`` of shape ``(N,)``
(the slot that was the positive). Ranks are 0-based and **ties are broken by
slot index**: among candidates with the same score, the lower slot index ranks
first, which is the order in which :func:`policies.base.masked_top_k` picks
them. ``NaN`` scores count as ``-inf``; a candidate to leave out entirely
(an empty slot) should get the score ``-inf``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(N,)`` 0-based rank of each target among its row, ties by slot index.

    rank = #(candidates scored strictly higher) + #(equal score, lower index).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be (N, R); got shape {s.shape}")
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"targets has {t.shape[0]} rows, scores has {s.shape[0]}")
    if np.any((t < 0) | (t >= s.shape[1])):
        raise ValueError(f"targets must be slot indices in [0, {s.shape[1]})")
    s = np.where(np.isnan(s), -np.inf, s)
    own = s[np.arange(len(t)), t][:, None]
    before = np.arange(s.shape[1])[None, :] < t[:, None]
    return ((s > own) | ((s == own) & before)).sum(axis=1)


def hr_at_k(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Hit rate: share of rows whose target ranks in the top ``k`` (NaN if no rows)."""
    _check_k(k)
    ranks = target_ranks(scores, targets)
    return float(np.mean(ranks < k)) if len(ranks) else math.nan


def mrr_at_k(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Mean reciprocal rank, ``1 / (rank + 1)`` inside the top ``k``, else 0."""
    _check_k(k)
    ranks = target_ranks(scores, targets)
    if not len(ranks):
        return math.nan
    return float(np.mean(np.where(ranks < k, 1.0 / (ranks + 1.0), 0.0)))


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k={k!r} is invalid: must be an integer >= 1")


def mean_ci(
    values: Sequence[float] | np.ndarray, level: float = 0.95
) -> tuple[float, float, float]:
    """``(mean, low, high)``: a two-sided Student-t interval across runs (seeds).

    NaN values are dropped. With one value the interval is ``(NaN, NaN)``; with
    none, everything is NaN. Identical values give a zero-width interval.
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is invalid: must be in (0, 1)")
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def gini(counts: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative amounts (0: equal; (n-1)/n: one holds all).

    ``G = sum_i (2i - n - 1) x_(i) / (n * sum x)`` over the sorted amounts,
    ``i = 1..n``. NaN for no amounts at all (no distribution to measure); zero
    when the amounts are all zero (nothing to share, so nothing is concentrated).
    """
    x = np.sort(np.asarray(counts, dtype=np.float64).reshape(-1))
    if np.any(x < 0) or np.any(np.isnan(x)):
        raise ValueError("gini needs non-negative, non-NaN amounts")
    n, total = len(x), float(x.sum())
    if n == 0:
        return float("nan")
    if total == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * x) / (n * total))


def coverage(counts: Sequence[float] | np.ndarray) -> float:
    """Share of the candidate population with a non-zero count (NaN if empty).

    ``counts`` holds one entry per candidate (e.g. every streamer that was
    live during the run), zeros included.
    """
    x = np.asarray(counts, dtype=np.float64).reshape(-1)
    return float(np.mean(x > 0)) if len(x) else math.nan


def oracle_normalised_score(
    r: float | np.ndarray, r_random: float | np.ndarray, r_oracle: float | np.ndarray
) -> float | np.ndarray:
    """``(R - R_random) / (R_oracle - R_random)``: 0 is random, 1 is the oracle.

    NaN where the oracle does not beat random (a zero or negative gap)."""
    r, lo, hi = (np.asarray(v, dtype=np.float64) for v in (r, r_random, r_oracle))
    gap = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(gap > 0, (r - lo) / np.where(gap > 0, gap, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out
