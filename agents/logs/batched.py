"""Record every impression of a :class:`liveenv.batched.BatchedLiveEnv` to Parquet,
a batch of requests at a time, in the schema and the part files of
:class:`agents.logs.recorder.LogRecorder` (one row per slate position).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from agents.logs.parts import PartWriter
from agents.logs.past_rows import write_past
from agents.logs.schema import room_emb_dim
from liveenv.rooms import PHASES
from liveenv.world import STREAMER_COHORTS, USER_COHORTS

__all__ = ["BatchLogRecorder"]

_USER_COHORTS = np.asarray(USER_COHORTS)
_PHASES = np.asarray(PHASES)


class BatchLogRecorder:
    """Record every impression of a :class:`liveenv.batched.BatchedLiveEnv` in the
    schema of :class:`LogRecorder` (one row per slate position), a batch at a time.

    >>> rec = BatchLogRecorder(BatchedLiveEnv("default", batch_size=4096), "logs/b0",
    ...                        policy_name="random")
    >>> obs, info = rec.reset(seed=0)
    >>> obs, rewards, truncated, info = rec.step(slots, propensities)  # (B,) or (B, K)
    >>> rec.close()

    The rows are the batched path's (see :mod:`liveenv.batched` for what differs
    from one request at a time); parts are written as :class:`LogRecorder` does.
    ``propensities``: None (NaN), one number, or an array broadcastable to the
    actions' ``(B, K)``.
    """

    def __init__(
        self,
        env: Any,
        out_dir: str | os.PathLike[str],
        *,
        chunk_rows: int = 65_536,
        policy_name: str = "unknown",
        append: bool = False,
        compression: str = "zstd",
    ) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows={chunk_rows} is invalid: must be >= 1")
        self.env, self.out_dir = env, Path(out_dir)
        self.parts = PartWriter(self.out_dir, append, compression)
        self.chunk_rows, self.policy_name = chunk_rows, policy_name
        self.rows_written, self.past_rows_written = 0, 0
        self._batches: list[dict[str, np.ndarray]] = []
        self._buffered, self._episode, self._request = 0, -1, 0
        self._obs: dict[str, np.ndarray] | None = None

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode += 1
        self._obs = obs
        self.flush()  # the previous episode's rows come before this one's past
        env = self.env
        self.past_rows_written += write_past(
            self.parts, env.world, self._episode, env.weights, obs["user"], env.config
        )
        return obs, info

    def step(self, actions: np.ndarray, propensities: float | np.ndarray | None = None):
        """``env.step(actions)`` and record the answered batch."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        b = len(self._obs["user"])
        slate = np.asarray(actions, dtype=np.int64).reshape(b, -1)
        prop = (
            np.full(slate.shape, np.nan)
            if propensities is None
            else np.broadcast_to(
                np.asarray(propensities, dtype=np.float64).reshape(b, -1)
                if np.ndim(propensities)
                else np.float64(propensities),
                slate.shape,
            )
        )
        if np.any((prop < 0) | (prop > 1)):
            raise ValueError("propensities must be in [0, 1] or NaN")
        obs, rewards, truncated, info = self.env.step(actions)
        self._batches.append(self._batch_columns(slate, prop, info))
        self._buffered += slate.size
        self._request += b
        self._obs = obs
        while self._buffered >= self.chunk_rows:
            self.flush(self.chunk_rows)
        return obs, rewards, truncated, info

    def _batch_columns(
        self, slate: np.ndarray, prop: np.ndarray, info: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        obs, (b, k) = self._obs, slate.shape
        req = np.repeat(np.arange(b), k)
        slot = slate.reshape(-1)
        pos = np.tile(np.arange(k), b)
        clicked = pos == info["clicked_pos"][req]
        fb = np.where(clicked[:, None], info["feedback"][req], 0.0)
        t_ms = np.round(info["time_s"] * 1000.0).astype(np.int64)[req]
        watch_ms = np.round(info["watch_s"] * 1000.0).astype(np.int64)[req]
        rooms, o = obs["rooms"][req, slot], room_emb_dim(obs)
        new = info["new_streamer"].reshape(-1)
        return {
            "episode": np.full(len(req), self._episode),
            "request_id": self._request + req,
            "user_id": info["user_id"][req],
            "user_cohort": _USER_COHORTS[info["user_cohort"][req]],
            "slot": slot,
            "streamer_id": info["streamer_id"].reshape(-1),
            "live_id": info["room_id"].reshape(-1),
            "policy_propensity": prop.reshape(-1),
            "followed": obs["room_followed"][req, slot] > 0,
            "phase": _PHASES[info["phase"].reshape(-1)],
            "streamer_cohort": np.where(new, STREAMER_COHORTS[0], STREAMER_COHORTS[1]),
            "timestamp_ms": t_ms,
            "day": t_ms // 86_400_000,
            "hour": (t_ms // 3_600_000) % 24,
            "slate_pos": pos,
            "is_click": clicked,
            "watch_time_ms": np.where(clicked, watch_ms, 0),
            "like": fb[:, 2] > 0,
            "comment": fb[:, 3] > 0,
            "follow": fb[:, 4] > 0,
            "gift_price": fb[:, 5],
            "reward": fb @ self.env.weights,
            "policy": np.full(len(req), self.policy_name),
            "content_emb": rooms[:, :o],
            "pooled_emb": rooms[:, o : 2 * o],
            "room_stats": rooms[:, 2 * o :],
            "user_feat": obs["user"][req],
        }

    def flush(self, rows: int | None = None) -> Path | None:
        """Write the first ``rows`` buffered rows (all: None) as the next part
        (atomically) and keep the rest buffered; return the part's path."""
        if self._buffered == 0:
            return None
        cols = {name: np.concatenate([c[name] for c in self._batches]) for name in self._batches[0]}
        n = self._buffered if rows is None else min(rows, self._buffered)
        rest = {name: col[n:] for name, col in cols.items()}
        path = self.parts.write({name: col[:n] for name, col in cols.items()}, self.env.config)
        self.rows_written += n
        self._buffered -= n
        self._batches = [rest] if self._buffered else []
        return path

    @property
    def parts_written(self) -> list[Path]:
        return self.parts.parts_written

    def close(self) -> None:
        self.flush()
