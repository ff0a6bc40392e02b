"""The platform's past as log rows, so that histories rebuilt from a log include it.

With ``users.past_days > 0`` a day starts on a platform that has run before
(:mod:`liveenv.past`): each returning user's observation already holds a history.
A log that recorded only the day's impressions would rebuild shorter histories
than the policy saw, and a sequence model trained on it would never see a long
one. So at every reset both recorders write the history the world starts with as
rows of their own part, one row per past click, before the day's first request:

* ``request_id`` is negative (``-P .. -1``, oldest first; ``P`` past events),
  ``policy`` and the cohort and phase columns are ``"past"``, ``slot`` and
  ``live_id`` are -1, ``policy_propensity`` is NaN;
* the history's own fields are exact: user, streamer, time (before the episode
  starts, so ``timestamp_ms`` and ``day`` may be negative), the observed content
  at the click, the feedback (watch time, like, comment, follow, gift) and the
  reward under the env's weights;
* the streamer's observed pooled embedding (fixed per streamer) is filled in;
  what a history does not keep is zero: room statistics and user features.

Past rows are never impressions: :func:`agents.logs.reader.read_log_arrays`
leaves them out unless asked (``rows="past"`` / ``"all"``), and the trainers that
rebuild histories put them first (:func:`agents.logs.reader.with_past`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.logs.parts import PartWriter
from liveenv.world import ROOM_STAT_COLUMNS

#: The ``policy``, cohort and phase value of a past row.
PAST = "past"


def past_columns(world: Any, episode: int, weights: np.ndarray, user_dim: int) -> dict[str, Any]:
    """One log column per schema field for the history ``world`` starts with
    (empty arrays when nobody has one), oldest event first."""
    hist = world.history
    users = np.flatnonzero(hist.row_of)  # users with a history row
    rows = hist.row_of[users]
    t = hist.t
    r, k = np.nonzero(t.mask[rows] > 0)  # (P,) events
    time_s = t.time[rows[r], k]
    order = np.argsort(time_s, kind="stable")
    r, k, time_s = r[order], k[order], time_s[order]
    n = len(r)
    fb = t.feedback[rows[r], k].astype(np.float64)  # (P, 6)
    content = t.content[rows[r], k]  # (P, o)
    t_ms = np.round(time_s * 1000.0).astype(np.int64)
    text = np.full(n, PAST)
    return {
        "episode": np.full(n, episode),
        "request_id": np.arange(-n, 0, dtype=np.int64),
        "user_id": users[r],
        "streamer_id": t.streamer[rows[r], k],
        "live_id": np.full(n, -1),
        "timestamp_ms": t_ms,
        "day": t_ms // 86_400_000,
        "hour": (t_ms // 3_600_000) % 24,
        "slot": np.full(n, -1),
        "slate_pos": np.zeros(n, np.int64),
        "is_click": np.ones(n, bool),
        "watch_time_ms": np.round(fb[:, 1] * 60_000.0).astype(np.int64),
        "like": fb[:, 2] > 0,
        "comment": fb[:, 3] > 0,
        "follow": fb[:, 4] > 0,
        "gift_price": fb[:, 5],
        "reward": fb @ weights,
        "policy_propensity": np.full(n, np.nan),
        "policy": text,
        "user_cohort": text,
        "streamer_cohort": text,
        "phase": text,
        "followed": np.zeros(n, bool),
        "content_emb": content.astype(np.float32),
        "pooled_emb": world.streamers.pooled[t.streamer[rows[r], k]].astype(np.float32),
        "room_stats": np.zeros((n, len(ROOM_STAT_COLUMNS)), np.float32),
        "user_feat": np.zeros((n, user_dim), np.float32),
    }


def write_past(
    parts: PartWriter, world: Any, episode: int, weights: np.ndarray, user: np.ndarray, config: Any
) -> int:
    """Write the history ``world`` starts with as the next part of ``parts`` (nothing
    when it is empty); ``user``: an observation's user features (for their width).
    Returns the rows written."""
    cols = past_columns(world, episode, weights, user.shape[-1])
    n = len(cols["request_id"])
    if n:
        parts.write(cols, config)
    return n
