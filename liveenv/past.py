"""The platform's past: what earlier days left behind when an episode starts.

A day does not start from nothing. Before the first request of an episode
the platform has run for ``users.past_days`` days with the world's own
dynamics, on the batched path: the same users and streamers, arrivals on the
daily rhythm, rooms, the response model, boredom, interest drift, follows and
return rates, with the past platform's recommender choosing the rooms (see
:func:`platform_choice`). What it leaves behind is carried into the episode:

* each returning user's history (times shifted so that the past ends where
  the episode begins), follows, drifted interests, boredom (recovering until
  the user's next visit), return rate and the time of the last visit;
* each streamer's fans: the fans it was drawn with plus one per user who
  followed it in the past (``fans`` are then fixed for the episode, so the
  rooms' random stream stays the same under every recommender);
* nothing for a user who joins after the past's start beyond what happened
  after the join: earlier events and the follows they did not lead to are
  dropped. Users and streamers who join during the episode have no past.

The past depends only on the platform (``world_seed``) and the config, not on
the reset seed, so it is built once per process and world (:data:`_CACHE`, the last :data:`CACHE_SIZE` worlds)
and copied at each reset. With ``world_seed=None`` the platform, and with it
the past, is new at every reset (built each time, from the reset's stream).
"""

from __future__ import annotations

import copy
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from liveenv.config import EnvConfig
from liveenv.history import HistoryStore
from liveenv.rhythm import DAY_S

if TYPE_CHECKING:
    from liveenv.world import World

#: Mixed into ``world_seed`` to seed the past (a stream of its own).
PAST_SALT = 0x9A57
#: Requests the past serves per call (one 30-s tick at most).
PAST_BATCH = 4096
#: Config fields that change nothing before the episode starts.
_EPISODE_ONLY = ("reward_weights", "horizon_hours", "masked_action", "preset", "slate_size")

#: Pasts kept per process (the most recently used worlds).
CACHE_SIZE = 4
_CACHE: OrderedDict[str, Past] = OrderedDict()


@dataclass
class Past:
    """The state earlier days left on the initial users and streamers."""

    interest: np.ndarray  # (U, d)
    boredom: np.ndarray  # (U, d)
    return_boost: np.ndarray  # (U,)
    last_visit_t: np.ndarray  # (U,) -inf: no visit
    history: HistoryStore
    follows: dict[int, frozenset[int]]
    fans_gained: np.ndarray  # (S,)
    build_s: float  # seconds it took to build

    def apply(self, world: World) -> None:
        """Carry this past into ``world`` (its initial population, before any event)."""
        u, n = world.users, len(self.interest)
        u.interest[:n] = self.interest
        u.boredom[:n] = self.boredom
        u.return_boost[:n] = self.return_boost
        u.last_visit_t[:n] = self.last_visit_t
        world.history = copy.deepcopy(self.history)
        world.follows = {user: set(s) for user, s in self.follows.items()}
        for user, s in self.follows.items():
            u.n_follows[user] = len(s)
        world.streamers.fans[: len(self.fans_gained)] += self.fans_gained


def past_key(cfg: EnvConfig) -> str | None:
    """Cache key of a world's past (``None``: not cached, ``world_seed=None``)."""
    if cfg.world_seed is None:
        return None
    data = cfg.to_dict()
    for name in _EPISODE_ONLY:
        data.pop(name)
    return json.dumps(data, sort_keys=True)


def past_seed(cfg: EnvConfig, platform: np.random.Generator) -> int:
    """The past's seed: from ``world_seed``, else from the platform's stream."""
    if cfg.world_seed is None:
        return int(platform.integers(0, 2**62))
    return int(np.random.default_rng([cfg.world_seed, PAST_SALT]).integers(0, 2**62))


def past_of(cfg: EnvConfig, platform: np.random.Generator) -> Past:
    """The past of the world ``cfg`` (built once per process when cached)."""
    key, seed = past_key(cfg), past_seed(cfg, platform)
    if key is None:
        return build_past(cfg, seed)
    if key in _CACHE:
        _CACHE.move_to_end(key)
    else:
        _CACHE[key] = build_past(cfg, seed)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return _CACHE[key]


def build_past(cfg: EnvConfig, seed: int) -> Past:
    """Run the platform ``cfg.users.past_days`` days from the episode's start hour
    and shift what it left so that it ends at the episode's start."""
    from liveenv.world import World  # the world builds its past: import late

    t_build = time.perf_counter()
    days = cfg.users.past_days
    blank = cfg.replace(**{"users.past_days": 0})
    seeds = np.random.default_rng(seed).integers(0, 2**62, size=2)
    world = World(blank, np.random.default_rng(int(seeds[0])), batched=True, grow=False)
    choice_rng = np.random.default_rng(int(seeds[1]))
    end = world.t0 + days * DAY_S
    while True:
        users, times = world.next_requests(PAST_BATCH)
        if times[0] >= end:
            break
        if world.n_live == 0:
            world.end_sessions(users)
            continue
        rows = platform_choice(world, users, choice_rng, cfg.users.past_sharpness)
        world.serve(users, times, rows[:, None])
    return _left_behind(world, days * DAY_S, time.perf_counter() - t_build)


def platform_choice(
    world: World, users: np.ndarray, rng: np.random.Generator, sharpness: float
) -> np.ndarray:
    """The past platform's recommender: table rows drawn with probability
    ``softmax(sharpness * appeal)`` of the rooms' current appeal to each user,
    a good but imperfect recommender."""
    slots, rt = world.table_slots, world.rooms.t
    j = world.tick % world.rooms.ring
    content, bias = rt.content[slots, j], rt.bias[slots, j]  # (R, d), (R,)
    us, w_b = world.users, np.float32(world.cfg.response.boredom_weight)
    vec = us.interest[users] - w_b * us.boredom[users]  # (B, d)
    score = vec @ content.T + bias  # (B, R)
    score -= score.max(axis=1, keepdims=True)
    cdf = np.cumsum(np.exp(np.float32(sharpness) * score, out=score), axis=1)
    pick = rng.random(len(users), dtype=np.float32) * cdf[:, -1]
    return np.minimum((cdf < pick[:, None]).sum(axis=1), len(slots) - 1)


def _left_behind(world: World, shift: float, build_s: float) -> Past:
    """What ``world`` holds now, with times moved back by ``shift`` seconds."""
    u, n = world.users, world.cfg.users.n_users
    history = world.history
    history.t.time -= shift  # padding stays +inf
    join_t = u.join_t[:n]
    _drop_before_join(history, join_t)
    follows = _kept_follows(world.follows, history, join_t, world.t0 - shift)
    fans = np.zeros(world.cfg.streamers.n_streamers, dtype=np.float32)
    for s in follows.values():
        fans[list(s)] += 1.0
    return Past(
        interest=u.interest[:n].copy(),
        boredom=u.boredom[:n].copy(),
        return_boost=u.return_boost[:n].copy(),
        last_visit_t=u.last_visit_t[:n] - shift,
        history=history,
        follows=follows,
        fans_gained=fans,
        build_s=build_s,
    )


def _drop_before_join(history: HistoryStore, join_t: np.ndarray) -> None:
    """Blank the events of each user that fall before the user joined (a left
    prefix of the row: the row stays right-aligned)."""
    users = np.flatnonzero(history.row_of[: len(join_t)])
    rows = history.row_of[users]
    t = history.t
    before = t.time[rows] < join_t[users, None]
    if not before.any():
        return
    r, k = np.nonzero(before)
    rows = rows[r]
    t.streamer[rows, k] = -1
    t.content[rows, k] = 0.0
    t.feedback[rows, k] = 0.0
    t.time[rows, k] = np.inf
    t.mask[rows, k] = 0


def _kept_follows(
    follows: dict[int, set[int]], history: HistoryStore, join_t: np.ndarray, start: float
) -> dict[int, frozenset[int]]:
    """Follows of the initial users; a user who joined after the past's ``start``
    keeps only the follows of streamers still in the user's (post-join) history."""
    kept: dict[int, frozenset[int]] = {}
    for user, s in follows.items():
        if user >= len(join_t):
            continue
        if join_t[user] > start:
            seen = history.t.streamer[history.row_of[user]]
            s = s & set(seen[seen >= 0].tolist())
        if s:
            kept[user] = frozenset(s)
    return kept
