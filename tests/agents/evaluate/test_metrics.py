"""Metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.evaluate.metrics import (
    coverage,
    gini,
    hr_at_k,
    mean_ci,
    mrr_at_k,
    oracle_normalised_score,
    target_ranks,
)

SCORES = np.array(
    [
        [0.5, 0.9, 0.5, 0.1],  # target 2: 0.9 higher, tie with slot 0 (lower index) -> rank 2
        [0.5, 0.9, 0.5, 0.1],  # target 0: 0.9 higher, the tie with slot 2 is behind -> rank 1
        [0.2, -np.inf, 0.7, np.nan],  # target 2: best -> rank 0
        [0.2, -np.inf, 0.7, np.nan],  # target 3 (NaN = -inf): 0.2, 0.7 higher, tie with 1 -> 3
    ]
)
TARGETS = np.array([2, 0, 2, 3])


def test_target_ranks_ties_by_slot_index() -> None:
    assert target_ranks(SCORES, TARGETS).tolist() == [2, 1, 0, 3]


def test_hr_and_mrr_hand_computed() -> None:
    assert hr_at_k(SCORES, TARGETS, 1) == 0.25
    assert hr_at_k(SCORES, TARGETS, 2) == 0.5
    assert hr_at_k(SCORES, TARGETS, 3) == 0.75
    assert hr_at_k(SCORES, TARGETS, 4) == 1.0
    assert mrr_at_k(SCORES, TARGETS, 1) == pytest.approx(1 / 4)
    assert mrr_at_k(SCORES, TARGETS, 2) == pytest.approx((1 + 1 / 2) / 4)
    assert mrr_at_k(SCORES, TARGETS, 10) == pytest.approx((1 / 3 + 1 / 2 + 1 + 1 / 4) / 4)


def test_ranking_metric_errors_and_empty() -> None:
    assert math.isnan(hr_at_k(np.zeros((0, 3)), np.zeros(0), 1))
    assert math.isnan(mrr_at_k(np.zeros((0, 3)), np.zeros(0), 1))
    with pytest.raises(ValueError, match="k="):
        hr_at_k(SCORES, TARGETS, 0)
    with pytest.raises(ValueError, match="slot indices"):
        target_ranks(SCORES, np.array([0, 0, 0, 4]))
    with pytest.raises(ValueError, match="rows"):
        target_ranks(SCORES, np.array([0, 0]))


def test_mean_ci_t_interval() -> None:
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} * sd(=1) / sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert mean_ci([5.0, 5.0]) == (5.0, 5.0, 5.0)
    m, lo, hi = mean_ci([4.0, np.nan])
    assert m == 4.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in mean_ci([]))
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)


def test_gini_hand_computed() -> None:
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)  # (n - 1) / n
    assert gini([4, 1, 3, 2]) == pytest.approx(0.25)  # sum|xi - xj| / (2 n^2 mean) = 20 / 80
    assert np.isnan(gini([])) and gini([0, 0]) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        gini([1, -1])


def test_coverage() -> None:
    assert coverage([0, 3, 0, 1]) == 0.5
    assert math.isnan(coverage([]))


def test_oracle_normalised_score() -> None:
    assert oracle_normalised_score(2.0, 1.0, 5.0) == 0.25
    assert oracle_normalised_score(1.0, 1.0, 5.0) == 0.0
    assert oracle_normalised_score(5.0, 1.0, 5.0) == 1.0
    assert math.isnan(oracle_normalised_score(2.0, 1.0, 1.0))
    out = oracle_normalised_score(np.array([0.0, 3.0]), np.array([1.0, 1.0]), np.array([3.0, 1.0]))
    assert out[0] == -0.5 and math.isnan(out[1])
