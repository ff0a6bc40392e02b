"""Baselines: masks, slates, propensities, seeding, and their scores."""

from __future__ import annotations

import numpy as np
import pytest

from liveenv.config import ResponseConfig
from liveenv.env import LiveStreamEnv
from liveenv.presets import make_config
from liveenv.world import ROOM_STAT_COLUMNS
from policies.baselines import (
    EngagingPolicy,
    OraclePolicy,
    PopularPolicy,
    RandomPolicy,
    mean_gift_price,
    room_stat,
)
from policies.registry import make_baseline

TINY = {"users.n_users": 2000, "streamers.n_streamers": 150, "horizon_hours": 1, "start_hour": 20}
OBS_DIM = 2  # obs_dim of the synthetic tables


def table(stats: dict[str, list[float]], n: int, live: int) -> dict[str, np.ndarray]:
    """A single observation with ``n`` slots, the first ``live`` of them live."""
    rooms = np.zeros((n, 2 * OBS_DIM + len(ROOM_STAT_COLUMNS)), np.float32)
    for name, values in stats.items():
        rooms[:, 2 * OBS_DIM + ROOM_STAT_COLUMNS.index(name)] = values
    mask = (np.arange(n) < live).astype(np.int8)
    return {"rooms": rooms, "room_mask": mask}


def env_for(slate: int = 1) -> LiveStreamEnv:
    return LiveStreamEnv(make_config("default", slate_size=slate, **TINY))


def test_room_stat_reads_the_named_column() -> None:
    obs = table({"gift_rate": [1, 2, 3]}, 3, 3)
    assert room_stat(obs["rooms"], "gift_rate").tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="unknown"):
        room_stat(obs["rooms"], "viewers")


def test_popular_picks_most_viewers_among_live_only() -> None:
    obs = table({"log_viewers": [1.0, 5.0, 5.0, 2.0, 9.0]}, 5, live=4)
    assert PopularPolicy().act(obs).action() == 1  # slot 4 (9.0) is not live; tie -> lower
    assert PopularPolicy(slate_size=3).act(obs).action().tolist() == [1, 2, 3]


def test_scoring_policies_take_a_batch() -> None:
    a = table({"log_viewers": [1.0, 5.0, 2.0]}, 3, live=3)
    b = table({"log_viewers": [4.0, 5.0, 2.0]}, 3, live=1)
    batch = {k: np.stack([a[k], b[k]]) for k in a}
    out = PopularPolicy().act(batch)
    assert out.slots.tolist() == [1, 0] and out.propensities is None
    assert PopularPolicy(slate_size=2).act(a).slots.tolist() == [[1, 2]]


def test_engaging_weights_rates_as_the_reward() -> None:
    obs = table(
        {
            "like_rate": [0.3, 0.0, 0.0],
            "comment_rate": [0.0, 0.2, 0.0],
            "gift_rate": [0.0, 0.0, 0.1],
        },
        3,
        3,
    )
    w = {"like": 1.0, "comment": 2.0, "gift": 0.5}
    p = EngagingPolicy(reward_weights=w, gift_value=10.0)
    s = p.scores({k: v[None] for k, v in obs.items()})[0]
    np.testing.assert_allclose(s, [0.3, 0.4, 0.5], rtol=1e-6)
    assert p.act(obs).action() == 2
    assert EngagingPolicy(reward_weights={"gift": 0.0}).act(obs).action() == 0
    assert mean_gift_price(ResponseConfig(gift_prices=(1, 3), gift_price_probs=(0.5, 0.5))) == 2
    default = ResponseConfig()
    assert mean_gift_price() == pytest.approx(np.dot(default.gift_prices, default.gift_price_probs))
    with pytest.raises(ValueError, match="gift_value"):
        EngagingPolicy(gift_value=-1.0)


def test_random_is_uniform_over_live_with_propensities() -> None:
    obs = table({}, 10, live=4)
    p = RandomPolicy(np.random.default_rng(0))
    picks = [p.act(obs) for _ in range(4000)]
    slots = np.array([o.action() for o in picks])
    assert set(slots.tolist()) == {0, 1, 2, 3}
    assert np.allclose(np.bincount(slots) / len(slots), 0.25, atol=0.03)
    assert all(o.propensities.tolist() == [0.25] for o in picks[:10])
    slate = RandomPolicy(1, slate_size=3).act(obs)
    assert slate.slots.shape == (1, 3) and len(set(slate.action().tolist())) == 3
    assert set(slate.action().tolist()) <= {0, 1, 2, 3}
    np.testing.assert_allclose(slate.propensities, [[1 / 4, 1 / 3, 1 / 2]])


def test_random_batch_and_reseed() -> None:
    obs = table({}, 8, live=6)
    batch = {k: np.stack([v] * 5) for k, v in obs.items()}
    p = RandomPolicy()
    p.reset(11)
    first = p.act(batch).slots
    assert first.shape == (5,) and (first < 6).all()
    p.reset(11)
    assert p.act(batch).slots.tolist() == first.tolist()


@pytest.mark.parametrize("slate", [1, 3])
@pytest.mark.parametrize("kind", ["random", "popular", "engaging", "oracle"])
def test_baselines_play_the_env_within_the_mask(kind: str, slate: int) -> None:
    env = env_for(slate)
    policy = make_baseline(kind, slate_size=slate)
    obs, _ = env.reset(seed=1)
    for _ in range(25):
        out = policy.act(obs, env=env if policy.requires_env else None)
        chosen = np.atleast_1d(out.action())
        assert len(chosen) == slate and len(set(chosen.tolist())) == slate
        assert obs["room_mask"][chosen].all()
        assert env.action_masks()[: len(obs["room_mask"])][chosen].all()
        obs, *_ = env.step(out.action())


def test_oracle_is_greedy_on_utilities_and_privileged() -> None:
    env = env_for()
    obs, _ = env.reset(seed=2)
    oracle = OraclePolicy()
    assert oracle.requires_env and not PopularPolicy.requires_env
    assert oracle.act(obs, env=env).action() == int(np.argmax(env.oracle_utilities()))
    top = OraclePolicy(slate_size=3).act(obs, env=env).action()
    util = env.oracle_utilities()
    assert util[top].tolist() == sorted(util, reverse=True)[:3]
    with pytest.raises(ValueError, match="env="):
        oracle.act(obs)
    with pytest.raises(ValueError, match="batch of 2"):
        oracle.act({k: np.stack([v, v]) for k, v in obs.items()}, env=env)


def test_make_baseline_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="allowed"):
        make_baseline("cascade")
