"""Gift pull: streamers that draw more gifts per minute watched but hold viewers less.

On by default (``gift_pull_sigma`` 0.7, ``gift_hold_cost`` 0.4), stronger in the
``gift_tradeoff`` preset, where gifts and watch time favour different rooms; with
``gift_pull_sigma = 0`` every pull is 1 and no hold cost changes anything.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from liveenv import LiveStreamEnv, make_config
from liveenv.response import Impressions, expected_feedback
from liveenv.rhythm import SEGMENT_S
from liveenv.world import ROOM_STAT_COLUMNS, World

SMALL = {"users.n_users": 3000, "streamers.n_streamers": 300, "start_hour": 20.0}
OBJ_WATCH, OBJ_GIFT = 1, 5


def rollout(cfg, steps: int = 300, seed: int = 7) -> list[np.ndarray]:
    """Observations, oracle feedback and rewards of a seeded random-room episode."""
    env = LiveStreamEnv(cfg)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    trace = []
    for i in range(steps):
        trace += [obs[k] for k in sorted(obs)]
        if i % 50 == 0:
            trace.append(env.oracle_expected_feedback())
        obs, reward, _, _, info = env.step(int(rng.integers(env.world.n_live)))
        trace += [np.array([reward, info["watch_s"]]), info["feedback"]]
    return trace


def advance(world: World, ticks: int) -> None:
    while world.sim.now < world.t0 + ticks * SEGMENT_S:
        world.sim.step()


def test_without_gift_pull_the_hold_cost_changes_nothing(tiny_config):
    off = tiny_config.replace(**{"streamers.gift_pull_sigma": 0.0})
    cfg = off.replace(**{"streamers.new_streamers_per_day": 3000.0})
    world = World(cfg, np.random.default_rng(0))
    n0 = world.streamers.n
    advance(world, 45)  # two growth rounds: new creators joined
    assert world.streamers.n > n0
    assert np.all(world.streamers.gift_pull == 1.0)
    base = rollout(off)
    # a hold cost on pulls of 1 changes nothing: log(1) = 0 exactly
    for overrides in ({"response.gift_hold_cost": 0.0}, {"response.gift_hold_cost": 0.7}):
        other = rollout(off.replace(**overrides))
        assert len(other) == len(base)
        for x, y in zip(base, other, strict=True):
            np.testing.assert_array_equal(x, y)


def test_gift_tradeoff_preset_is_the_default_world_with_a_stronger_gift_pull():
    cfg, default = make_config("gift_tradeoff"), make_config("default")
    assert cfg.streamers.gift_pull_sigma > default.streamers.gift_pull_sigma > 0
    assert cfg.response.gift_hold_cost > default.response.gift_hold_cost > 0
    same = cfg.replace(
        **{
            "streamers.gift_pull_sigma": default.streamers.gift_pull_sigma,
            "response.gift_hold_cost": default.response.gift_hold_cost,
        }
    )
    assert same.replace(preset="default") == default


def test_every_streamer_gets_a_gift_pull_new_ones_too():
    cfg = make_config("gift_tradeoff", **SMALL, **{"streamers.new_streamers_per_day": 30_000.0})
    world = World(cfg, np.random.default_rng(1))
    n0 = world.streamers.n
    advance(world, 45)
    pull = world.streamers.gift_pull[: world.streamers.n]
    assert world.streamers.n > n0 + 200
    assert np.all(pull > 0) and len(np.unique(pull)) == len(pull)
    for part in (pull[:n0], pull[n0:]):  # lognormal(0, sigma), initial and new alike
        assert abs(np.log(part).std() - cfg.streamers.gift_pull_sigma) < 0.25
        assert abs(np.median(np.log(part))) < 0.25


def one_room_impressions(pulls: np.ndarray, cfg) -> Impressions:
    """The same gifter and room (appeal 0.3 on every segment), one row per gift pull."""
    n, d, ring = len(pulls), cfg.latent_dim, cfg.response.max_watch_segments + 2
    content = np.zeros((1, ring, d), np.float32)
    content[..., 0] = 1.0
    vec = np.zeros((n, d), np.float32)
    vec[:, 0] = 0.3
    return Impressions(
        t=np.full(n, 1000.0),
        vec=vec,
        like_prop=np.ones(n),
        comment_prop=np.ones(n),
        gift_prop=np.ones(n),
        followed=np.zeros(n, bool),
        gift_pull=pulls.astype(np.float32),
        end_t=np.full(n, 1000.0 + 7200.0),
        slot=np.zeros(n, np.int64),
        content=content,
        bias=np.zeros((1, ring), np.float32),
    )


def test_more_gift_pull_means_more_gifts_and_less_watch_at_equal_appeal():
    pulls = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    cfg = make_config("gift_tradeoff")
    imp = one_room_impressions(pulls, cfg)
    exp = expected_feedback(imp, cfg)
    np.testing.assert_allclose(exp[:, 0], exp[0, 0])  # the click does not see the pull
    assert np.all(np.diff(exp[:, OBJ_GIFT]) > 0), exp[:, OBJ_GIFT]
    assert np.all(np.diff(exp[:, OBJ_WATCH]) < 0), exp[:, OBJ_WATCH]
    assert exp[-1, OBJ_WATCH] < 0.7 * exp[0, OBJ_WATCH]
    # without the hold cost the pull only multiplies the gift rate
    free = expected_feedback(imp, cfg.replace(**{"response.gift_hold_cost": 0.0}))
    np.testing.assert_allclose(free[:, OBJ_WATCH], free[0, OBJ_WATCH])
    assert np.all(np.diff(free[:, OBJ_GIFT]) > 0)


def test_the_observed_gift_rate_shows_the_gift_pull():
    world = World(make_config("gift_tradeoff", **SMALL), np.random.default_rng(2))
    o, n = world.cfg.obs_dim, world.n_live
    gift_rate = world.table[:n, 2 * o + ROOM_STAT_COLUMNS.index("gift_rate")]
    pull = world.streamers.gift_pull[world.rooms.t.streamer[world.table_slots]]
    assert n > 30
    assert np.corrcoef(np.log(gift_rate), np.log(pull))[0, 1] > 0.5


@pytest.mark.parametrize(
    "field, value",
    [
        ("streamers.gift_pull_sigma", -0.5),
        ("streamers.gift_pull_sigma", 6.0),
        ("streamers.gift_pull_sigma", float("nan")),
        ("response.gift_hold_cost", -1.0),
        ("response.gift_hold_cost", 11.0),
        ("response.gift_hold_cost", "high"),
    ],
)
def test_bad_gift_pull_values_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=re.escape(field) + "=.* is invalid"):
        make_config("default", **{field: value})
