"""The one place that turns observations and logged interactions into generator inputs.

Serving reads a :class:`liveenv.env.LiveStreamEnv` observation (one dict, or a batch
with a leading axis); pretraining reads an interaction log. Both go through the same
functions: the log is first turned into the observation's ``history_*`` arrays
(:func:`history_from_log`, mirroring :class:`liveenv.history.HistoryStore`), then
:meth:`FeatureBuilder.batch_from_obs` builds the :class:`GeneratorBatch`.

What the observation's history holds (``liveenv/history.py``, ``World._apply``): the
user's last ``users.history_len`` *clicked* impressions of this episode, oldest to
newest, right-aligned (padding first), each with the streamer id, the observed 30-s
content embedding of the room when it was clicked, the feedback vector
``(click, watch minutes, like, comment, follow, gift value)`` and ``log1p(hours since
the request)``. The log mirror takes, for each request, the same user's clicked rows
of earlier requests of the same episode.

Model inputs
------------
* user features: ``obs["user"]`` (20 wide; the log's ``user_feat`` is the same vector).
* history SID: the tokenizer's SID of ``(history_content, pooled embedding of the
  streamer, history_streamer)``: the room's SID *at the time* in dynamic mode. The
  pooled embedding is static per streamer; :class:`PooledCache` keeps
  ``streamer -> pooled`` filled from every room table (and the log's ``pooled_emb``).
* feedback type (:data:`FEEDBACK_TYPES`, the strongest action wins):
  ``gift > follow > comment > like > long view (watch >= 1 min) > click > skip``.
  The observation's history only holds clicks, so ``skip`` (0) never occurs in it;
  it is kept so logs with unclicked exposures can be encoded without a new vocabulary.
* time features (:data:`TIME_DIM` = 5) of a history event: ``[log1p(age hours),
  sin/cos hour of day, sin/cos day of week]`` of the event, derived from the request's
  ``time`` and ``history_age``; the request (``now_time``) gets the same features with
  age 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch

from liveenv.rhythm import time_features
from liveenv.world import ROOM_STAT_COLUMNS
from policies.cascade.features import (
    history_last,
    history_taste,
    obs_dim_of,
    streamer_affinity,
    taste_match,
)
from policies.onelive.config import GeneratorBatch

__all__ = [
    "FEEDBACK_TYPES",
    "HISTORY_KEYS",
    "LONG_VIEW_MIN",
    "N_FEEDBACK_TYPES",
    "ROOM_AFFINITY_COLUMNS",
    "ROOM_EMBED_BLOCKS",
    "ROOM_PRIOR_COLUMNS",
    "TIME_DIM",
    "FeatureBuilder",
    "PooledCache",
    "SIDEncoder",
    "embed_blocks",
    "event_time_features",
    "feedback_types",
    "feedback_vectors_from_log",
    "history_from_log",
    "log_column",
    "prior_width",
    "request_time_features",
    "room_log_viewers",
    "room_stat_features",
    "scaled_room_stats",
]

FEEDBACK_TYPES = ("skip", "click", "long_view", "like", "comment", "follow", "gift")
N_FEEDBACK_TYPES = len(FEEDBACK_TYPES)
#: Watch minutes from which a click counts as a long view (agents.evaluate.offline.LONG_VIEW_S).
LONG_VIEW_MIN = 1.0
TIME_DIM = 5
HISTORY_KEYS = (
    "history_streamer",
    "history_content",
    "history_feedback",
    "history_age",
    "history_mask",
)
_HOURS_PER_DAY, _HOURS_PER_WEEK = 24.0, 168.0


class SIDEncoder(Protocol):
    """What the features need of a tokenizer (``policies.tokenizer.SIDTokenizer``)."""

    @property
    def vocab_sizes(self) -> tuple[int, ...]: ...

    def encode(
        self, content_emb: np.ndarray, pooled_emb: np.ndarray, streamer_id: np.ndarray
    ) -> np.ndarray: ...


# ----- per-event features ------------------------------------------------------------
def feedback_types(feedback: np.ndarray) -> np.ndarray:
    """``(..., 6)`` feedback vectors -> ``(...)`` int64 index into :data:`FEEDBACK_TYPES`."""
    fb = np.asarray(feedback)
    out = np.zeros(fb.shape[:-1], dtype=np.int64)  # skip
    # ascending strength: later assignments win
    for kind, hit in (
        ("click", fb[..., 0] > 0),
        ("long_view", (fb[..., 0] > 0) & (fb[..., 1] >= LONG_VIEW_MIN)),
        ("like", fb[..., 2] > 0),
        ("comment", fb[..., 3] > 0),
        ("follow", fb[..., 4] > 0),
        ("gift", fb[..., 5] > 0),
    ):
        out[hit] = FEEDBACK_TYPES.index(kind)
    return out


def _angles(now_time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour-of-day and day-of-week angles of ``time_features`` rows ``(..., 4)``."""
    t = np.asarray(now_time, dtype=np.float64)
    return np.arctan2(t[..., 0], t[..., 1]), np.arctan2(t[..., 2], t[..., 3])


def event_time_features(now_time: np.ndarray, history_age: np.ndarray) -> np.ndarray:
    """``now_time (..., 4)`` (obs ``time``), ``history_age (..., H)`` (log1p hours)
    -> ``(..., H, 5)`` float32: log age and sin/cos of the event's hour and weekday."""
    day, week = _angles(now_time)
    age_log = np.asarray(history_age, dtype=np.float64)
    age_h = np.expm1(age_log)
    d = day[..., None] - 2 * np.pi * age_h / _HOURS_PER_DAY
    w = week[..., None] - 2 * np.pi * age_h / _HOURS_PER_WEEK
    feats = [age_log, np.sin(d), np.cos(d), np.sin(w), np.cos(w)]
    return np.stack(feats, axis=-1).astype(np.float32)


def request_time_features(now_time: np.ndarray) -> np.ndarray:
    """``(..., 4)`` obs ``time`` -> ``(..., 5)``: the event features of age 0."""
    t = np.asarray(now_time)
    return event_time_features(t, np.zeros((*t.shape[:-1], 1)))[..., 0, :]


def room_log_viewers(obs: Mapping[str, np.ndarray], mask: np.ndarray | None = None) -> torch.Tensor:
    """``(B, R)`` float32 ``log_viewers`` of the (batched) room table, 0 on empty slots
    (the input of the generator's live prior, ``OneLiveConfig.live_prior_weight``)."""
    rooms = np.asarray(obs["rooms"])
    col = ROOM_STAT_COLUMNS.index("log_viewers") - len(ROOM_STAT_COLUMNS)  # from the end
    live = np.asarray(obs["room_mask"]).astype(bool) if mask is None else mask
    return torch.from_numpy(np.where(live, rooms[..., col], 0.0).astype(np.float32))


#: The user's history with the room's streamer
#: (:func:`policies.cascade.features.streamer_affinity`).
ROOM_AFFINITY_COLUMNS = ("streamer_seen", "streamer_minutes")
#: Columns of the live prior's per-room input (``OneLiveConfig.room_prior``): the room
#: statistics on a learnable scale, then the cosine of the user's taste (watch-weighted
#: mean clicked content, :func:`policies.cascade.features.history_taste`) with the room's
#: content now, then (read with ``OneLiveConfig.room_affinity`` only)
#: :data:`ROOM_AFFINITY_COLUMNS`.
ROOM_PRIOR_COLUMNS = (*ROOM_STAT_COLUMNS, "taste_match", *ROOM_AFFINITY_COLUMNS)
#: Typical size of the like, comment and gift rates (rates are ~ scale * quality).
_RATE_SCALE = (0.02, 0.01, 0.002)
_RATES = tuple(ROOM_STAT_COLUMNS.index(c) for c in ("like_rate", "comment_rate", "gift_rate"))
_HOURS = ROOM_STAT_COLUMNS.index("hours_live")


def scaled_room_stats(stats: torch.Tensor) -> torch.Tensor:
    """``(..., S)`` raw room statistics (:data:`ROOM_STAT_COLUMNS` order) -> the same
    columns on a learnable scale: ``log(rate / scale + 0.01)`` for the three rates
    (raw rates are ~100 times smaller than ``log_viewers``), ``log1p`` of the hours
    live; ``log_viewers`` and ``new_streamer`` unchanged."""
    out = stats.clone()
    scale = stats.new_tensor(_RATE_SCALE)
    out[..., list(_RATES)] = torch.log(stats[..., list(_RATES)].clamp_min(0.0) / scale + 1e-2)
    out[..., _HOURS] = torch.log1p(stats[..., _HOURS].clamp_min(0.0))
    return out


#: Blocks of ``o`` columns after :data:`ROOM_PRIOR_COLUMNS` that the room prior's bilinear
#: taste score reads (``OneLiveConfig.room_embed_dim`` = o > 0): the room's observed content
#: now and its streamer's pooled embedding, then the user's :func:`history_taste` and newest
#: clicked content (:func:`policies.cascade.features.history_last`; the same in every room of
#: a request).
ROOM_EMBED_BLOCKS = ("content", "pooled", "taste", "last")


def prior_width(embed_dim: int = 0) -> int:
    """Columns of the live prior's per-room input with ``embed_dim`` wide embeddings."""
    return len(ROOM_PRIOR_COLUMNS) + len(ROOM_EMBED_BLOCKS) * int(embed_dim)


def embed_blocks(room: torch.Tensor, request: torch.Tensor, embed_dim: int) -> torch.Tensor:
    """``(B, R, 4o)`` :data:`ROOM_EMBED_BLOCKS` from each room's content and pooled
    embedding ``(B, R, 2o)`` and each request's taste and newest click ``(B, 2o)`` (the
    one place that fixes their order); ``embed_dim`` must be ``o``."""
    o = room.shape[-1] // 2
    if embed_dim != o:
        raise ValueError(
            f"embed_dim={embed_dim!r} is invalid: must be 0 or the observed embedding width {o}"
        )
    return torch.cat([room, request[:, None].expand(-1, room.shape[1], -1)], -1)


def room_stat_features(
    obs: Mapping[str, np.ndarray], mask: np.ndarray | None = None, embed_dim: int = 0
) -> torch.Tensor:
    """``(B, R, prior_width(embed_dim))`` float32 input of the generator's live prior, 0 on
    empty slots: the room table's :func:`scaled_room_stats` (column 0 is ``log_viewers``),
    the user's :func:`taste_match` with each room's content and the user's
    :func:`streamer_affinity` with each room's streamer; with ``embed_dim`` (which must be
    the table's observed width ``o``) also the :data:`ROOM_EMBED_BLOCKS`."""
    rooms = np.asarray(obs["rooms"], dtype=np.float32)
    live = np.asarray(obs["room_mask"]).astype(bool) if mask is None else mask
    o = obs_dim_of(rooms)
    stats = scaled_room_stats(torch.from_numpy(rooms[..., -len(ROOM_STAT_COLUMNS) :].copy()))
    taste = history_taste(obs)
    match = taste_match(taste, rooms[..., :o])
    seen = streamer_affinity(
        obs["history_streamer"],
        np.asarray(obs["history_feedback"])[..., 1],
        obs["history_mask"],
        obs["room_streamer"],
    )
    parts = [stats, torch.from_numpy(match)[..., None], torch.from_numpy(seen)]
    if embed_dim:
        request = np.concatenate([taste, history_last(obs)], -1)  # (B, 2o)
        room = torch.from_numpy(rooms[..., : 2 * o].copy())  # (B, R, 2o) content, pooled
        parts.append(embed_blocks(room, torch.from_numpy(request), embed_dim))
    out = torch.cat(parts, -1)
    return out.masked_fill(~torch.from_numpy(live)[..., None], 0.0)


# ----- streamer -> pooled embedding ----------------------------------------------------
class PooledCache:
    """``streamer id -> observed pooled embedding`` (static per streamer in the world).

    Filled from every room table the policy sees (:meth:`update_from_obs`) or from a
    log (:meth:`update`); history events look their streamer up here. A streamer never
    seen gets a zero vector and counts in :attr:`misses`.
    """

    def __init__(self, obs_dim: int) -> None:
        if obs_dim < 1:
            raise ValueError(f"PooledCache: obs_dim={obs_dim!r} is invalid: must be >= 1")
        self.obs_dim = int(obs_dim)
        self.clear()

    def clear(self) -> None:
        self._pooled = np.zeros((0, self.obs_dim), dtype=np.float32)
        self._known = np.zeros(0, dtype=bool)
        self.misses = 0

    def __len__(self) -> int:
        return int(self._known.sum())

    def update(self, streamer_ids: np.ndarray, pooled: np.ndarray) -> None:
        ids = np.asarray(streamer_ids, dtype=np.int64).reshape(-1)
        emb = np.asarray(pooled, dtype=np.float32).reshape(len(ids), self.obs_dim)
        keep = ids >= 0
        ids, emb = ids[keep], emb[keep]
        if not len(ids):
            return
        need = int(ids.max()) + 1
        if need > len(self._known):
            size = max(need, 2 * len(self._known))
            self._pooled = np.concatenate(
                [self._pooled, np.zeros((size - len(self._pooled), self.obs_dim), np.float32)]
            )
            self._known = np.concatenate([self._known, np.zeros(size - len(self._known), bool)])
        self._pooled[ids] = emb
        self._known[ids] = True

    def update_from_obs(self, obs: Mapping[str, np.ndarray]) -> None:
        """Add the live rooms of a (batched) observation's room table."""
        mask = np.asarray(obs["room_mask"]).astype(bool)
        rooms = np.asarray(obs["rooms"])
        o = self.obs_dim
        self.update(np.asarray(obs["room_streamer"])[mask], rooms[mask][:, o : 2 * o])

    def lookup(self, streamer_ids: np.ndarray) -> np.ndarray:
        """``(N,)`` ids -> ``(N, obs_dim)`` pooled embeddings (zeros when unknown)."""
        ids = np.asarray(streamer_ids, dtype=np.int64).reshape(-1)
        inside = (ids >= 0) & (ids < len(self._known))
        known = np.zeros(len(ids), dtype=bool)
        known[inside] = self._known[ids[inside]]
        self.misses += int((~known).sum())
        out = np.zeros((len(ids), self.obs_dim), dtype=np.float32)
        out[known] = self._pooled[ids[known]]
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"pooled": self._pooled.copy(), "known": self._known.copy()}

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        self._pooled = np.asarray(state["pooled"], dtype=np.float32).copy()
        self._known = np.asarray(state["known"], dtype=bool).copy()


# ----- logs -> observation-like history -------------------------------------------------
def log_column(log: Any, name: str) -> np.ndarray:
    col = log[name]
    col = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
    if col.dtype == object:  # vector column of a DataFrame: one array per row
        col = np.stack(col) if len(col) else np.zeros((0, 0), np.float32)
    return col


def feedback_vectors_from_log(log: Any) -> np.ndarray:
    """``(rows, 6)`` float32 feedback vectors of the env (watch in minutes, gift value)."""
    click = log_column(log, "is_click").astype(np.float32)
    return np.stack(
        [
            click,
            log_column(log, "watch_time_ms") / 60_000.0,
            log_column(log, "like"),
            log_column(log, "comment"),
            log_column(log, "follow"),
            log_column(log, "gift_price"),
        ],
        axis=-1,
    ).astype(np.float32)


def _request_keys(log: Any) -> np.ndarray:
    """One int64 key per row, ordered by (episode, user) and then request id (the
    past's events, negative ids, first)."""
    episode = log_column(log, "episode").astype(np.int64)
    user = log_column(log, "user_id").astype(np.int64)
    request = log_column(log, "request_id").astype(np.int64)
    if len(request):
        request = request - min(int(request.min()), 0)
        if request.max() >= 1 << 32:
            raise ValueError("request ids must span less than 2**32 to key the history")
    _, group = np.unique(np.stack([episode, user], axis=1), axis=0, return_inverse=True)
    return (group.reshape(-1).astype(np.int64) << 32) | request


def history_from_log(log: Any, history_len: int, rows: np.ndarray | None = None) -> dict[str, Any]:
    """The observation of each logged request, as far as a log can tell.

    ``log``: a DataFrame (``agents.logs.read_log``) or a dict of arrays (``read_log_arrays``).
    ``rows``: the log rows to build (default: all). Returns ``user`` (n, 20), ``time``
    (n, 4) and the ``history_*`` arrays of :data:`HISTORY_KEYS` exactly as
    ``HistoryStore.gather`` lays them out, plus ``history_row`` (n, H): the log row of
    each history event (-1 padding) so callers can gather per-event values.
    """
    if history_len < 1:
        raise ValueError(f"history_len={history_len!r} is invalid: must be >= 1")
    n_rows = len(log_column(log, "request_id"))
    rows = np.arange(n_rows) if rows is None else np.asarray(rows, dtype=np.int64)
    key = _request_keys(log)
    click = np.flatnonzero(log_column(log, "is_click").astype(bool))
    order = click[np.argsort(key[click], kind="stable")]  # clicks by user, then request
    ck_key = key[order]
    # clicks of the same user before the request: [first of the user, first at/after it)
    start = np.searchsorted(ck_key, (key[rows] >> 32) << 32, side="left")
    stop = np.searchsorted(ck_key, key[rows], side="left")
    h = int(history_len)
    ev = stop[:, None] - h + np.arange(h)[None, :]  # (n, H), newest last
    valid = ev >= start[:, None]
    padded = np.append(order, -1)  # index len(order) never valid; keeps empty logs working
    hist_row = np.where(valid, padded[np.clip(ev, 0, len(order))], -1)
    t_s = log_column(log, "timestamp_ms").astype(np.float64) / 1000.0
    safe = np.maximum(hist_row, 0)
    content = log_column(log, "content_emb")
    fb = feedback_vectors_from_log(log)
    age_h = (t_s[rows][:, None] - t_s[safe]) / 3600.0
    return {
        "user": log_column(log, "user_feat")[rows].astype(np.float32),
        "time": time_features(t_s[rows]),
        "history_streamer": np.where(valid, log_column(log, "streamer_id")[safe], -1).astype(
            np.int64
        ),
        "history_content": np.where(valid[..., None], content[safe], 0.0).astype(np.float32),
        "history_feedback": np.where(valid[..., None], fb[safe], 0.0).astype(np.float32),
        "history_age": np.where(valid, np.log1p(np.maximum(age_h, 0.0)), 0.0).astype(np.float32),
        "history_mask": valid.astype(np.int8),
        "history_row": hist_row.astype(np.int64),
    }


# ----- observation -> GeneratorBatch -----------------------------------------------------
class FeatureBuilder:
    """Observation (single or batched) -> :class:`GeneratorBatch`, and the SIDs of the
    live rooms. ``max_history`` keeps the newest events (the obs holds ``history_len``)."""

    def __init__(self, tokenizer: SIDEncoder, obs_dim: int, max_history: int) -> None:
        if max_history < 1:
            raise ValueError(f"FeatureBuilder: max_history={max_history!r} must be >= 1")
        self.tokenizer = tokenizer
        self.obs_dim = int(obs_dim)
        self.max_history = int(max_history)
        self.cache = PooledCache(obs_dim)

    @property
    def n_levels(self) -> int:
        return len(self.tokenizer.vocab_sizes)

    def history_sids(self, hist: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(B, H, L)`` int64 SIDs of the history events (-1 in padding slots)."""
        mask = np.asarray(hist["history_mask"]).astype(bool)
        content = np.asarray(hist["history_content"])[mask]
        streamer = np.asarray(hist["history_streamer"])[mask]
        out = np.full((*mask.shape, self.n_levels), -1, dtype=np.int64)
        if mask.any():
            pooled = self.cache.lookup(streamer)
            out[mask] = self.tokenizer.encode(content, pooled, streamer)
        return out

    def batch_from_obs(
        self,
        obs: Mapping[str, np.ndarray],
        hist_sid: np.ndarray | None = None,
        update_cache: bool = True,
    ) -> GeneratorBatch:
        """A batched observation (every key with a leading axis) -> GeneratorBatch.

        ``hist_sid`` (B, H, L): precomputed history SIDs (the log path gathers them from
        one encoding per logged click); by default they are encoded here.
        """
        if update_cache and "rooms" in obs:
            self.cache.update_from_obs(obs)
        h = self.max_history
        hist = {k: np.asarray(obs[k])[:, -h:] for k in HISTORY_KEYS}
        hist_sid = self.history_sids(hist) if hist_sid is None else np.asarray(hist_sid)[:, -h:]
        mask = hist["history_mask"].astype(bool)
        fb_type = np.where(mask, feedback_types(hist["history_feedback"]), -1)
        t_hist = event_time_features(obs["time"], hist["history_age"])
        t_hist = np.where(mask[..., None], t_hist, 0.0)
        return GeneratorBatch(
            user_feats=torch.as_tensor(np.asarray(obs["user"], dtype=np.float32)),
            hist_sid=torch.as_tensor(hist_sid, dtype=torch.long),
            hist_feedback=torch.as_tensor(fb_type, dtype=torch.long),
            hist_time=torch.as_tensor(t_hist, dtype=torch.float32),
            hist_mask=torch.as_tensor(mask),
            now_time=torch.as_tensor(request_time_features(obs["time"])),
        )

    def room_sids(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The current SIDs of the live rooms: ``(B, R, L)`` int64 (-1 on empty slots)
        and the ``(B, R)`` bool live mask."""
        mask = np.asarray(obs["room_mask"]).astype(bool)
        rooms = np.asarray(obs["rooms"])
        o = self.obs_dim
        out = np.full((*mask.shape, self.n_levels), -1, dtype=np.int64)
        if mask.any():
            live = rooms[mask]
            streamer = np.asarray(obs["room_streamer"])[mask]
            out[mask] = self.tokenizer.encode(live[:, :o], live[:, o : 2 * o], streamer)
        return out, mask
