"""Features of (request, live room) pairs, from an observation or from a log.

Serving and training go through the same functions. Serving reads a
:class:`liveenv.env.LiveStreamEnv` observation batch; training first turns
the rows of an interaction log into the same keys (:func:`obs_from_log`: the
shown room as a table of one slot, the user's history rebuilt from the log's
earlier clicks as :class:`liveenv.history.HistoryStore` keeps it), then calls
:func:`pair_features`.

What is computed (``o`` = obs_dim):

* request side (:data:`HISTORY_SCALARS` plus user features and time): the
  user's observed features, time of day/week, and a summary of the clicked
  history: how long it is, the mean feedback (watch, like, comment, follow,
  gift), how recent; ``taste`` the watch-weighted mean of the clicked content
  and ``last`` the newest clicked content (both ``o`` wide, zero without
  history);
* room side: the observed 30-s content, the pooled streamer embedding and the
  live statistics (rates on a log scale);
* cross features (:data:`CROSS`): cosine of taste / last content with the
  room's content and pooled embedding, the best match with any history
  item, whether and how long the user watched this streamer before, and the
  followed flag; with a cold-start group taste (:mod:`policies.cascade.coldstart`)
  also its cosines with the room (:data:`GROUP_CROSS`).

The raw embeddings are specific to a platform (``EnvConfig.world_seed`` draws
the latent-to-observed projection); logs and evaluation days of one platform
share it, so the ranker may read them (``TrainCascadeArgs.raw_embeddings``, on in
:mod:`experiments.baseline_results`: off it, they overfit a small log);
the cosines between a user's clicked content and a room's content carry over
to other platforms as well (``RankerConfig.raw_embeddings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from liveenv.rhythm import time_features
from liveenv.world import ROOM_STAT_COLUMNS

HISTORY_SCALARS = (
    "has_history",
    "history_share",
    "log_watch",
    "like",
    "comment",
    "follow",
    "gift",
    "log_gift_value",
    "recent_age",
)
CROSS = (
    "cos_taste_content",
    "cos_taste_pooled",
    "cos_last_content",
    "cos_last_pooled",
    "max_cos_history",
    "streamer_seen",
    "streamer_minutes",
    "followed",
)
GROUP_CROSS = ("group_confidence", "cos_group_content", "cos_group_pooled")
#: Scale of each interaction rate column before the log (rates are ~ scale * quality).
_RATE_SCALE = {"like_rate": 0.02, "comment_rate": 0.01, "gift_rate": 0.002}
_EPS = 1e-6

OBS_KEYS = (
    "user",
    "time",
    "history_streamer",
    "history_content",
    "history_feedback",
    "history_age",
    "history_mask",
    "rooms",
    "room_followed",
    "room_streamer",
    "room_mask",
)


def obs_dim_of(rooms: np.ndarray) -> int:
    """``o`` from a room table ``(..., R, 2o + n_stats)``."""
    return (rooms.shape[-1] - len(ROOM_STAT_COLUMNS)) // 2


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)


# ----- request side --------------------------------------------------------------
@dataclass
class RequestSide:
    """Per-request features: ``scalars`` ``(B, U + 4 + |HISTORY_SCALARS|)``,
    ``taste`` and ``last`` ``(B, o)`` unit vectors (zero without history)."""

    scalars: np.ndarray
    taste: np.ndarray
    last: np.ndarray

    @property
    def has_history(self) -> np.ndarray:
        return self.scalars[:, -len(HISTORY_SCALARS)] > 0.5

    def tower_input(self) -> np.ndarray:
        """``(B, Du)`` input of the retrieval user tower."""
        return np.concatenate([self.scalars, self.taste, self.last], axis=1)


def request_side(batch: Mapping[str, np.ndarray]) -> RequestSide:
    """Summarise the user and the clicked history of every request of ``batch``."""
    mask = np.asarray(batch["history_mask"], dtype=np.float32)  # (B, H)
    n = mask.sum(axis=1)  # (B,)
    fb = np.asarray(batch["history_feedback"], dtype=np.float32)  # (B, H, 6)
    denom = np.maximum(n, 1.0)[:, None]
    watch = np.log1p(fb[..., 1])  # (B, H)
    means = (fb[..., 2:] > 0).astype(np.float32)  # like, comment, follow, gift (B, H, 4)
    mean_inter = (means * mask[..., None]).sum(axis=1) / denom  # (B, 4)
    gift_value = np.log1p((fb[..., 5] * mask).sum(axis=1) / denom[:, 0])
    age = np.where(mask > 0, batch["history_age"], np.inf).min(axis=1)
    recent_age = np.where(n > 0, age, 0.0)
    hist = np.column_stack(
        [
            (n > 0),
            n / mask.shape[1],
            (watch * mask).sum(axis=1) / denom[:, 0],
            mean_inter,
            gift_value,
            recent_age,
        ]
    ).astype(np.float32)
    taste = history_taste(batch)
    scalars = np.concatenate(
        [np.asarray(batch["user"], np.float32), np.asarray(batch["time"], np.float32), hist], 1
    )
    return RequestSide(scalars, taste.astype(np.float32), history_last(batch))


def history_last(batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(B, o)`` unit observed content of each request's newest click (the history is
    right-aligned, newest last; zero without history)."""
    mask = np.asarray(batch["history_mask"], dtype=np.float32)  # (B, H)
    last = np.asarray(batch["history_content"], dtype=np.float32)[:, -1] * mask[:, -1:]
    return _unit(last).astype(np.float32)


def history_taste(batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(B, o)`` unit watch-weighted mean of each request's clicked history content
    (every click counts, long watches more; zero without history)."""
    mask = np.asarray(batch["history_mask"], dtype=np.float32)  # (B, H)
    content = np.asarray(batch["history_content"], dtype=np.float32)  # (B, H, o)
    watch = np.log1p(np.asarray(batch["history_feedback"], dtype=np.float32)[..., 1])
    return _unit(np.einsum("bh,bho->bo", mask * (0.2 + watch), content)).astype(np.float32)


def taste_match(taste: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``(B, R)`` cosine of each request's taste ``(B, o)`` (unit or zero,
    :func:`history_taste`) with its rooms' observed content ``(B, R, o)``."""
    return np.einsum("bo,bro->br", taste, _unit(content)).astype(np.float32)


def streamer_affinity(
    history_streamer: np.ndarray,
    history_minutes: np.ndarray,
    history_mask: np.ndarray,
    room_streamer: np.ndarray,
) -> np.ndarray:
    """``(B, R, 2)`` float32 history of each request with each room's streamer: the share
    of the ``H`` history slots ``(B, H)`` that clicked it (``streamer_seen``) and
    ``log1p`` of the minutes watched there (``streamer_minutes``; logs from before the
    world clamped the watch of an ended broadcast at 0 can hold negative minutes)."""
    mask = np.asarray(history_mask, dtype=bool)  # (B, H)
    hs = np.where(mask, history_streamer, -1)
    same = (hs[:, None, :] == np.asarray(room_streamer)[:, :, None]) & mask[:, None]  # (B, R, H)
    minutes = (same * np.asarray(history_minutes, dtype=np.float32)[:, None, :]).sum(axis=2)
    minutes = np.maximum(minutes, 0.0)
    return np.stack([same.mean(axis=2), np.log1p(minutes)], axis=-1).astype(np.float32)


# ----- room side -----------------------------------------------------------------
def room_side(rooms: np.ndarray) -> np.ndarray:
    """``(B, R, 2o + n_stats)``: content, pooled embedding, statistics (rates as logs)."""
    rooms = np.asarray(rooms, dtype=np.float32)
    o = obs_dim_of(rooms)
    stats = rooms[..., 2 * o :].copy()
    for name, scale in _RATE_SCALE.items():
        j = ROOM_STAT_COLUMNS.index(name)
        stats[..., j] = np.log(stats[..., j] / scale + 1e-2)
    j = ROOM_STAT_COLUMNS.index("hours_live")
    stats[..., j] = np.log1p(stats[..., j])
    return np.concatenate([rooms[..., : 2 * o], stats], axis=-1)


def cross_side(
    batch: Mapping[str, np.ndarray], req: RequestSide, group: np.ndarray | None = None
) -> np.ndarray:
    """``(B, R, |CROSS|)`` (``+ |GROUP_CROSS|`` with ``group`` ``(B, o + 1)``:
    the group taste and its confidence) user x room features."""
    rooms = np.asarray(batch["rooms"], dtype=np.float32)
    o = obs_dim_of(rooms)
    content, pooled = _unit(rooms[..., :o]), _unit(rooms[..., o : 2 * o])  # (B, R, o)
    cos = lambda u, r: np.einsum("bo,bro->br", u, r)  # noqa: E731
    hist = _unit(np.asarray(batch["history_content"], dtype=np.float32))  # (B, H, o)
    mask = np.asarray(batch["history_mask"], dtype=bool)  # (B, H)
    sims = np.einsum("bho,bro->brh", hist, content)  # (B, R, H)
    best = np.where(mask[:, None, :], sims, -1.0).max(axis=2)
    best = np.where(mask.any(axis=1)[:, None], best, 0.0)
    seen = streamer_affinity(
        batch["history_streamer"],
        np.asarray(batch["history_feedback"])[..., 1],
        mask,
        batch["room_streamer"],
    )
    feats = [
        cos(req.taste, content),
        cos(req.taste, pooled),
        cos(req.last, content),
        cos(req.last, pooled),
        best,
        seen[..., 0],
        seen[..., 1],
        np.asarray(batch["room_followed"], dtype=np.float32),
    ]
    if group is not None:
        taste, conf = _unit(group[:, :o]), group[:, o]
        feats += [
            np.broadcast_to(conf[:, None], best.shape),
            cos(taste, content),
            cos(taste, pooled),
        ]
    return np.stack(feats, axis=-1).astype(np.float32)


@dataclass
class PairFeatures:
    """Everything the cascade reads about a batch of requests and their rooms."""

    request: RequestSide
    rooms: np.ndarray  # (B, R, Dr) room tower input
    cross: np.ndarray  # (B, R, Dc)
    followed: np.ndarray  # (B, R)
    mask: np.ndarray  # (B, R) bool

    def ranker_input(self, retrieval: np.ndarray | None, raw_embeddings: bool) -> np.ndarray:
        """``(B, R, D)`` input of the ranker: request scalars, room statistics,
        cross features, the retrieval score (unless None), and
        (``raw_embeddings``) the raw taste/last/content/pooled vectors."""
        b, r = self.mask.shape
        o = self.request.taste.shape[1]
        scalars = self.request.scalars
        parts = [
            np.broadcast_to(scalars[:, None], (b, r, scalars.shape[1])),
            self.rooms[..., 2 * o :],
            self.cross,
        ]
        if retrieval is not None:
            parts.append(retrieval[..., None])
        if raw_embeddings:
            vecs = np.concatenate([self.request.taste, self.request.last], axis=1)
            parts += [np.broadcast_to(vecs[:, None], (b, r, 2 * o)), self.rooms[..., : 2 * o]]
        return np.concatenate(parts, axis=-1).astype(np.float32)


def pair_features(batch: Mapping[str, np.ndarray], group: np.ndarray | None = None) -> PairFeatures:
    """The features of every (request, slot) pair of a batched observation."""
    missing = [k for k in OBS_KEYS if k not in batch]
    if missing:
        raise KeyError(f"observation lacks {missing}; the cascade needs {list(OBS_KEYS)}")
    req = request_side(batch)
    return PairFeatures(
        request=req,
        rooms=room_side(batch["rooms"]),
        cross=cross_side(batch, req, group),
        followed=np.asarray(batch["room_followed"], dtype=np.float32),
        mask=np.asarray(batch["room_mask"]).astype(bool),
    )


# ----- logs as observations ------------------------------------------------------
LOG_COLUMNS = (
    "episode",
    "request_id",
    "user_id",
    "streamer_id",
    "live_id",
    "timestamp_ms",
    "is_click",
    "watch_time_ms",
    "like",
    "comment",
    "follow",
    "gift_price",
    "followed",
    "content_emb",
    "pooled_emb",
    "room_stats",
    "user_feat",
)


FEEDBACK_COLUMNS = ("is_click", "watch_time_ms", "like", "comment", "follow", "gift_price")


def log_feedback(log: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(N, 6)`` feedback of every log row in the env's units (minutes, price)."""
    return np.column_stack(
        [
            log["is_click"],
            log["watch_time_ms"] / 60_000.0,
            log["like"],
            log["comment"],
            log["follow"],
            log["gift_price"],
        ]
    ).astype(np.float32)


@dataclass
class LogIndex:
    """Where each log row's history lies among the log's clicked rows."""

    order: np.ndarray  # clicked rows by (episode, user, request): the history store
    start: np.ndarray  # (N,) index in ``order`` of the row's first earlier click
    count: np.ndarray  # (N,) earlier clicks of the row's user in its episode


def index_log(log: Mapping[str, np.ndarray]) -> LogIndex:
    """Find each row's earlier clicks (same user and episode, earlier request)."""
    n = len(log["user_id"])
    key = np.lexsort((log["request_id"], log["user_id"], log["episode"]))
    ep, user, req = log["episode"][key], log["user_id"][key], log["request_id"][key]
    click = np.asarray(log["is_click"], dtype=np.int64)[key]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (ep[1:] != ep[:-1]) | (user[1:] != user[:-1])
    new_req = np.ones(n, dtype=bool)
    new_req[1:] = new_group[1:] | (req[1:] != req[:-1])
    before = np.cumsum(click) - click  # clicks strictly before this sorted row
    group_first = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    req_first = np.maximum.accumulate(np.where(new_req, np.arange(n), 0))
    count_sorted = before[req_first] - before[group_first]  # earlier requests only
    start_sorted = before[group_first]  # the group's first click among the clicked rows
    count, start = np.empty(n, np.int64), np.empty(n, np.int64)
    count[key], start[key] = count_sorted, start_sorted
    return LogIndex(order=key[click.astype(bool)], start=start, count=count)


def obs_from_log(
    log: Mapping[str, np.ndarray], rows: np.ndarray, index: LogIndex, history_len: int
) -> dict[str, np.ndarray]:
    """The observation keys (batch of ``len(rows)``, one room slot each) that
    the behaviour policy saw at ``rows``, history rebuilt from ``index``."""
    h = history_len
    count = index.count[rows]
    j = count[:, None] - h + np.arange(h)[None, :]  # (B, H) newest last
    valid = j >= 0
    pos = np.minimum(index.start[rows][:, None] + np.maximum(j, 0), len(index.order) - 1)
    src = np.where(valid, index.order[np.maximum(pos, 0)] if len(index.order) else 0, 0)  # (B, H)
    t = log["timestamp_ms"][rows] / 1000.0
    fb = log_feedback({k: log[k][src.reshape(-1)] for k in FEEDBACK_COLUMNS})
    age_h = (t[:, None] - log["timestamp_ms"][src] / 1000.0) / 3600.0
    rooms = np.concatenate(
        [log["content_emb"][rows], log["pooled_emb"][rows], log["room_stats"][rows]], axis=1
    )
    return {
        "user": log["user_feat"][rows],
        "time": time_features(t),
        "history_streamer": np.where(valid, log["streamer_id"][src], -1),
        "history_content": np.where(valid[..., None], log["content_emb"][src], 0.0),
        "history_feedback": np.where(valid[..., None], fb.reshape(len(rows), h, -1), 0.0),
        "history_age": np.where(valid, np.log1p(np.maximum(age_h, 0.0)), 0.0),
        "history_mask": valid.astype(np.int8),
        "rooms": rooms[:, None, :],
        "room_followed": np.asarray(log["followed"][rows], dtype=np.int8)[:, None],
        "room_streamer": log["streamer_id"][rows][:, None],
        "room_mask": np.ones((len(rows), 1), dtype=np.int8),
    }
