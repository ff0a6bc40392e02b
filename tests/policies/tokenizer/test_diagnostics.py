"""Tests of SID diagnostics (policies.tokenizer.diagnostics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from policies.tokenizer.diagnostics import (
    codebook_utilisation,
    collision_rate,
    reconstruction_error,
    sid_churn,
)


def test_codebook_utilisation_hand_made() -> None:
    codes = np.array([[0, 0], [1, 0], [1, 3], [2, 0]])
    assert codebook_utilisation(codes, (4, 8)) == [0.75, 0.25]
    assert codebook_utilisation(np.zeros((0, 2), dtype=np.int64), (4, 8)) == [0.0, 0.0]
    with pytest.raises(ValueError, match="2 levels but codebook_sizes has 3"):
        codebook_utilisation(codes, (4, 4, 4))
    with pytest.raises(ValueError, match=r"codes\[:, 1\] has values outside \[0, 2\]"):
        codebook_utilisation(codes, (4, 3))


def test_collision_rate_hand_made() -> None:
    codes = np.array([[0, 1], [0, 1], [0, 2], [1, 1], [0, 1], [1, 1]])
    assert collision_rate(codes) == pytest.approx(5 / 6)
    assert collision_rate(np.array([[0, 1], [1, 0]])) == 0.0
    assert collision_rate(np.zeros((0, 3), dtype=np.int64)) == 0.0
    with pytest.raises(ValueError, match=r"2-D.*shape \(3,\)"):
        collision_rate(np.array([1, 2, 3]))


def test_reconstruction_error() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])  # mean squared norm 12.5
    assert reconstruction_error(x, x) == 0.0
    assert reconstruction_error(x, np.zeros_like(x)) == pytest.approx(1.0)
    assert reconstruction_error(x, x + np.array([1.0, 0.0])) == pytest.approx(1.0 / 12.5)
    assert reconstruction_error(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0
    assert math.isinf(reconstruction_error(np.zeros((2, 2)), np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"x has shape \(2, 2\) but recon has shape \(2, 3\)"):
        reconstruction_error(x, np.zeros((2, 3)))


def test_sid_churn_hand_made() -> None:
    # room 1: A A B A  -> 2 distinct, 2 changes; room 2: C C -> 1 distinct, 0 changes
    a, b, c = (0, 0), (0, 1), (1, 0)
    room_ids = [1, 2, 1, 1, 2, 1]
    sids = np.array([a, c, a, b, c, a])
    out = sid_churn(room_ids, sids)
    assert out["n_rooms"] == 2
    assert out["mean_distinct"] == 1.5 and out["median_distinct"] == 1.5
    assert out["mean_changes"] == 1.0
    assert np.asarray(out["room_ids"]).tolist() == [1, 2]
    assert np.asarray(out["distinct"]).tolist() == [2, 1]
    assert np.asarray(out["changes"]).tolist() == [2, 0]
    assert "changes_per_hour" not in out


def test_sid_churn_with_times_sorts_and_rates() -> None:
    a, b = (0, 0), (0, 1)
    # Given out of order; by time room 7 goes A, B, B, A over 1800 s -> 2 changes.
    room_ids = [7, 7, 7, 7, 8]
    sids = np.array([b, a, a, b, a])
    times = [600.0, 0.0, 1800.0, 1200.0, 0.0]
    out = sid_churn(room_ids, sids, times=times)
    assert np.asarray(out["changes"]).tolist() == [2, 0]
    # 2 changes over 0.5 room-hours (room 8 contributes 0 h).
    assert out["changes_per_hour"] == pytest.approx(4.0)
    single = sid_churn([1], np.array([a]), times=[5.0])
    assert math.isnan(float(single["changes_per_hour"]))


def test_sid_churn_empty_and_bad_inputs() -> None:
    out = sid_churn([], np.zeros((0, 2), dtype=np.int64))
    assert out["n_rooms"] == 0 and out["mean_changes"] == 0.0
    with pytest.raises(ValueError, match="3 room_ids but 2 sids"):
        sid_churn([1, 2, 3], np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="1 times but 2 room_ids"):
        sid_churn([1, 2], np.zeros((2, 2), dtype=np.int64), times=[0.0])


def test_sid_churn_matches_loop_on_random_stream() -> None:
    rng = np.random.default_rng(3)
    room_ids = rng.integers(0, 20, size=400)
    sids = rng.integers(0, 2, size=(400, 2))
    out = sid_churn(room_ids, sids)
    last: dict[int, tuple[int, ...]] = {}
    changes: dict[int, int] = {}
    seen: dict[int, set[tuple[int, ...]]] = {}
    for r, s in zip(room_ids.tolist(), map(tuple, sids.tolist()), strict=True):
        changes[r] = changes.get(r, 0) + int(r in last and last[r] != s)
        last[r] = s
        seen.setdefault(r, set()).add(s)
    rooms = sorted(seen)
    assert np.asarray(out["room_ids"]).tolist() == rooms
    assert np.asarray(out["changes"]).tolist() == [changes[r] for r in rooms]
    assert np.asarray(out["distinct"]).tolist() == [len(seen[r]) for r in rooms]
