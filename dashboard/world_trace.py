"""What the World page shows: the live rooms of a world over simulated time.

:func:`trace_world` runs a (small) world under the most-popular policy through
the batched env and, at every 30-s clock tick, records every room of the
observation's room table: viewers, lifecycle phase, new-streamer flag, its
observed 30-s content embedding and, with a tokenizer, its semantic ID (through
:class:`policies.tokenizer.tracker.LiveSIDTracker`). Requests are counted per
user cohort. Plain functions (no Streamlit) so they are tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from liveenv.batched import BatchedLiveEnv
from liveenv.rooms import PHASES
from liveenv.world import ROOM_STAT_COLUMNS, USER_COHORTS
from policies.baselines import PopularPolicy

VIEWERS = ROOM_STAT_COLUMNS.index("log_viewers")
NEW_STREAMER = ROOM_STAT_COLUMNS.index("new_streamer")

__all__ = ["WorldTrace", "cohort_shares", "live_by_phase", "room_drift", "trace_world"]


@dataclass
class WorldTrace:
    """Rooms per tick, requests per cohort, content and SIDs of each room."""

    rooms: pd.DataFrame  # time_h, room_id, streamer, viewers, phase, new_streamer
    requests: pd.DataFrame  # time_h, user_cohort, requests
    content: dict[int, np.ndarray] = field(default_factory=dict)  # room -> (T, o)
    content_time: dict[int, np.ndarray] = field(default_factory=dict)  # room -> (T,) hours
    sids: pd.DataFrame | None = None  # room_id, time_h, sid ("a-b-c")


def trace_world(
    config: object, hours: float, seed: int = 0, tokenizer_path: str | Path | None = None
) -> WorldTrace:
    """Run ``config`` (an EnvConfig) for ``hours`` simulated hours and record it."""
    env = BatchedLiveEnv(config.replace(horizon_hours=hours), batch_size=256)  # type: ignore[attr-defined]
    policy = PopularPolicy()
    tracker = _tracker(tokenizer_path)
    obs, _ = env.reset(seed=seed)
    world, o = env.world, config.obs_dim  # type: ignore[attr-defined]
    rows, times, cohorts, content, last_tick = [], [], [], {}, None
    truncated = False
    while not truncated:
        if world.tick != last_tick:
            last_tick = world.tick
            rows.append(_snapshot(world, obs, o, content))
            if tracker is not None:
                tracker.update(world)
        obs, _, truncated, info = env.step(policy.act(obs).slots)
        times.append(np.asarray(info["time_s"]))
        cohorts.append(np.asarray(info["user_cohort"]))
    t_h = (np.concatenate(times) - world.t0) / 3600.0 if times else np.zeros(0)
    names = np.asarray(USER_COHORTS)[np.concatenate(cohorts).astype(int)] if cohorts else []
    requests = pd.DataFrame({"time_h": np.floor(t_h * 4) / 4, "user_cohort": names})
    rooms = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    requests = requests.groupby(["time_h", "user_cohort"]).size().rename("requests").reset_index()
    trace = WorldTrace(rooms, requests)
    for room, items in content.items():
        trace.content_time[room] = np.array([t for t, _ in items])
        trace.content[room] = np.stack([v for _, v in items])
    if tracker is not None:
        trace.sids = _sid_frame(tracker, world.t0)
    return trace


def _tracker(tokenizer_path: str | Path | None) -> object | None:
    if not tokenizer_path or not Path(tokenizer_path).is_file():
        return None
    from policies.tokenizer.semantic_ids import SIDTokenizer
    from policies.tokenizer.tracker import LiveSIDTracker

    return LiveSIDTracker(SIDTokenizer.load(tokenizer_path), scope="table")


def _snapshot(
    world: object,
    obs: dict[str, np.ndarray],
    o: int,
    content: dict[int, list[tuple[float, np.ndarray]]],
) -> pd.DataFrame:
    """The room table at this tick (from the observation; ids and phases from the world)."""
    slots = world.table_slots  # type: ignore[attr-defined]
    n, now = len(slots), float(world.sim.now)  # type: ignore[attr-defined]
    table = np.asarray(obs["rooms"][0][:n])
    room_ids = world.rooms.t.room_id[slots]  # type: ignore[attr-defined]
    t_h = (now - world.t0) / 3600.0  # type: ignore[attr-defined]
    for rid, vec in zip(room_ids.tolist(), table[:, :o], strict=True):
        content.setdefault(rid, []).append((t_h, vec.copy()))
    return pd.DataFrame(
        {
            "time_h": t_h,
            "room_id": room_ids,
            "streamer": world.rooms.t.streamer[slots],  # type: ignore[attr-defined]
            "viewers": np.expm1(table[:, 2 * o + VIEWERS]).round(),
            "phase": np.asarray(PHASES)[world.rooms.phase(slots, now)],  # type: ignore[attr-defined]
            "new_streamer": table[:, 2 * o + NEW_STREAMER] > 0,
        }
    )


def _sid_frame(tracker: object, t0: float) -> pd.DataFrame:
    h = tracker.history()  # type: ignore[attr-defined]
    sid = ["-".join(map(str, row)) for row in h["sids"].tolist()]
    return pd.DataFrame({"room_id": h["keys"], "time_h": (h["time_s"] - t0) / 3600.0, "sid": sid})


def live_by_phase(trace: WorldTrace) -> pd.DataFrame:
    """Live rooms per tick and phase (columns: the phases; index: hours)."""
    counts = trace.rooms.groupby(["time_h", "phase"]).size().unstack(fill_value=0)
    return counts.reindex(columns=[p for p in PHASES if p in counts.columns])


def cohort_shares(trace: WorldTrace) -> pd.DataFrame:
    """Requests per quarter hour and user cohort (columns: cohorts)."""
    if trace.requests.empty:
        return pd.DataFrame()
    table = trace.requests.pivot(index="time_h", columns="user_cohort", values="requests")
    return table.fillna(0).reindex(columns=[c for c in USER_COHORTS if c in table.columns])


def room_drift(trace: WorldTrace, room_id: int) -> pd.DataFrame:
    """One room over its observed lifetime: content similarity to its first segment,
    a 2-D projection of its content (PCA of its own trajectory) and its SID."""
    if room_id not in trace.content:
        raise KeyError(f"room {room_id} was not live in this trace")
    x, t = trace.content[room_id], trace.content_time[room_id]
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    pcs = centred @ vt[:2].T if len(x) > 1 else np.zeros((len(x), 2))
    pcs = np.pad(pcs, ((0, 0), (0, 2 - pcs.shape[1])))
    frame = pd.DataFrame(
        {"time_h": t, "similarity_to_start": unit @ unit[0], "pc1": pcs[:, 0], "pc2": pcs[:, 1]}
    )
    if trace.sids is not None:
        mine = trace.sids[trace.sids["room_id"] == room_id][["time_h", "sid"]]
        frame = pd.merge_asof(
            frame.sort_values("time_h"),
            mine.sort_values("time_h"),
            on="time_h",
            direction="nearest",
            tolerance=1 / 120,
        )
        frame["sid_changed"] = frame["sid"].ne(frame["sid"].shift()) & frame.index.to_series().gt(0)
    return frame


def busiest_rooms(trace: WorldTrace, n: int = 10) -> list[int]:
    """Rooms with the most ticks live and viewers, for the room picker."""
    g = trace.rooms.groupby("room_id").agg(ticks=("time_h", "size"), viewers=("viewers", "mean"))
    g = g[g["ticks"] >= 4]
    return g.sort_values(["ticks", "viewers"], ascending=False).head(n).index.tolist()
