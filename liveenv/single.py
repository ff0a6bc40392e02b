"""The lean path of one request: observe and answer it without batch arrays.

The Gymnasium env answers one request per step, where numpy calls on arrays
of one row cost more than the arithmetic. These functions do the same as
:meth:`World.observe` and :meth:`World.serve` for one request and one room,
with Python floats for the scalar part and numpy only on vectors: the
room table of the tick is shared (read-only, built once per tick), a user
without a history gets the shared empty one, and the request's random numbers
are one row of :attr:`World.draws`. ``tests/liveenv/test_single.py`` checks
them against the batched path, draw for draw.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from liveenv.population import N_AGE, N_GENDER, N_REGION, USER_FEATURES
from liveenv.response import (
    U_BOUNCE,
    U_BOUNCE_T,
    U_CLICK,
    U_COMMENT,
    U_CONTINUE,
    U_FOLLOW,
    U_GAP,
    U_GIFT,
    U_LEAVE,
    U_LIKE,
    U_PRICE,
)
from liveenv.rhythm import DAY_S, SEGMENT_S
from liveenv.world import World

_K = N_AGE + N_GENDER + N_REGION
_WEEK_S = 7 * DAY_S


class OneServed(NamedTuple):
    """The outcome of one request shown one room."""

    feedback: list[float]  # click, watch minutes, like, comment, follow, gift value
    clicked: bool
    watch_s: float
    slot: int  # room slot (pool row) shown


def observe_one(world: World, user: int, now: float) -> dict[str, np.ndarray]:
    """The observation of one request (no batch axis), every array its own:
    Gymnasium's checker refuses observations that share memory across steps,
    so the tick's cached room table is copied (one memcpy), not rebuilt."""
    table, streamer, mask = world.table_parts()
    obs = world.history.gather_one(user, now)
    obs["user"] = user_features_one(world, user, now)
    obs["rooms"] = table.copy()
    obs["room_followed"] = followed_one(world, user)
    obs["room_streamer"] = streamer.copy()
    obs["room_mask"] = mask.copy()
    obs["time"] = time_features_one(now)
    return obs


def user_features_one(world: World, user: int, now: float) -> np.ndarray:
    u = world.users
    out = np.zeros(USER_FEATURES, dtype=np.float32)
    d0, d1, d2 = u.demo[user].tolist()
    out[d0] = out[N_AGE + d1] = out[N_AGE + N_GENDER + d2] = 1.0
    age_s = now - float(u.join_t[user])
    out[_K] = age_s < world.cfg.users.new_days * DAY_S
    out[_K + 1] = math.log1p(int(u.visits[user])) / 5.0
    out[_K + 2] = math.log1p(max(age_s, 0.0) / DAY_S) / 3.0
    out[_K + 3] = min(int(u.n_follows[user]), 10) / 10.0
    return out


def followed_one(world: World, user: int) -> np.ndarray:
    out = np.zeros(world.cfg.max_rooms, dtype=np.int8)
    follows = world.follows.get(user)
    if not follows:
        return out
    pos = world.table_position()
    for s in follows:
        i = pos.get(s)
        if i is not None:
            out[i] = 1
    return out


def time_features_one(t: float) -> np.ndarray:
    day = 2 * math.pi * (t % DAY_S) / DAY_S
    week = 2 * math.pi * (t % _WEEK_S) / _WEEK_S
    return np.array(
        [math.sin(day), math.cos(day), math.sin(week), math.cos(week)], dtype=np.float32
    )


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def serve_one(world: World, user: int, now: float, row: int) -> OneServed:
    """Show ``user`` the room in table position ``row`` and apply the outcome."""
    cfg, r = world.cfg, world.cfg.response
    u, drift = world.draws.one()
    slot = int(world.table_slots[row])
    rt, us = world.rooms.t, world.users
    streamer = int(rt.streamer[slot])
    follows = world.follows.get(user)
    followed = follows is not None and streamer in follows
    bonus = r.follow_bonus if followed else 0.0
    tick = int(now // SEGMENT_S)
    j = tick % world.rooms.ring
    seg = rt.content[slot, j]
    interest, boredom = us.interest[user], us.boredom[user]
    match = float(seg.dot(interest)) - r.boredom_weight * float(seg.dot(boredom))
    a0 = match + float(rt.bias[slot, j]) + bonus
    clicked = u[U_CLICK] < _sigmoid(r.click_bias + r.click_slope * a0)
    fb, watch = [0.0] * 6, 0.0
    if clicked:
        pull = float(world.streamers.gift_pull[streamer])
        watch, mean_a = _watch(world, slot, now, tick, a0, interest, boredom, bonus, u)
        minutes = watch / 60.0
        boost = math.exp(r.engagement_slope * mean_a)
        rates = (
            r.like_per_min * float(us.like_prop[user]) * boost,
            r.comment_per_min * float(us.comment_prop[user]) * boost,
            0.0 if followed else r.follow_per_min * boost,
            r.gift_per_min * float(us.gift_prop[user]) * pull * boost,
        )
        hit = [
            u[c] < 1.0 - math.exp(-rate * minutes)
            for c, rate in zip((U_LIKE, U_COMMENT, U_FOLLOW, U_GIFT), rates, strict=True)
        ]
        price = _gift_price(u[U_PRICE], cfg) if hit[3] else 0.0
        fb = [1.0, minutes, float(hit[0]), float(hit[1]), float(hit[2]), price]
        world.history.append_one(user, streamer, rt.obs[slot], fb, now)
        rate = np.float32(cfg.users.boredom_rate)
        boredom *= 1 - rate  # a view: updated in place
        boredom += rate * seg
        if hit[2]:
            world.add_follow(user, streamer)
    _after(world, user, now, fb, watch, clicked, u, drift)
    return OneServed(fb, bool(clicked), watch, slot)


def _watch(
    world: World,
    slot: int,
    now: float,
    tick: int,
    a0: float,
    interest: np.ndarray,
    boredom: np.ndarray,
    bonus: float,
    u: list[float],
) -> tuple[float, float]:
    """Watch seconds and mean appeal watched (as :func:`liveenv.response.sample_watch`)."""
    r, rt, ring = world.cfg.response, world.rooms.t, world.rooms.ring
    mws = r.max_watch_segments
    tau = (tick + 1) * SEGMENT_S - now
    end = float(rt.end_t[slot])
    n_b = min(math.ceil(max(end - now - tau, 0.0) / SEGMENT_S), mws)
    full = max(min(end - now, tau + SEGMENT_S * (mws - 1)), 0.0)
    if u[U_BOUNCE] < _sigmoid(r.bounce_bias - r.bounce_slope * a0):
        return min(-r.bounce_mean_s * math.log1p(-u[U_BOUNCE_T]), tau, full), a0
    if n_b == 0:
        return full, a0
    need = -math.log(max(u[U_LEAVE], 1e-300))
    content, bias = rt.content[slot], rt.bias[slot]
    vec = interest - r.boredom_weight * boredom
    hold = _hold_bias(world, slot)
    hazard, appeal, k, chunk = 0.0, a0, 1, 16
    bonus64 = np.float64(bonus)
    while True:
        k1 = min(k + chunk, n_b + 1)
        idx = np.arange(tick + k, tick + k1) % ring
        a = (content[idx] @ vec + bias[idx]) + bonus64
        cum = np.cumsum(np.logaddexp(0.0, hold - r.leave_slope * a))
        cum += hazard
        if cum[-1] >= need:
            j = int(np.argmax(cum >= need))
            return tau + SEGMENT_S * (k + j - 1), (appeal + float(a[:j].sum())) / (k + j)
        hazard, appeal = float(cum[-1]), appeal + float(a.sum())
        if k1 > n_b:
            return full, appeal / (n_b + 1)
        k, chunk = k1, mws


def _hold_bias(world: World, slot: int) -> float:
    """Leave logit at zero appeal of the room (as :func:`liveenv.response.hold_bias`)."""
    r = world.cfg.response
    if r.gift_hold_cost == 0.0:
        return r.leave_bias
    pull = float(world.streamers.gift_pull[int(world.rooms.t.streamer[slot])])
    return r.leave_bias + r.gift_hold_cost * math.log(pull)


def _gift_price(u: float, cfg) -> float:
    r = cfg.response
    acc = 0.0
    for price, p in zip(r.gift_prices, r.gift_price_probs, strict=True):
        acc += p
        if u < acc:
            return float(price)
    return float(r.gift_prices[-1])


def _after(
    world: World,
    user: int,
    now: float,
    fb: list[float],
    watch: float,
    clicked: bool,
    u: list[float],
    drift: np.ndarray,
) -> None:
    """Interest drift, the visit's satisfaction, and the user's next request."""
    ucfg, us = world.cfg.users, world.users
    x = us.interest[user]  # a view: updated in place
    x += drift  # drift: normals scaled by the draw stream
    x *= np.float32(1.0 / math.sqrt(float(x.dot(x))))
    sat = math.log1p(fb[1]) + fb[2] + fb[3] + 2 * fb[4] + (fb[5] > 0)
    n_req = int(us.session_requests[user]) + 1
    us.session_requests[user] = n_req
    us.session_value[user] += sat
    p_go_on = ucfg.session_continue * (1.0 if clicked else 0.8)
    if u[U_CONTINUE] < p_go_on and n_req < ucfg.max_session_requests:
        gap = -ucfg.gap_mean_s * math.log1p(-u[U_GAP])
        world.queue.push(now + watch + gap + 1e-3, user)
    else:
        end_session_one(world, user)


def end_session_one(world: World, user: int) -> None:
    """:meth:`World.end_sessions` for one user."""
    us, ucfg = world.users, world.cfg.users
    us.in_session[user] = False
    mean_sat = float(us.session_value[user]) / max(int(us.session_requests[user]), 1)
    target = math.exp(ucfg.return_sensitivity * (mean_sat - 0.5))
    boost = 0.7 * float(us.return_boost[user]) + 0.3 * target
    us.return_boost[user] = min(max(boost, ucfg.return_boost_min), ucfg.return_boost_max)
