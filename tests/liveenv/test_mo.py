"""The multi-objective ids under MO-Gymnasium's wrappers: the numbers, not just the types."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from liveenv import MO_ENV_IDS, LiveStreamEnv

mo_gym = pytest.importorskip("mo_gymnasium")
from mo_gymnasium.wrappers import LinearReward, MORecordEpisodeStatistics  # noqa: E402

SMALL = {"users.n_users": 3000, "streamers.n_streamers": 300, "horizon_hours": 0.25}


def _actions(env: gym.Env, rng: np.random.Generator) -> int:
    return int(rng.integers(int(env.unwrapped.action_masks().sum())))


def test_mo_id_returns_the_feedback_vector_in_reward_space() -> None:
    env = gym.make(MO_ENV_IDS["default"], **SMALL)
    assert env.unwrapped.config.reward_mode == "vector"
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        _, reward, _, _, info = env.step(_actions(env, rng))
        assert isinstance(reward, np.ndarray) and reward.dtype == np.float32
        assert reward.shape == (6,) and env.unwrapped.reward_space.contains(reward)
        np.testing.assert_array_equal(reward, info["feedback"].astype(np.float32))


@pytest.mark.parametrize("preset", ["default", "gift_tradeoff"])
def test_linear_reward_equals_the_scalar_env_and_episode_vector_is_the_feedback_sum(
    preset: str,
) -> None:
    """Same seed and actions: LinearReward(w) over the MO id gives the scalar id's
    reward (float32 vector times float64 weights: equal to float32 rounding), and
    MORecordEpisodeStatistics's episode return is the sum of the feedback vectors,
    one number per objective (not the scalar copied six times)."""
    from liveenv import ENV_IDS

    weights = np.array([0.3, 0.2, 1.0, 2.0, 4.0, 0.05])
    scalar = gym.make(ENV_IDS[preset], reward_weights=weights.tolist(), **SMALL)
    mo = MORecordEpisodeStatistics(gym.make(MO_ENV_IDS[preset], **SMALL), gamma=1.0)
    lin = LinearReward(mo, weight=weights)
    scalar.reset(seed=3)
    lin.reset(seed=3)
    rng = np.random.default_rng(3)
    feedback, rewards, steps = np.zeros(6), [], 0
    while True:
        a = _actions(scalar, rng)
        _, r, _, trunc, s_info = scalar.step(a)
        _, r_lin, _, trunc_mo, info = lin.step(a)
        assert trunc == trunc_mo
        assert isinstance(r, float) and r_lin == pytest.approx(r, rel=1e-6, abs=1e-6)
        np.testing.assert_array_equal(info["feedback"], s_info["feedback"])
        feedback += info["feedback"]
        rewards.append(r)
        steps += 1
        if trunc:
            break
    ep = info["episode"]
    assert ep["l"] == steps > 100
    assert ep["r"].shape == (6,)
    np.testing.assert_allclose(ep["r"], feedback, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(ep["dr"], feedback, rtol=1e-5, atol=1e-3)  # gamma = 1
    # one return per objective, not the scalar return copied six times
    assert ep["r"][0] > 0 and ep["r"][1] != ep["r"][0] != pytest.approx(sum(rewards))
    assert float(ep["r"] @ weights) == pytest.approx(sum(rewards), rel=1e-5)


def test_reward_mode_is_validated_and_mo_gymnasium_make_works() -> None:
    with pytest.raises(ValueError, match="reward_mode='both' is invalid"):
        LiveStreamEnv("default", reward_mode="both")
    env = mo_gym.make(MO_ENV_IDS["no_drift"], **SMALL)
    env.reset(seed=0)
    _, reward, *_ = env.step(0)
    assert reward.shape == env.unwrapped.reward_space.shape == (6,)
