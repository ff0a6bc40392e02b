"""The cascade's training data: one interaction log (one simulated world) as the
features the cascade sees when serving (:mod:`agents.train.cascade` trains on them).

:func:`load_log` reads a log's rows in time order, rebuilds the observation keys the
behaviour policy saw (:func:`policies.cascade.features.obs_from_log`, history from
earlier clicks), replays the cold-start cluster memory through them when given, and
holds out the last ``val_share`` of the requests; :func:`agents.logs.log_config` is the env config
stored in the log. For the two-tower's in-batch softmax: :func:`followed_pairs` (the
exact follow flag of every in-batch pair) and :func:`click_log_share` (the logQ term).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.logs import log_config
from agents.logs.reader import read_log_and_past, with_past
from policies.cascade.coldstart import ClusterMemory
from policies.cascade.features import (
    LOG_COLUMNS,
    PairFeatures,
    RequestSide,
    index_log,
    log_feedback,
    obs_from_log,
    pair_features,
)

if TYPE_CHECKING:
    from agents.train.cascade import TrainCascadeArgs

__all__ = ["LogData", "click_log_share", "followed_pairs", "load_log"]


@dataclass
class LogData:
    """One log (world) as features: ``pf`` has one room slot per row."""

    pf: PairFeatures
    feedback: np.ndarray  # (N, 6) env units
    val: np.ndarray  # (N,) bool: held out
    user: np.ndarray
    streamer: np.ndarray
    live: np.ndarray
    t: np.ndarray  # request time, seconds
    follow_keys: np.ndarray  # sorted user * M + streamer of follow events
    follow_t: np.ndarray  # time of the first follow of each key
    n_streamer_ids: int


def _concat(parts: list[PairFeatures]) -> PairFeatures:
    def cat(get: Any) -> np.ndarray:
        return np.concatenate([get(p) for p in parts])

    request = RequestSide(
        cat(lambda p: p.request.scalars),
        cat(lambda p: p.request.taste),
        cat(lambda p: p.request.last),
    )
    return PairFeatures(
        request=request,
        rooms=cat(lambda p: p.rooms),
        cross=cat(lambda p: p.cross),
        followed=cat(lambda p: p.followed),
        mask=cat(lambda p: p.mask),
    )


def load_log(path: str | Path, args: TrainCascadeArgs, memory: ClusterMemory | None) -> LogData:
    """Read ``path`` and build its features (replaying ``memory`` when given)."""
    cfg = log_config(path)
    log, past = read_log_and_past(path, LOG_COLUMNS)
    n = len(log["user_id"])
    if args.max_rows and n > args.max_rows:
        log = {k: v[: args.max_rows] for k, v in log.items()}
        n = args.max_rows
    hist_log, n_past = with_past(log, past)  # histories start with the past's events
    index = index_log(hist_log)
    order = np.lexsort((log["request_id"], log["episode"]))  # time order
    step = args.chunk_requests if memory is not None else 16_384
    parts, rows_done = [], []
    if memory is not None:
        memory.reset()  # every log is its own world
    for lo in range(0, n, step):
        rows = order[lo : lo + step]
        obs = obs_from_log(hist_log, rows + n_past, index, cfg.users.history_len)
        group = None if memory is None else memory.read(obs["user"])
        pf = pair_features(obs, group)
        if memory is not None:
            memory.write(obs["user"], pf.request.taste, pf.request.has_history)
        parts.append(pf)
        rows_done.append(rows)
    rows = np.concatenate(rows_done)
    log = {k: v[rows] for k, v in log.items()}
    request = log["request_id"] + log["episode"].astype(np.int64) * (1 << 40)
    cut = np.quantile(request, 1 - args.val_share)
    m = int(max(log["streamer_id"].max(), 0)) + 1
    t = log["timestamp_ms"] / 1000.0
    follow_keys, follow_t = _follows(log, t, m)
    return LogData(
        pf=_concat(parts),
        feedback=log_feedback(log),
        val=request >= cut,
        user=log["user_id"],
        streamer=log["streamer_id"],
        live=log["live_id"],
        t=t,
        follow_keys=follow_keys,
        follow_t=follow_t,
        n_streamer_ids=m,
    )


def _follows(log: dict[str, np.ndarray], t: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``user * m + streamer`` keys of the follows the log shows, and when each
    began: a follow event's time, or ``-inf`` for a follow from before the log (a row
    shown as ``followed`` with no follow event of the pair before it)."""
    key = log["user_id"] * m + log["streamer_id"]
    fol, was = np.flatnonzero(log["follow"]), np.flatnonzero(log["followed"])
    keys = np.concatenate([key[fol], key[was]])
    when = np.concatenate([t[fol], np.full(len(was), -np.inf)])
    earliest = np.lexsort((when, keys))  # by key, then time
    keys, when = keys[earliest], when[earliest]
    first = np.r_[True, keys[1:] != keys[:-1]]
    events = dict(zip(key[fol].tolist(), t[fol].tolist(), strict=True))
    # a pair shown as followed after its own follow event began at the event
    start = np.array(
        [events.get(k, w) for k, w in zip(keys[first].tolist(), when[first], strict=True)]
    )
    return keys[first], start.astype(np.float64)


def followed_pairs(d: LogData, rows: np.ndarray) -> np.ndarray:
    """``(B, B)``: user of row ``i`` followed the streamer of row ``j`` before row ``i``."""
    if len(d.follow_keys) == 0:
        return np.zeros((len(rows), len(rows)), dtype=np.float32)
    streamer = np.minimum(d.streamer[rows], d.n_streamer_ids - 1)
    keys = d.user[rows][:, None] * d.n_streamer_ids + streamer[None, :]
    pos = np.minimum(np.searchsorted(d.follow_keys, keys), len(d.follow_keys) - 1)
    hit = (d.follow_keys[pos] == keys) & (d.follow_t[pos] < d.t[rows][:, None])
    known = d.streamer[rows][None, :] < d.n_streamer_ids
    return (hit & known).astype(np.float32)


def click_log_share(d: LogData, val: bool) -> np.ndarray:
    """``(N,)`` log of each row's room share of the clicks of its split (the logQ term)."""
    rows = np.flatnonzero((d.feedback[:, 0] > 0) & (d.val == val))
    ids, inv = np.unique(d.live, return_inverse=True)
    counts = np.bincount(inv[rows], minlength=len(ids)).astype(np.float64)
    return np.log(np.maximum(counts[inv], 1.0) / max(len(rows), 1)).astype(np.float32)
