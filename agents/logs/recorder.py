"""Record every impression of a :class:`liveenv.env.LiveStreamEnv` to Parquet.

>>> env = LogRecorder(LiveStreamEnv("default"), "logs/run0", policy_name="random")
>>> obs, info = env.reset(seed=0)
>>> obs, r, term, trunc, info = env.step_with_propensity(slot, 1 / n_live)
>>> env.close()  # flushes the last chunk

Rows are buffered and written every ``chunk_rows`` rows as ``part-00000.parquet``,
``part-00001.parquet``, ... Each part is written to a hidden temporary name in
the same directory, synced, then renamed with ``os.replace``: a run killed at
any moment leaves only complete parts (and at most one hidden ``.tmp`` file,
which the reader ignores); see :mod:`agents.logs.parts`. The batched env's
recorder: :class:`agents.logs.batched.BatchLogRecorder`.

Propensity: ``step_with_propensity(action, propensity)`` records the behaviour
policy's probability of the action; plain ``step(action)`` records NaN. For a
slate, ``propensity`` is either one number (stored on every row of the
request) or ``K`` numbers, the probability of each slot at its position.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.logs.behaviour import followed
from agents.logs.parts import PartWriter
from agents.logs.past_rows import write_past
from agents.logs.schema import room_emb_dim
from liveenv.rooms import PHASES
from liveenv.world import ROOM_STAT_COLUMNS, STREAMER_COHORTS

NEW_STREAMER_COLUMN = ROOM_STAT_COLUMNS.index("new_streamer")


class LogRecorder(gym.Wrapper):
    """A wrapper that logs one row per exposure of the wrapped env (see
    :mod:`agents.logs.schema`). Its observations, rewards and infos are the
    wrapped env's, unchanged."""

    def __init__(
        self,
        env: gym.Env,
        out_dir: str | os.PathLike[str],
        *,
        chunk_rows: int = 65_536,
        policy_name: str = "unknown",
        append: bool = False,
        compression: str = "zstd",
    ) -> None:
        super().__init__(env)
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows={chunk_rows} is invalid: must be >= 1")
        self.out_dir = Path(out_dir)
        self.parts = PartWriter(self.out_dir, append, compression)
        self.chunk_rows, self.policy_name = chunk_rows, policy_name
        self.rows_written, self.past_rows_written, self.invalid_actions = 0, 0, 0
        self._req: dict[str, list[Any]] = _buffer(_REQUEST_FIELDS)  # one entry per request
        self._row: dict[str, list[Any]] = _buffer(_ROW_FIELDS)  # one entry per slate position
        self._buffered = 0
        self._episode, self._request = -1, 0
        self._obs: dict[str, np.ndarray] | None = None
        self._info: dict[str, Any] = {}

    # ----- Gymnasium API --------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode += 1
        self._obs, self._info = obs, info
        self.flush()  # the previous episode's rows come before this one's past
        env = self.env.unwrapped
        self.past_rows_written += write_past(
            self.parts, env.world, self._episode, env.weights, obs["user"], env.config
        )
        return obs, info

    def step(self, action: Any):
        return self.step_with_propensity(action, None)

    def step_with_propensity(self, action: Any, propensity: float | np.ndarray | None):
        """``step(action)`` and record the behaviour policy's ``propensity``."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        slate = np.atleast_1d(np.asarray(action)).astype(np.int64).reshape(-1)
        prop = _propensities(propensity, len(slate))
        before = None
        if len(slate) > 1:
            before = _slate_meta(self.env.unwrapped.world, slate, self._info["time_s"], self._obs)
        obs, reward, terminated, truncated, info = self.env.step(action)
        if info.get("invalid_action", False):
            self.invalid_actions += 1  # a masked slot under masked_action="skip": no exposure
        else:
            self._record(slate, prop, info, before)
        self._obs, self._info = obs, info
        if self._buffered >= self.chunk_rows:
            self.flush()
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()

    def close(self) -> None:
        self.flush()
        super().close()

    # ----- rows -----------------------------------------------------------
    def _record(
        self,
        slate: np.ndarray,
        prop: np.ndarray,
        info: dict[str, Any],
        before: dict[str, np.ndarray] | None,
    ) -> None:
        """Buffer one request: per-request values once, per-row values (one row per
        slate position) in lists of Python scalars, turned into arrays at flush."""
        obs, prev, k = self._obs, self._info, len(slate)
        clicked = info["clicked_slot"]
        pos = next((i for i, s in enumerate(slate.tolist()) if s == clicked), -1)
        req, row = self._req, self._row
        req["k"].append(k)
        req["episode"].append(self._episode)
        req["request_id"].append(self._request)
        req["user_id"].append(prev["user_id"])
        req["timestamp_ms"].append(int(round(prev["time_s"] * 1000.0)))
        req["user_cohort"].append(info.get("served_user_cohort", prev["user_cohort"]))
        req["clicked_pos"].append(pos)
        req["watch_time_ms"].append(int(round(info["watch_s"] * 1000.0)) if pos >= 0 else 0)
        req["feedback"].append(np.asarray(info["feedback"], dtype=np.float64))
        req["user_feat"].append(obs["user"])
        if k == 1 and before is None:
            s = int(slate[0])
            row["slot"].append(s)
            row["streamer_id"].append(int(obs["room_streamer"][s]))
            row["policy_propensity"].append(float(prop[0]))
            fol = obs["room_followed"][s] if "room_followed" in obs else followed(obs)[s]
            row["followed"].append(bool(fol > 0))
            row["rooms"].append(obs["rooms"][s].copy())  # a row, not the whole table
            row["live_id"].append(info["room_id"])
            row["phase"].append(info["phase"])
            row["streamer_cohort"].append(info["streamer_cohort"])
        else:
            meta = before or {
                "live_id": [info["room_id"]],
                "phase": [info["phase"]],
                "streamer_cohort": [info["streamer_cohort"]],
            }
            row["slot"].extend(slate.tolist())
            row["streamer_id"].extend(obs["room_streamer"][slate].tolist())
            row["policy_propensity"].extend(np.asarray(prop, dtype=np.float64).tolist())
            row["followed"].extend((followed(obs)[slate] > 0).tolist())
            row["rooms"].extend(obs["rooms"][slate])
            for name in ("live_id", "phase", "streamer_cohort"):
                row[name].extend(np.asarray(meta[name]).tolist())
        self._buffered += k
        self._request += 1

    def _columns(self) -> dict[str, np.ndarray]:
        """The buffered rows as one array per schema column."""
        k = np.asarray(self._req["k"], dtype=np.int64)
        req = {
            name: np.asarray(v)
            for name, v in self._req.items()
            if name not in ("k", "user_feat", "feedback")
        }
        req["feedback"] = np.stack(self._req["feedback"])
        row = {name: np.asarray(v) for name, v in self._row.items() if name != "rooms"}
        row["rooms"] = np.stack(self._row["rooms"])
        one = bool(np.all(k == 1))
        pos = np.zeros(len(k), np.int64) if one else np.concatenate([np.arange(n) for n in k])
        each = req if one else {name: np.repeat(v, k, axis=0) for name, v in req.items()}
        clicked = pos == each["clicked_pos"]
        fb = np.where(clicked[:, None], each["feedback"], 0.0)
        o = room_emb_dim(self._obs)
        t_ms = each["timestamp_ms"]
        cols = {name: each[name] for name in ("episode", "request_id", "user_id", "user_cohort")}
        cols.update(
            {
                name: row[name]
                for name in (
                    "slot",
                    "streamer_id",
                    "live_id",
                    "policy_propensity",
                    "followed",
                    "phase",
                    "streamer_cohort",
                )
            }
        )
        user_feat = np.stack(self._req["user_feat"])
        cols.update(
            timestamp_ms=t_ms,
            day=t_ms // 86_400_000,
            hour=(t_ms // 3_600_000) % 24,
            slate_pos=pos,
            is_click=clicked,
            watch_time_ms=np.where(clicked, each["watch_time_ms"], 0),
            like=fb[:, 2] > 0,
            comment=fb[:, 3] > 0,
            follow=fb[:, 4] > 0,
            gift_price=fb[:, 5],
            reward=fb @ self.env.unwrapped.weights,
            policy=np.full(len(pos), self.policy_name),
            content_emb=row["rooms"][:, :o],
            pooled_emb=row["rooms"][:, o : 2 * o],
            room_stats=row["rooms"][:, 2 * o :],
            user_feat=user_feat if one else np.repeat(user_feat, k, axis=0),
        )
        return cols

    # ----- files ----------------------------------------------------------
    def flush(self) -> Path | None:
        """Write the buffered rows as the next part (atomically); return its path."""
        if self._buffered == 0:
            return None
        path = self.parts.write(self._columns(), self.env.unwrapped.config)
        self.rows_written += self._buffered
        self._req, self._row = _buffer(_REQUEST_FIELDS), _buffer(_ROW_FIELDS)
        self._buffered = 0
        return path

    @property
    def parts_written(self) -> list[Path]:
        return self.parts.parts_written


_REQUEST_FIELDS = (
    "k",
    "episode",
    "request_id",
    "user_id",
    "timestamp_ms",
    "user_cohort",
    "clicked_pos",
    "watch_time_ms",
    "feedback",
    "user_feat",
)
_ROW_FIELDS = (
    "slot",
    "streamer_id",
    "policy_propensity",
    "followed",
    "rooms",
    "live_id",
    "phase",
    "streamer_cohort",
)


def _buffer(fields: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [] for name in fields}


def _propensities(propensity: float | np.ndarray | None, k: int) -> np.ndarray:
    if propensity is None:
        return np.full(k, np.nan)
    if k == 1 and (
        type(propensity) is float or (type(propensity) is np.ndarray and propensity.shape == (1,))
    ):
        p = float(propensity if type(propensity) is float else propensity[0])  # the common case
        if not 0.0 <= p <= 1.0 and p == p:
            raise ValueError(f"propensity={[p]} is invalid: must be in [0, 1] or NaN")
        return np.array([p])
    p = np.asarray(propensity, dtype=np.float64).reshape(-1)
    if p.size == 1:
        p = np.repeat(p, k)
    if p.size != k:
        raise ValueError(f"propensity has {p.size} values; expected 1 or {k} (the slate size)")
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"propensity={p.tolist()} is invalid: must be in [0, 1] or NaN")
    return p


def _slate_meta(
    world: Any, slate: np.ndarray, now: float, obs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Room id, phase and streamer cohort of every slate position, read from
    the world before the step (the env's info reports only the clicked one)."""
    slots = world.table_slots[slate]
    new = obs["rooms"][slate, 2 * room_emb_dim(obs) + NEW_STREAMER_COLUMN] > 0
    return {
        "live_id": world.rooms.t.room_id[slots],
        "phase": np.asarray(PHASES, dtype=object)[world.rooms.phase(slots, now)],
        "streamer_cohort": np.where(new, STREAMER_COHORTS[0], STREAMER_COHORTS[1]).astype(object),
    }
