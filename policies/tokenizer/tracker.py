"""Dynamic SIDs in the running world: every live room's SID, refreshed every 30 s.

``LiveSIDTracker.update(source)`` re-encodes the live rooms from what is observed of
them now (30-s content embedding, pooled streamer embedding, streamer id) with fixed
codebooks and keeps a :class:`~policies.tokenizer.live_index.LiveSIDIndex` in sync:
rooms that started are added, rooms that ended are removed, rooms whose content moved
them to another code are re-filed. It is cheap to call after every env step: the work
is done once per world tick (the 30-s content clock), later calls in the same tick
return at once.

``source`` is a ``World``, a ``LiveStreamEnv`` (or any Gymnasium wrapper of one), or an
observation dict. With a world the rooms are keyed by their broadcast id (``live_id``
of the logs); with an observation dict, which carries no room ids, by streamer id (a
streamer has at most one live room at a time).

Scope: ``"table"`` (default) tracks the rooms of the observation's room table, the
rooms a recommender can act on (all live rooms unless more than ``max_rooms`` are
live); ``"all"`` tracks every live room of the world.

Hysteresis: observation noise moves an embedding lying near a cell border back and
forth every tick; with ``hysteresis = h > 0`` a room keeps its previous SID unless the
new SID's reconstruction is closer by more than the factor ``1 + h``. The default,
``DEFAULT_HYSTERESIS = 0.1``, is the stable choice: with plain nearest-code assignment
(``hysteresis = 0``) a room of the ``no_drift`` preset, whose content never moves,
takes about 1.5 distinct SIDs per broadcast (the noise flips its finest token), with
0.1 about 1.1; ``fast_drift`` rooms still take about 12, and held-out retrieval is
unchanged (AUC within 0.002 of plain assignment; BENCHMARKS.md, tokenizer section). ``hysteresis = inf`` freezes each room at
the SID it had when first seen (the "SID at the start of the broadcast" ablation).

Refits: with ``refit_every_hours`` set, the codebooks are refitted on the room states
the tracker observed in the last ``refit_window_hours`` (the towers stay fixed; a tower
retrain needs a click log, i.e. ``SIDTokenizer.fit`` offline). Codes before and after a
refit are not comparable: the index is rebuilt and churn is counted within one
codebook version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from liveenv.rhythm import SEGMENT_S
from liveenv.world import World
from policies.tokenizer.diagnostics import sid_churn
from policies.tokenizer.live_index import LiveSIDIndex
from policies.tokenizer.semantic_ids import SIDTokenizer

__all__ = ["DEFAULT_HYSTERESIS", "LiveSIDTracker", "RoomStates"]

SCOPES = ("table", "all")
#: Default hysteresis of :class:`LiveSIDTracker` (see the module docstring).
DEFAULT_HYSTERESIS = 0.1


@dataclass
class RoomStates:
    """What is observed of the tracked rooms at one tick (row i = one room)."""

    keys: np.ndarray  # (n,) int64 room id (world) or streamer id (observation)
    streamer: np.ndarray  # (n,) int64
    content: np.ndarray  # (n, o) float32 observed 30-s content embedding
    pooled: np.ndarray  # (n, o) float32 pooled streamer embedding
    time_s: float  # simulated time (NaN when unknown)
    tick: int | None  # world tick (None for an observation dict)


def _world_of(source: Any) -> World | None:
    if isinstance(source, World):
        return source
    world = getattr(getattr(source, "unwrapped", source), "world", None)
    return world if isinstance(world, World) else None


def _from_world(world: World, scope: str) -> RoomStates:
    slots = world.table_slots if scope == "table" else world.rooms.live_slots()
    rt = world.rooms.t
    streamer = rt.streamer[slots].astype(np.int64)
    return RoomStates(
        keys=rt.room_id[slots].astype(np.int64),
        streamer=streamer,
        content=rt.obs[slots].astype(np.float32),
        pooled=world.streamers.pooled[streamer],
        time_s=float(world.tick * SEGMENT_S),
        tick=int(world.tick),
    )


def _from_obs(obs: dict[str, np.ndarray]) -> RoomStates:
    for key in ("rooms", "room_streamer", "room_mask"):
        if key not in obs:
            raise ValueError(f"observation has no {key!r} entry; got keys {sorted(obs)}")
    rooms, mask = np.asarray(obs["rooms"]), np.asarray(obs["room_mask"]).astype(bool)
    if rooms.ndim != 2:
        raise ValueError(f"obs['rooms'] must be 2-D (max_rooms, 2o + 6), got shape {rooms.shape}")
    o = (rooms.shape[1] - 6) // 2
    streamer = np.asarray(obs["room_streamer"])[mask].astype(np.int64)
    return RoomStates(
        keys=streamer,
        streamer=streamer,
        content=rooms[mask, :o],
        pooled=rooms[mask, o : 2 * o],
        time_s=float("nan"),
        tick=None,
    )


class LiveSIDTracker:
    """Keeps the SIDs of the live rooms and a :class:`LiveSIDIndex` of them up to date.

    Attributes after an update: ``index`` (the live-SID trie), ``keys`` (n,) and
    ``sids`` (n, L) of the tracked rooms in table order (so ``sids[i]`` is the SID of
    observation slot ``i`` in ``"table"`` scope), ``n_updates`` (ticks encoded),
    ``refit_times`` and ``codebook_version``.
    """

    def __init__(
        self,
        tokenizer: SIDTokenizer,
        refit_every_hours: float | None = None,
        *,
        refit_window_hours: float = 6.0,
        scope: str = "table",
        record: bool = True,
        hysteresis: float = DEFAULT_HYSTERESIS,
    ) -> None:
        if refit_every_hours is not None and not (
            isinstance(refit_every_hours, (int, float)) and refit_every_hours > 0
        ):
            raise ValueError(
                f"refit_every_hours={refit_every_hours!r} is invalid: must be None or > 0"
            )
        if not (isinstance(refit_window_hours, (int, float)) and refit_window_hours > 0):
            raise ValueError(f"refit_window_hours={refit_window_hours!r} is invalid: must be > 0")
        if isinstance(hysteresis, bool) or not (
            isinstance(hysteresis, (int, float)) and hysteresis >= 0
        ):
            raise ValueError(
                f"hysteresis={hysteresis!r} is invalid: must be a float >= 0 (inf: frozen)"
            )
        if scope not in SCOPES:
            raise ValueError(f"scope={scope!r} is invalid: must be one of {list(SCOPES)}")
        self.tokenizer = tokenizer
        self.refit_every_hours, self.refit_window_hours = refit_every_hours, refit_window_hours
        self.scope, self.record, self.hysteresis = scope, record, float(hysteresis)
        self.index = LiveSIDIndex(tokenizer.n_levels)
        self._reset_state()

    def _reset_state(self) -> None:
        self.index.clear()
        self.keys = np.zeros(0, dtype=np.int64)
        self.sids = np.zeros((0, self.tokenizer.n_levels), dtype=np.int64)
        self.n_updates, self.codebook_version = 0, 0
        self.refit_times: list[float] = []
        self._world_id: int | None = None
        self._last_tick: int | None = None
        self._last_obs: tuple[np.ndarray, np.ndarray] | None = None
        self._last_refit_t: float | None = None
        self._log: list[tuple[np.ndarray, np.ndarray, float, int]] = []
        self._window: list[RoomStates] = []

    # ---- updating
    def update(self, source: Any) -> bool:
        """Refresh from a world / env / observation; True when SIDs were recomputed."""
        world = _world_of(source)
        if world is not None:
            if self._world_id is not None and id(world) != self._world_id:
                self._reset_state()  # env.reset() made a new world
            self._world_id = id(world)
            if world.tick == self._last_tick:
                return False
            self._last_tick = world.tick
            states = _from_world(world, self.scope)
        elif isinstance(source, dict):
            states = _from_obs(source)
            if (
                self._last_obs is not None
                and np.array_equal(self._last_obs[0], states.keys)
                and np.array_equal(self._last_obs[1], states.content)
            ):
                return False
            self._last_obs = (states.keys, states.content)
        else:
            raise ValueError(
                f"cannot track SIDs from a {type(source).__name__}: pass a World, a "
                "LiveStreamEnv (or a wrapper of one) or an observation dict"
            )
        self._maybe_refit(states)
        self.apply(states)
        return True

    def apply(self, states: RoomStates) -> None:
        """Encode ``states`` and make the index hold exactly these rooms."""
        tok = self.tokenizer
        emb = tok.embed_rooms(states.content, states.pooled, states.streamer)
        sids = tok.quantiser.encode(emb) if len(emb) else np.zeros((0, tok.n_levels), np.int64)
        if self.hysteresis > 0 and len(self.keys) and len(sids):
            sids = self._sticky(states.keys, emb, sids)
        self._sync_index(states.keys, sids)
        self.keys, self.sids = states.keys, sids
        self.n_updates += 1
        if self.record:
            self._log.append((states.keys, sids, states.time_s, self.codebook_version))
        if self.refit_every_hours is not None and states.tick is not None:
            self._window.append(states)
            horizon = states.time_s - 3600.0 * self.refit_window_hours
            while self._window and self._window[0].time_s < horizon:
                self._window.pop(0)

    def _sync_index(self, keys: np.ndarray, sids: np.ndarray) -> None:
        """Touch the index only for rooms that ended, started or changed SID (most rooms
        keep theirs from one tick to the next, and the index validates every call)."""
        prev = dict(zip(self.keys.tolist(), map(tuple, self.sids.tolist()), strict=True))
        now = dict(zip(keys.tolist(), map(tuple, sids.tolist()), strict=True))
        for room in prev.keys() - now.keys():
            self.index.remove(room)
        for room, sid in now.items():
            if prev.get(room) != sid:
                self.index.set(room, sid)

    def _sticky(self, keys: np.ndarray, emb: np.ndarray, sids: np.ndarray) -> np.ndarray:
        """Keep a room's previous SID unless the new one reconstructs its embedding
        better by more than the hysteresis margin (damps flicker from observation
        noise at cell borders): keep when ``d(old) <= (1 + h) d(new)``."""
        order = np.argsort(self.keys)
        pos = np.clip(np.searchsorted(self.keys[order], keys), 0, len(order) - 1)
        prev_row = order[pos]
        known = self.keys[prev_row] == keys
        old = np.where(known[:, None], self.sids[prev_row], sids)
        moved = np.flatnonzero((old != sids).any(axis=1))
        if len(moved) == 0:
            return sids
        out = sids.copy()
        if math.isinf(self.hysteresis):
            out[moved] = old[moved]
            return out
        q = self.tokenizer.quantiser
        d_new = np.sum((emb[moved] - q.decode(sids[moved])) ** 2, axis=1)
        d_old = np.sum((emb[moved] - q.decode(old[moved])) ** 2, axis=1)
        keep = moved[d_old <= (1.0 + self.hysteresis) * d_new]
        out[keep] = old[keep]
        return out

    def _maybe_refit(self, states: RoomStates) -> None:
        if self.refit_every_hours is None or states.tick is None:
            return
        if self._last_refit_t is None:
            self._last_refit_t = states.time_s
            return
        if states.time_s - self._last_refit_t < 3600.0 * self.refit_every_hours:
            return
        self.refit(states.time_s)

    def refit(self, time_s: float = float("nan")) -> None:
        """Refit the codebooks on the recorded window now (rebuilds the index)."""
        if not self._window:
            raise RuntimeError("no room states in the refit window yet: call update() first")
        w = self._window
        arrays = {
            "live_id": np.concatenate([s.keys for s in w]),
            "timestamp_ms": np.concatenate([np.full(len(s.keys), int(s.time_s * 1000)) for s in w]),
            "streamer_id": np.concatenate([s.streamer for s in w]),
            "content_emb": np.concatenate([s.content for s in w]),
            "pooled_emb": np.concatenate([s.pooled for s in w]),
        }
        self.tokenizer = self.tokenizer.refit_quantiser(arrays)
        self.index.clear()
        self.keys = np.zeros(0, dtype=np.int64)  # old codes mean nothing to the new codebooks
        self.sids = np.zeros((0, self.tokenizer.n_levels), dtype=np.int64)
        self.codebook_version += 1
        self.refit_times.append(time_s)
        self._last_refit_t = time_s

    # ---- queries
    def sid_of(self, key: int) -> tuple[int, ...]:
        """Current SID of a tracked room (KeyError when it is not live)."""
        return self.index.sid_of(key)

    def rooms_for(self, sid: tuple[int, ...] | np.ndarray) -> list[int]:
        """Live rooms (keys) whose SID is ``sid``: all of them when SIDs collide."""
        return self.index.rooms_for(tuple(np.asarray(sid).reshape(-1).tolist()))

    def slots_for(self, sid: tuple[int, ...] | np.ndarray) -> np.ndarray:
        """Positions in ``keys`` (observation slots in table scope) holding ``sid``."""
        want = np.asarray(sid, dtype=np.int64).reshape(1, -1)
        return np.flatnonzero((self.sids == want).all(axis=1))

    def history(self) -> dict[str, np.ndarray]:
        """Every recorded (room, SID, time, codebook version) observation, stacked."""
        if not self._log:
            z = np.zeros(0, dtype=np.int64)
            return {
                "keys": z,
                "sids": np.zeros((0, self.tokenizer.n_levels), np.int64),
                "time_s": np.zeros(0),
                "version": z,
            }
        return {
            "keys": np.concatenate([k for k, _, _, _ in self._log]),
            "sids": np.concatenate([s for _, s, _, _ in self._log]),
            "time_s": np.concatenate([np.full(len(k), t) for k, _, t, _ in self._log]),
            "version": np.concatenate([np.full(len(k), v) for k, _, _, v in self._log]),
        }

    def churn(self) -> dict[str, Any]:
        """:func:`~policies.tokenizer.diagnostics.sid_churn` of the recorded rooms, one
        room per (room, codebook version); ``mean_distinct`` is the mean number of
        distinct SIDs a room took over its observed lifetime."""
        h = self.history()
        return self.churn_of(h["keys"], h["version"], h["sids"], h["time_s"])

    @staticmethod
    def churn_of(
        keys: np.ndarray, version: np.ndarray, sids: np.ndarray, time_s: np.ndarray
    ) -> dict[str, Any]:
        """:meth:`churn` of given history arrays (e.g. ``sids[:, :1]`` for level 1 only)."""
        if len(keys) == 0:
            return sid_churn(keys, sids)
        _, room = np.unique(np.stack([keys, version], axis=1), axis=0, return_inverse=True)
        times = None if np.isnan(time_s).any() else time_s
        return sid_churn(room.reshape(-1), sids, times)

    def collision_rates(self) -> np.ndarray:
        """Per recorded tick: share of tracked rooms whose full SID another one shares."""
        out = []
        for _, sids, _, _ in self._log:
            if len(sids) == 0:
                out.append(0.0)
                continue
            _, inv, counts = np.unique(sids, axis=0, return_inverse=True, return_counts=True)
            out.append(float(np.mean(counts[inv.reshape(-1)] > 1)))
        return np.asarray(out)

    def __repr__(self) -> str:
        return (
            f"LiveSIDTracker(mode={self.tokenizer.mode!r}, scope={self.scope!r}, "
            f"rooms={len(self.index)}, updates={self.n_updates}, "
            f"codebook_version={self.codebook_version})"
        )
