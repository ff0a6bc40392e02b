"""Held-out logged requests with all their candidate rooms, for offline ranking metrics.

A log row holds the shown room only, but HR@K / MRR@K rank the logged room among
every room that was live for the request. A logged run is deterministic given its
config (stored in the log), its seed and its behaviour policy, so
:func:`capture_holdout` replays it and keeps the full observation of the logged
*clicked* requests at or after a cut-off time (the room table is stored once per
tick), checking request by request that the replay matches the log (user, time,
slot); a mismatch raises. Unclicked requests are never targets of HR@K, so they are
not kept. The pooled embedding of every streamer of the run is kept too, so a policy
scoring only these requests still knows the streamers of earlier history events.

:func:`offline_rank_metrics` scores the captured requests with any
``scores(batched obs) -> (B, R)`` function and returns
:func:`agents.evaluate.offline.offline_metrics`' tidy table.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluate.offline import offline_metrics
from agents.logs import log_config, read_log_arrays
from agents.logs.behaviour import resolve_policy, split_action
from agents.progress import progress_bar
from liveenv.atomic import atomic_write_bytes
from liveenv.env import LiveStreamEnv
from policies.onelive.features import PooledCache

__all__ = ["Holdout", "capture_holdout", "offline_rank_metrics"]

PER_REQUEST = (
    "user",
    "time",
    "room_followed",
    "room_streamer",
    "room_mask",
    "history_streamer",
    "history_content",
    "history_feedback",
    "history_age",
    "history_mask",
)
LOG_KEEP = (
    "request_id",
    "user_id",
    "streamer_id",
    "timestamp_ms",
    "slot",
    "is_click",
    "watch_time_ms",
    "like",
    "comment",
    "follow",
    "gift_price",
)


@dataclass
class Holdout:
    """Captured requests: ``obs`` per request (PER_REQUEST keys, leading axis n),
    ``table_of`` (n,) index into ``tables`` (T, R, W), the log rows (``rows``), and
    the pooled embedding of every streamer (``streamer_ids``, ``pooled``)."""

    obs: dict[str, np.ndarray]
    table_of: np.ndarray
    tables: np.ndarray
    rows: pd.DataFrame
    streamer_ids: np.ndarray
    pooled: np.ndarray

    def __len__(self) -> int:
        return len(self.table_of)

    def observations(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The batched observations of requests ``idx``."""
        out = {k: v[idx] for k, v in self.obs.items()}
        out["rooms"] = self.tables[self.table_of[idx]]
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        buf = io.BytesIO()
        cols = {f"row_{c}": self.rows[c].to_numpy() for c in self.rows.columns}
        np.savez_compressed(
            buf,
            table_of=self.table_of,
            tables=self.tables,
            streamer_ids=self.streamer_ids,
            pooled=self.pooled,
            **{f"obs_{k}": v for k, v in self.obs.items()},
            **cols,
        )
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Holdout:
        with np.load(path, allow_pickle=False) as z:
            obs = {k[4:]: z[k] for k in z.files if k.startswith("obs_")}
            rows = pd.DataFrame({k[4:]: z[k] for k in z.files if k.startswith("row_")})
            return cls(obs, z["table_of"], z["tables"], rows, z["streamer_ids"], z["pooled"])


def _check(log: dict[str, np.ndarray], i: int, info: dict[str, Any], slot: int) -> None:
    want = (int(log["user_id"][i]), int(log["timestamp_ms"][i]), int(log["slot"][i]))
    got = (int(info["user_id"]), round(info["time_s"] * 1000.0), slot)
    if want != got:
        raise ValueError(
            f"replay diverged from the log at request {i}: log (user, ms, slot) = {want}, "
            f"replay = {got}; wrong seed or behaviour policy?"
        )


def capture_holdout(
    log_dir: str | os.PathLike[str],
    cutoff_ms: int,
    seed: int = 0,
    policy: str = "platform",
    max_requests: int | None = None,
    progress: bool = True,
) -> Holdout:
    """Replay the run that wrote ``log_dir`` (one episode, slate of one, behaviour
    ``policy`` with ``seed``) and capture its clicked requests at or after
    ``cutoff_ms``; ``max_requests`` keeps an evenly spaced subset."""
    log = read_log_arrays(log_dir, (*LOG_KEEP, "episode"))
    if np.any(log["episode"] != 0) or np.any(np.diff(log["request_id"]) != 1):
        raise ValueError(f"{log_dir}: replay needs one episode with one row per request")
    cfg = log_config(log_dir)
    want = np.flatnonzero(log["is_click"] & (log["timestamp_ms"] >= cutoff_ms))
    if max_requests is not None and len(want) > max_requests:
        want = want[np.linspace(0, len(want) - 1, max_requests).round().astype(np.int64)]
    if len(want) == 0:
        raise ValueError(f"{log_dir}: no clicked requests at or after {cutoff_ms} ms")
    env = LiveStreamEnv(cfg)
    fn, _ = resolve_policy(policy, seed)
    obs, info = env.reset(seed=seed)
    keep, tables, table_of = {k: [] for k in PER_REQUEST}, [], []
    wanted, last = set(want.tolist()), int(want[-1])
    seen = PooledCache(cfg.obs_dim)  # pooled embedding of every streamer seen live
    bar = progress_bar(
        total=last + 1,
        desc="replay",
        unit="req",
        mininterval=1.0,
        enabled=progress,
    )
    for i in range(last + 1):
        action, _ = split_action(fn(obs, env))
        _check(log, i, info, int(action))
        seen.update_from_obs(obs)
        if i in wanted:
            for k in PER_REQUEST:
                keep[k].append(obs[k])
            if not tables or not np.array_equal(tables[-1], obs["rooms"]):
                tables.append(obs["rooms"])
            table_of.append(len(tables) - 1)
        obs, _, _, _, info = env.step(action)
        bar.update(1)
    bar.close()
    rows = pd.DataFrame({c: log[c][want] for c in LOG_KEEP})
    state = seen.state()
    ids = np.flatnonzero(state["known"])
    return Holdout(
        {k: np.stack(v) for k, v in keep.items()},
        np.asarray(table_of),
        np.stack(tables),
        rows,
        ids,
        state["pooled"][ids],
    )


def offline_rank_metrics(
    score: Callable[[dict[str, np.ndarray]], np.ndarray],
    holdout: Holdout,
    k: tuple[int, ...] = (1, 10, 50),
    batch_size: int = 64,
    progress: bool = False,
) -> pd.DataFrame:
    """HR@K and MRR@K (click and long-view targets) of ``score`` on the held-out requests."""
    parts = []
    for i in progress_bar(
        range(0, len(holdout), batch_size),
        desc="offline",
        mininterval=1.0,
        enabled=progress,
    ):
        idx = np.arange(i, min(i + batch_size, len(holdout)))
        obs = holdout.observations(idx)
        s = np.asarray(score(obs), dtype=np.float64)
        parts.append(np.where(obs["room_mask"].astype(bool), s, -np.inf))
    rows = holdout.rows.rename(columns={"is_click": "click", "watch_time_ms": "watch_ms"})
    return offline_metrics(np.concatenate(parts), rows, k=k)
