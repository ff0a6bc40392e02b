"""LiveVectorEnv: registered through ``vector_entry_point``, step for step the same as
Gymnasium's own ``SyncVectorEnv`` of single envs, with batched masks and autoreset."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode

import liveenv  # noqa: F401  (registers the ids)
from liveenv.presets import ENV_IDS
from liveenv.vector import LiveVectorEnv

TINY = {
    "users.n_users": 3000,
    "streamers.n_streamers": 300,
    "horizon_hours": 0.15,
    "max_rooms": 48,
}


def _masked_random(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.choice(np.flatnonzero(m)) for m in masks])


@pytest.mark.parametrize("env_id", sorted(ENV_IDS.values()))
def test_every_registered_id_has_a_vector_entry_point(env_id):
    assert gym.spec(env_id).vector_entry_point == "liveenv.vector:LiveVectorEnv"


def test_make_vec_builds_it_with_batched_spaces():
    envs = gym.make_vec(
        "liveenv/Default-v0", num_envs=3, vectorization_mode="vector_entry_point", **TINY
    )
    assert isinstance(envs, LiveVectorEnv) and envs.num_envs == 3
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.single_action_space == gym.spaces.Discrete(48)
    assert envs.action_space == gym.spaces.MultiDiscrete([48] * 3)
    obs, info = envs.reset(seed=0)
    assert envs.observation_space.contains(obs)
    assert obs["rooms"].shape == (3, 48, envs.single_observation_space["rooms"].shape[1])
    assert info["user_id"].shape == (3,) and info["_user_id"].all()
    masks = envs.action_masks()
    assert masks.shape == (3, 48) and np.array_equal(masks, obs["room_mask"].astype(bool))
    envs.close()


def test_the_same_as_gymnasiums_sync_vector_env_step_for_step():
    """Each lane is the single env with seed + i: observations, rewards, truncations
    (and NEXT_STEP autoresets) equal SyncVectorEnv's over several episodes."""
    n, rng = 3, np.random.default_rng(1)
    ours = gym.make_vec(
        "liveenv/Default-v0", num_envs=n, vectorization_mode="vector_entry_point", **TINY
    )
    sync = gym.make_vec("liveenv/Default-v0", num_envs=n, vectorization_mode="sync", **TINY)
    o1, _ = ours.reset(seed=7)
    o2, _ = sync.reset(seed=7)
    assert data_equivalence(o1, o2, exact=True)
    ends = 0
    for _ in range(260):
        actions = _masked_random(ours.action_masks(), rng)
        o1, r1, te1, tr1, i1 = ours.step(actions)
        o2, r2, te2, tr2, i2 = sync.step(actions)
        assert data_equivalence((o1, r1, te1, tr1), (o2, r2, te2, tr2), exact=True)
        live = i2["_feedback"]
        assert np.array_equal(i1["_feedback"], live)
        assert np.array_equal(i1["feedback"][live], np.stack(i2["feedback"][live]))
        ends += int(tr1.sum())
    assert ends >= n  # every lane went through at least one autoreset
    assert ours.observation_space.contains(o1)


def test_returned_observations_are_not_reused():
    envs = LiveVectorEnv(2, "default", **TINY)
    o1, _ = envs.reset(seed=3)
    keep = {k: v.copy() for k, v in o1.items()}
    envs.step(_masked_random(envs.action_masks(), np.random.default_rng(0)))
    assert data_equivalence(o1, keep, exact=True)


def test_same_step_autoreset_gives_the_final_observation():
    envs = LiveVectorEnv(2, "default", autoreset_mode="SameStep", **TINY)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    envs.reset(seed=4)
    rng = np.random.default_rng(2)
    for _ in range(300):
        obs, _, _, truncated, info = envs.step(_masked_random(envs.action_masks(), rng))
        if truncated.any():
            i = int(np.flatnonzero(truncated)[0])
            assert info["_final_obs"][i] and info["_final_info"][i]
            final = info["final_obs"][i]
            assert envs.single_observation_space.contains(final)
            assert (
                obs["time"][i].tolist() != final["time"].tolist()
            )  # a new episode's first request
            return
    pytest.fail("no lane was truncated")


def test_reset_mask_options_and_errors():
    envs = LiveVectorEnv(3, "default", **TINY)
    obs, _ = envs.reset(seed=5)
    mask = np.array([False, True, False])
    w = np.arange(1, 7, dtype=float)
    again, info = envs.reset(
        seed=[None, 5 + 1, None], options={"reset_mask": mask, "reward_weights": w}
    )
    assert info["_user_id"].tolist() == [False, True, False]
    assert data_equivalence({k: v[1] for k, v in again.items()}, {k: v[1] for k, v in obs.items()})
    assert np.array_equal(envs.envs[1].weights, w) and not np.array_equal(envs.envs[0].weights, w)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.zeros(3, dtype=bool)})
    with pytest.raises(ValueError, match="one per lane"):
        envs.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="leading axis"):
        envs.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="num_envs=0"):
        LiveVectorEnv(0, "default")
    with pytest.raises(ValueError, match="not supported"):
        LiveVectorEnv(1, "default", autoreset_mode="Disabled")


def test_call_get_set_attr_and_oracle():
    envs = LiveVectorEnv(2, "default", **TINY)
    envs.reset(seed=6)
    masks = envs.call("action_masks")
    assert len(masks) == 2 and np.array_equal(np.stack(masks), envs.action_masks())
    assert envs.get_attr("render_mode") == (None, None)
    envs.set_attr("weights", [np.ones(6), np.zeros(6)])
    assert envs.envs[1].weights.sum() == 0
    util = envs.oracle_utilities()
    assert util.shape == (2, 48) and np.all(np.isfinite(util[envs.action_masks()]))


def test_slates_step_with_batched_multi_discrete_actions():
    envs = LiveVectorEnv(2, "default", slate_size=3, **TINY)
    assert envs.action_space.shape == (2, 3)
    envs.reset(seed=9)
    masks = envs.action_masks()
    assert masks.shape == (2, 3 * 48)
    _, rewards, _, _, info = envs.step(np.array([[0, 1, 2], [3, 1, 0]]))
    assert rewards.shape == (2,) and info["feedback"].shape == (2, 6)
