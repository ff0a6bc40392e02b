"""The world behaves as configured: drift, cohorts, follows."""

from __future__ import annotations

import numpy as np

from liveenv import make_config
from liveenv.rhythm import DAY_S, SEGMENT_S
from liveenv.world import World

SMALL = {"users.n_users": 3000, "streamers.n_streamers": 300}


def content_change(preset: str, ticks: int = 4) -> float:
    """Mean distance a live room's latent content moves over ``ticks`` segments
    (rooms still on air then: content past a room's end is never generated)."""
    world = World(make_config(preset, **SMALL), np.random.default_rng(0))
    g = world.tick
    slots = world.rooms.live_slots()
    slots = slots[world.rooms.t.end_tick[slots] > g + ticks]
    now = world.rooms.t.content[slots, g % world.rooms.ring]
    later = world.rooms.t.content[slots, (g + ticks) % world.rooms.ring]
    return float(np.linalg.norm(later - now, axis=1).mean())


def test_no_drift_content_stays_put_and_fast_drift_moves_more():
    still, default, fast = (content_change(p) for p in ("no_drift", "default", "fast_drift"))
    assert still < 1e-6
    assert default > 0.05
    assert fast > 1.5 * default


def test_no_drift_rooms_keep_their_content_through_clock_ticks():
    world = World(make_config("no_drift", **SMALL), np.random.default_rng(1))
    slot = world.rooms.live_slots()[0]
    first = world.rooms.current_latent(np.array([slot]), world.tick).copy()
    while world.sim.now < world.t0 + 20 * SEGMENT_S:
        world.sim.step()
    if world.rooms.t.live[slot]:
        np.testing.assert_allclose(
            world.rooms.current_latent(np.array([slot]), world.tick), first, atol=1e-6
        )


def test_cold_start_cohorts_in_the_configured_proportions():
    cfg = make_config("cold_start", **SMALL)
    world = World(cfg, np.random.default_rng(2))
    u = world.users
    age = world.t0 - u.join_t[: u.n]
    share_new = float(np.mean(age < cfg.users.new_days * DAY_S))
    assert abs(share_new - cfg.users.initial_new_share) < 0.02
    s = world.streamers
    s_new = float(np.mean(world.t0 - s.join_t[: s.n] < cfg.streamers.new_days * DAY_S))
    assert abs(s_new - cfg.streamers.initial_new_share) < 0.06
    n0 = u.n
    while world.sim.now < world.t0 + DAY_S / 4:
        world.sim.step()
    arrived = u.n - n0
    expected = cfg.users.new_users_per_day / 4
    assert abs(arrived - expected) < 4 * np.sqrt(expected)  # Poisson arrivals


def test_follow_raises_later_click_rate_on_that_streamer():
    """Two identical worlds; in one the user follows a live streamer. Hours
    later, that user's true click rate on the streamer's room is higher there."""
    cfg = make_config("default", **SMALL, **{"users.past_days": 0})  # nobody follows yet
    a, b = World(cfg, np.random.default_rng(5)), World(cfg, np.random.default_rng(5))
    # a room still on air half an hour from now
    slot = int(a.table_slots[np.argmax(a.rooms.t.end_t[a.table_slots])])
    assert a.rooms.t.end_t[slot] > a.t0 + 1800
    streamer = int(a.rooms.t.streamer[slot])
    users = np.arange(50)
    for u in users:
        b.add_follow(int(u), streamer)
    for w in (a, b):
        while w.sim.now < w.t0 + 1800:
            w.sim.step()
    assert a.rooms.t.live[slot] and a.rooms.t.streamer[slot] == streamer
    row = int(np.flatnonzero(a.table_slots == slot)[0])
    t = a.sim.now
    click_a = np.array([a.expected_feedback(int(u), t)[row, 0] for u in users])
    click_b = np.array([b.expected_feedback(int(u), t)[row, 0] for u in users])
    assert np.all(click_b > click_a)
    assert np.mean(click_b - click_a) > 0.05
    assert np.all(b.users.n_follows[users] == 1)


def test_evening_has_more_live_rooms_than_morning():
    world = World(make_config("default", **SMALL), np.random.default_rng(4))
    counts = {}
    while world.sim.now < world.t0 + DAY_S:
        world.sim.step()
        hour = int((world.sim.now % DAY_S) // 3600)
        counts.setdefault(hour, []).append(len(world.rooms.live_slots()))
    assert np.mean(counts[21]) > 2 * np.mean(counts[8])


def test_streamers_broadcast_as_often_as_configured_and_never_twice_at_once():
    """Two days of broadcasts (no viewers needed: rooms do not depend on them)."""
    cfg = make_config(
        "default",
        **{
            "users.n_users": 200,
            "users.new_users_per_day": 0.0,
            "streamers.new_streamers_per_day": 0.0,
        },
    )
    world = World(cfg, np.random.default_rng(6))
    seen: dict[int, tuple[int, float, float]] = {}
    while world.sim.now < world.t0 + 2 * DAY_S:
        world.sim.step()
        t, live = world.rooms.t, world.rooms.live_slots()
        for rid, st, s0, s1 in zip(
            t.room_id[live].tolist(),
            t.streamer[live].tolist(),
            t.start_t[live].tolist(),
            t.end_t[live].tolist(),
            strict=True,
        ):
            seen.setdefault(rid, (st, s0, s1))
    rooms = np.array(list(seen.values()))
    started = rooms[(rooms[:, 1] >= world.t0) & (rooms[:, 1] < world.t0 + 2 * DAY_S)]
    per_day = len(started) / cfg.streamers.n_streamers / 2
    assert abs(per_day - cfg.streamers.broadcasts_per_day) < 0.1 * cfg.streamers.broadcasts_per_day
    order = np.lexsort((rooms[:, 1], rooms[:, 0]))
    st, start, end = rooms[order].T
    same = st[1:] == st[:-1]
    assert np.all(start[1:][same] >= end[:-1][same])  # one broadcast at a time per streamer
    hours = (started[:, 1] % DAY_S) / 3600
    assert np.mean(hours >= 18) > 0.5  # still mostly in the evening
