"""Tests of the live SID index (policies.tokenizer.live_index)."""

from __future__ import annotations

import numpy as np
import pytest

from policies.tokenizer.diagnostics import collision_rate
from policies.tokenizer.live_index import LiveSIDIndex


def _hand_made() -> LiveSIDIndex:
    idx = LiveSIDIndex(3)
    idx.set(10, (1, 2, 3))
    idx.set(11, (1, 2, 4))
    idx.set(12, (1, 5, 0))
    idx.set(13, (4, 0, 0))
    idx.set(14, (1, 2, 3))  # collides with room 10
    return idx


def test_add_and_query() -> None:
    idx = _hand_made()
    assert len(idx) == 5 and 10 in idx and 99 not in idx
    assert idx.sid_of(12) == (1, 5, 0)
    assert idx.rooms_for((1, 2, 3)) == [10, 14]
    assert idx.rooms_for((9, 9, 9)) == []
    assert idx.allowed_next(()).tolist() == [1, 4]
    assert idx.allowed_next((1,)).tolist() == [2, 5]
    assert idx.allowed_next((1, 2)).tolist() == [3, 4]
    assert idx.allowed_next((7,)).tolist() == []
    assert idx.allowed_next((1,)).dtype == np.int64
    assert idx.count_under((1,)) == 4 and idx.count_under((1, 2, 3)) == 2
    assert idx.collision_rate == pytest.approx(2 / 5)
    assert idx.room_ids == [10, 11, 12, 13, 14]


def test_as_table_sorted() -> None:
    table, rooms = _hand_made().as_table()
    assert table.dtype == np.int64
    assert table.tolist() == [[1, 2, 3], [1, 2, 4], [1, 5, 0], [4, 0, 0]]
    assert rooms == [[10, 14], [11], [12], [13]]
    empty_table, empty_rooms = LiveSIDIndex(3).as_table()
    assert empty_table.shape == (0, 3) and empty_rooms == []


def test_change_and_remove_prune_prefixes() -> None:
    idx = _hand_made()
    idx.set(12, (4, 0, 1))  # change: prefix (1, 5) must disappear
    assert idx.sid_of(12) == (4, 0, 1)
    assert idx.allowed_next((1,)).tolist() == [2]
    assert idx.allowed_next((4, 0)).tolist() == [0, 1]
    idx.set(12, (4, 0, 1))  # same SID: no-op
    assert len(idx) == 5
    idx.remove(14)
    assert idx.rooms_for((1, 2, 3)) == [10] and idx.collision_rate == 0.0
    idx.remove(13)
    idx.remove(12)
    assert idx.allowed_next(()).tolist() == [1]
    assert idx.allowed_next((4,)).tolist() == []
    assert (4,) not in idx._children and () in idx._children
    idx.remove(10)
    idx.remove(11)
    assert len(idx) == 0 and idx._children == {} and idx._rooms == {}
    assert idx.allowed_next(()).tolist() == []


def test_update_many_and_drop_missing() -> None:
    idx = _hand_made()
    idx.update_many([10, 20], np.array([[0, 0, 0], [0, 0, 1]]))
    assert idx.sid_of(10) == (0, 0, 0) and idx.sid_of(20) == (0, 0, 1) and len(idx) == 6
    idx.update_many([20, 21], [(3, 3, 3), (3, 3, 3)], drop_missing=True)
    assert idx.room_ids == [20, 21] and idx.collision_rate == 1.0
    assert idx.allowed_next(()).tolist() == [3]
    with pytest.raises(ValueError, match="expected 3"):
        idx.update_many([1, 2], [(0, 0, 0), (0, 0)])
    assert idx.room_ids == [20, 21]  # validated before any change
    with pytest.raises(ValueError, match="2 room_ids but 1 sids"):
        idx.update_many([1, 2], [(0, 0, 0)])
    idx.clear()
    assert len(idx) == 0


def test_validation_errors() -> None:
    idx = _hand_made()
    with pytest.raises(ValueError, match="length 2, expected 3"):
        idx.set(1, (1, 2))
    with pytest.raises(ValueError, match="tokens must be ints >= 0"):
        idx.set(1, (1, -2, 0))
    with pytest.raises(KeyError, match="room 99"):
        idx.remove(99)
    with pytest.raises(KeyError, match="room 99"):
        idx.sid_of(99)
    with pytest.raises(ValueError, match="shorter than n_levels=3"):
        idx.allowed_next((1, 2, 3))
    with pytest.raises(ValueError, match="n_levels=0 is invalid"):
        LiveSIDIndex(0)


def test_cached_results_refresh_and_are_read_only() -> None:
    idx = _hand_made()
    first = idx.allowed_next((1, 2))
    with pytest.raises(ValueError):
        first[0] = 9
    idx.set(30, (1, 2, 9))
    assert idx.allowed_next((1, 2)).tolist() == [3, 4, 9]
    table, _ = idx.as_table()
    assert [1, 2, 9] in table.tolist()


def test_randomized_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    n_levels, k = 3, 4
    idx = LiveSIDIndex(n_levels)
    live: dict[int, tuple[int, ...]] = {}
    for _ in range(1500):
        room = int(rng.integers(0, 60))
        if room in live and rng.random() < 0.4:
            idx.remove(room)
            del live[room]
        else:
            sid = tuple(int(t) for t in rng.integers(0, k, size=n_levels))
            idx.set(room, sid)
            live[room] = sid
        if rng.random() < 0.1:
            _check_against(idx, live, n_levels, k, rng)
    _check_against(idx, live, n_levels, k, rng)


def _check_against(
    idx: LiveSIDIndex,
    live: dict[int, tuple[int, ...]],
    n_levels: int,
    k: int,
    rng: np.random.Generator,
) -> None:
    assert len(idx) == len(live)
    for _ in range(10):
        depth = int(rng.integers(0, n_levels))
        prefix = tuple(int(t) for t in rng.integers(0, k, size=depth))
        brute = sorted({s[depth] for s in live.values() if s[:depth] == prefix})
        assert idx.allowed_next(prefix).tolist() == brute
    table, rooms = idx.as_table()
    expected = sorted(set(live.values()))
    assert [tuple(r) for r in table.tolist()] == expected
    for sid, rs in zip(expected, rooms, strict=True):
        assert rs == sorted(r for r, s in live.items() if s == sid)
    codes = np.array(list(live.values()), dtype=np.int64).reshape(-1, n_levels)
    assert idx.collision_rate == pytest.approx(collision_rate(codes))
