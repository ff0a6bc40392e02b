"""Interaction logs as numpy arrays for the tokenizer (no dependency on ``agents``).

A log here is what the one log reader, :mod:`agents.logs`, gives: a pandas
DataFrame (``read_log``) or a dict of numpy arrays (``read_log_arrays``). Files
are read there, not here; the schema is ``agents/logs/schema.py``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = [
    "SEGMENT_MS",
    "VECTOR_COLUMNS",
    "LogLike",
    "load_log_arrays",
    "log_user_history",
    "room_state_rows",
]

#: One content segment (the world's 30-s clock tick) in ms.
SEGMENT_MS = 30_000
VECTOR_COLUMNS = ("content_emb", "pooled_emb", "room_stats", "user_feat")
LogLike = Any  # pd.DataFrame | dict[str, np.ndarray]


def load_log_arrays(log: LogLike, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``columns`` of a log as numpy arrays (vector columns stacked to 2-D float32).

    Raises ValueError naming a missing column, or saying the log is empty.
    """
    if isinstance(log, (str, os.PathLike)):
        raise TypeError(
            f"log={str(log)!r} is a path: read it first with agents.logs.read_log_arrays "
            "(the one log reader) and pass the arrays"
        )
    if not hasattr(log, "__getitem__") or not hasattr(log, "__contains__"):
        raise ValueError(
            f"log of type {type(log).__name__} is not supported: pass a DataFrame "
            "or a dict of numpy arrays"
        )
    missing = [c for c in columns if c not in log]
    if missing:
        raise ValueError(f"log is missing column(s) {missing}; needed: {list(columns)}")
    out = {}
    for name in columns:
        col = log[name]
        col = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
        if name in VECTOR_COLUMNS and col.ndim == 1:
            col = np.stack(col).astype(np.float32) if len(col) else np.zeros((0, 0))
        out[name] = np.asarray(col)
    n = len(out[columns[0]])
    if n == 0:
        raise ValueError("log is empty: it has 0 rows (impressions)")
    return out


def log_user_history(
    arrays: dict[str, np.ndarray], history_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """For every row: the mean content of its user's last ``history_len`` logged clicks
    on earlier requests, (rows, o) float32, and whether there was any, (rows,) bool.

    The analogue of pooling the observation's ``history_content``; history before the
    log started is unknown.
    """
    user, ts = arrays["user_id"], arrays["timestamp_ms"]
    req, click = arrays["request_id"], arrays["is_click"].astype(bool)
    content = arrays["content_emb"]
    order = np.lexsort((req, ts, user))  # by user, then time, then request
    u_s, r_s, c_s = user[order], req[order], click[order]
    n = len(order)
    new_user = np.r_[True, u_s[1:] != u_s[:-1]]
    new_block = new_user | np.r_[True, r_s[1:] != r_s[:-1]]
    user_start = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    block_start = np.maximum.accumulate(np.where(new_block, np.arange(n), 0))
    clicks_before = np.r_[0, np.cumsum(c_s)]  # clicks among sorted rows [0, i)
    hi = clicks_before[block_start]  # clicks before this request (all users)
    lo = np.maximum(clicks_before[user_start], hi - history_len)
    csum = np.zeros((int(c_s.sum()) + 1, content.shape[1]), dtype=np.float64)
    np.cumsum(content[order][c_s], axis=0, out=csum[1:])
    count = hi - lo
    pooled_s = (csum[hi] - csum[lo]) / np.maximum(count, 1)[:, None]
    pooled = np.empty_like(pooled_s, dtype=np.float32)
    has = np.empty(n, dtype=bool)
    pooled[order], has[order] = pooled_s, count > 0
    return pooled, has


def room_state_rows(arrays: dict[str, np.ndarray], mode: str) -> np.ndarray:
    """One row per distinct room state of the log: per (live_id, 30-s tick) in dynamic
    mode, per streamer in static mode (first occurrence, sorted row indices)."""
    if mode == "static":
        keys = np.asarray(arrays["streamer_id"])[:, None]
    else:
        keys = np.stack([arrays["live_id"], arrays["timestamp_ms"] // SEGMENT_MS], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)
