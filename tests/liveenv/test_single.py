"""The lean one-request path (:mod:`liveenv.single`) against the batched path.

Two worlds from the same seed serve the same requests with the same random
rows (one row of :attr:`World.draws` per request, in serving order): one
request at a time through :func:`serve_one`, all at once through
:meth:`World.serve`. Outcomes must agree draw for draw (clicks, likes, ...
exactly; watch times and state to float precision), and so must the
observations of :func:`observe_one` and :meth:`World.observe`, with and
without gift pull.
"""

from __future__ import annotations

import numpy as np

from liveenv import make_config
from liveenv.single import observe_one, serve_one
from liveenv.world import World


def two_worlds(seed: int = 3, **overrides: float) -> tuple[World, World]:
    cfg = make_config(
        "default",
        **{"users.n_users": 3000, "streamers.n_streamers": 300, "start_hour": 20.0, **overrides},
    )
    return World(cfg, np.random.default_rng(seed)), World(cfg, np.random.default_rng(seed))


def pending(world: World, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct users asking within the current tick, in time order."""
    rng = np.random.default_rng(seed)
    users = rng.choice(world.users.n, n, replace=False)
    return users, np.sort(world.sim.now + rng.uniform(0.0, 29.9, n))


def test_serve_one_matches_the_vectorised_serve_draw_for_draw(world_overrides):
    a, b = two_worlds(**world_overrides)
    users, times = pending(a, 400)
    # a few follows so that the follow bonus is exercised
    rng = np.random.default_rng(0)
    rows = rng.integers(0, a.n_live, len(users))
    for i in range(0, len(users), 7):
        for w in (a, b):
            w.add_follow(int(users[i]), int(w.rooms.t.streamer[w.table_slots[rows[i]]]))
    one = [
        serve_one(a, int(u), float(t), int(r)) for u, t, r in zip(users, times, rows, strict=True)
    ]
    many = b.serve(users, times, rows[:, None])
    fb_one = np.array([s.feedback for s in one])
    assert fb_one[:, 0].sum() > 50 and fb_one[:, 1].max() > 10  # clicks and long watches
    np.testing.assert_array_equal(fb_one[:, [0, 2, 3, 4]], many.feedback[:, [0, 2, 3, 4]])
    np.testing.assert_array_equal(fb_one[:, 5], many.feedback[:, 5])
    np.testing.assert_allclose(fb_one[:, 1], many.feedback[:, 1], rtol=1e-9)
    np.testing.assert_allclose([s.watch_s for s in one], many.watch_s, rtol=1e-9, atol=1e-9)
    us_a, us_b = a.users, b.users
    np.testing.assert_allclose(us_a.interest[users], us_b.interest[users], atol=1e-6)
    np.testing.assert_allclose(us_a.boredom[users], us_b.boredom[users], atol=1e-6)
    np.testing.assert_array_equal(us_a.session_requests[users], us_b.session_requests[users])
    np.testing.assert_array_equal(us_a.in_session[users], us_b.in_session[users])
    np.testing.assert_allclose(us_a.return_boost[users], us_b.return_boost[users], rtol=1e-6)
    assert len(a.queue) == len(b.queue)


def test_observe_one_matches_the_batched_observation(world_overrides):
    a, b = two_worlds(5, **world_overrides)
    users, times = pending(a, 300)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, a.n_live, len(users))
    for w in (a, b):  # give the users some history and follows first
        w.serve(users, times, rows[:, None])
        w.add_follow(int(users[0]), int(w.rooms.t.streamer[w.table_slots[0]]))
    batch = a.observe(users, times)
    for i in range(0, len(users), 13):
        single = observe_one(b, int(users[i]), float(times[i]))
        assert list(single) == list(batch)
        for key, value in single.items():
            assert value.dtype == batch[key].dtype, key
            np.testing.assert_allclose(value, batch[key][i], rtol=1e-6, atol=1e-6, err_msg=key)
    assert batch["history_mask"].sum() > 0 and batch["room_followed"][0].sum() == 1


def test_the_single_env_hands_out_fresh_arrays():
    """Gymnasium's checker refuses observations that share memory across steps."""
    a, _ = two_worlds()
    user, t = a.next_request()
    first = observe_one(a, user, t)
    second = observe_one(a, user, t)
    for key in first:
        assert not np.shares_memory(first[key], second[key]), key
        assert first[key].flags.writeable, key
