"""Diagnostics of semantic IDs: codebook use, collisions, reconstruction, churn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "codebook_utilisation",
    "collision_rate",
    "reconstruction_error",
    "sid_churn",
]


def _as_codes(codes: object, name: str = "codes") -> np.ndarray:
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, n_levels), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def codebook_utilisation(codes: np.ndarray, codebook_sizes: Sequence[int]) -> list[float]:
    """Share of each level's codebook that appears in ``codes`` (n, n_levels).

    Returns one float in [0, 1] per level; empty ``codes`` give zeros.
    """
    arr = _as_codes(codes)
    if arr.shape[1] != len(codebook_sizes):
        raise ValueError(
            f"codes have {arr.shape[1]} levels but codebook_sizes has {len(codebook_sizes)}"
        )
    out: list[float] = []
    for level, k in enumerate(codebook_sizes):
        col = arr[:, level]
        if col.size and (col.min() < 0 or col.max() >= k):
            raise ValueError(f"codes[:, {level}] has values outside [0, {k - 1}]")
        out.append(np.unique(col).size / k)
    return out


def _group_sizes(codes: np.ndarray) -> np.ndarray:
    """For every row, how many rows share its full code."""
    _, inv, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return counts[inv.reshape(-1)]


def collision_rate(codes: np.ndarray) -> float:
    """Share of rows whose full code is shared with at least one other row (0 if empty)."""
    arr = _as_codes(codes)
    if arr.shape[0] == 0:
        return 0.0
    return float(np.mean(_group_sizes(arr) > 1))


def reconstruction_error(x: np.ndarray, recon: np.ndarray) -> float:
    """Relative squared error ``mean ||x - recon||^2 / mean ||x||^2``.

    0 is perfect; 1 is what ``recon = 0`` scores. The denominator is the raw (uncentred)
    mean squared norm, so this is ``1 - explained energy``. When ``x`` is all zeros the
    result is 0.0 for a perfect ``recon`` and inf otherwise.
    """
    xa, ra = np.asarray(x, dtype=np.float64), np.asarray(recon, dtype=np.float64)
    if xa.shape != ra.shape:
        raise ValueError(f"x has shape {xa.shape} but recon has shape {ra.shape}")
    if xa.ndim != 2 or xa.shape[0] == 0:
        raise ValueError(f"x must be a non-empty 2-D array, got shape {xa.shape}")
    err = float(np.mean(np.sum((xa - ra) ** 2, axis=1)))
    energy = float(np.mean(np.sum(xa**2, axis=1)))
    if energy == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / energy


def sid_churn(
    room_ids: Sequence[int] | np.ndarray,
    sids: np.ndarray,
    times: Sequence[float] | np.ndarray | None = None,
) -> dict[str, int | float | np.ndarray]:
    """How often rooms change SID over a stream of (room_id, sid) observations.

    The stream is taken in the given order, or ordered by ``times`` (seconds, stable
    sort) when given. A change is an observation of a room whose SID differs from that
    room's previous observation.

    Returns
    -------
    dict with ``n_rooms`` (int), ``mean_distinct``, ``median_distinct`` (distinct SIDs per
    room), ``mean_changes`` (changes per room), per-room arrays ``room_ids``,
    ``distinct``, ``changes`` (sorted by room id) and, when ``times`` is given,
    ``changes_per_hour``: total changes / total observed room-hours (sum over rooms of
    last minus first observation time; NaN when that is 0).
    """
    rooms = np.asarray(room_ids).reshape(-1)
    codes = _as_codes(sids, "sids")
    if rooms.shape[0] != codes.shape[0]:
        raise ValueError(f"got {rooms.shape[0]} room_ids but {codes.shape[0]} sids")
    t = None if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
    if t is not None and t.shape[0] != rooms.shape[0]:
        raise ValueError(f"got {t.shape[0]} times but {rooms.shape[0]} room_ids")
    if rooms.shape[0] == 0:
        return _empty_churn(t is not None)
    order = np.arange(rooms.shape[0]) if t is None else np.argsort(t, kind="stable")
    order = order[np.argsort(rooms[order], kind="stable")]  # by room, then time
    r_sorted = rooms[order]
    _, sid_id = np.unique(codes, axis=0, return_inverse=True)
    s_sorted = sid_id.reshape(-1)[order]
    uniq_rooms, first = np.unique(r_sorted, return_index=True)
    same_room = r_sorted[1:] == r_sorted[:-1]
    changed = same_room & (s_sorted[1:] != s_sorted[:-1])
    room_idx = np.searchsorted(uniq_rooms, r_sorted)
    changes = np.bincount(room_idx[1:][changed], minlength=uniq_rooms.size)
    pairs = np.unique(np.stack([room_idx, s_sorted], axis=1), axis=0)
    distinct = np.bincount(pairs[:, 0], minlength=uniq_rooms.size)
    out: dict[str, int | float | np.ndarray] = {
        "n_rooms": int(uniq_rooms.size),
        "mean_distinct": float(distinct.mean()),
        "median_distinct": float(np.median(distinct)),
        "mean_changes": float(changes.mean()),
        "room_ids": uniq_rooms,
        "distinct": distinct,
        "changes": changes,
    }
    if t is not None:
        t_sorted = t[order]
        last = np.append(first[1:], r_sorted.size) - 1
        hours = float(np.sum(t_sorted[last] - t_sorted[first])) / 3600.0
        out["changes_per_hour"] = float(changes.sum()) / hours if hours > 0 else float("nan")
    return out


def _empty_churn(with_times: bool) -> dict[str, int | float | np.ndarray]:
    out: dict[str, int | float | np.ndarray] = {
        "n_rooms": 0,
        "mean_distinct": 0.0,
        "median_distinct": 0.0,
        "mean_changes": 0.0,
        "room_ids": np.zeros(0, dtype=np.int64),
        "distinct": np.zeros(0, dtype=np.int64),
        "changes": np.zeros(0, dtype=np.int64),
    }
    if with_times:
        out["changes_per_hour"] = float("nan")
    return out
