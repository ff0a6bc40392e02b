"""Gymnasium's and SB3's env checkers over every registered id, with its defaults.

The checkers step with unmasked random actions, so most of their actions pick a
slot with no live room (a small world has some 30 live rooms of 256 slots); under
the default ``masked_action="skip"`` those are no-ops and every run passes. Each
checker runs several times per id, each time with another action-space seed.
The worlds are small (fewer users and streamers) so that this stays fast; the
slow tests run each checker ten times per id at full size, and once on Large.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from liveenv import ENV_IDS, MO_ENV_IDS

SMALL = {"users.n_users": 3000, "streamers.n_streamers": 300}
SMALL_IDS = [i for p, i in ENV_IDS.items() if p != "large"]
SMALL_MO_IDS = [i for p, i in MO_ENV_IDS.items() if p != "large"]
#: Gymnasium's passive checker (run inside check_env) warns on any non-scalar
#: reward; vector rewards are what the MO ids are for (MO-Gymnasium's own envs
#: get the same warning), so exactly that warning is allowed for them.
VECTOR_REWARD_WARNING = r".*The reward returned by `step\(\)` must be a float"


def _allow_explained_sb3_warnings() -> None:
    # The history and room tables are 2-D by design (one row per event / room);
    # SB3 suggests flattening, and our Dict features extractor handles them.
    warnings.filterwarnings("ignore", message=r"Your observation \w+ has an unconventional shape")


def _make(env_id: str, seed: int, **overrides) -> gym.Env:
    env = gym.make(env_id, **overrides).unwrapped
    env.action_space.seed(seed)
    return env


def gymnasium_check(env_id: str, seed: int, **overrides) -> None:
    env = _make(env_id, seed, **overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if env.config.reward_mode == "vector":
            warnings.filterwarnings("ignore", message=VECTOR_REWARD_WARNING)
        check_env(env, skip_render_check=False)


def sb3_check(env_id: str, seed: int, **overrides) -> None:
    """SB3's checker asserts a float reward, so an MO id is checked through
    MO-Gymnasium's ``LinearReward`` (its scalarisation for single-objective agents)."""
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = _make(env_id, seed, **overrides)
    if env.config.reward_mode == "vector":
        mo = pytest.importorskip("mo_gymnasium")
        env = mo.wrappers.LinearReward(env, weight=env.weights.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _allow_explained_sb3_warnings()
        sb3_check_env(env, warn=True)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("env_id", SMALL_IDS + SMALL_MO_IDS)
def test_gymnasium_check_env(env_id: str, seed: int) -> None:
    gymnasium_check(env_id, seed, **SMALL)


@pytest.mark.parametrize("env_id", SMALL_IDS + SMALL_MO_IDS)
def test_sb3_check_env(env_id: str) -> None:
    for seed in range(3):
        sb3_check(env_id, seed, **SMALL)


def test_the_checkers_do_sample_masked_slots() -> None:
    """What the checkers meet: most random actions are masked slots, each a no-op."""
    env = _make(SMALL_IDS[0], 0, **SMALL)
    env.reset(seed=0)
    invalid = 0
    for _ in range(50):
        *_, info = env.step(env.action_space.sample())
        invalid += info["invalid_action"]
    assert invalid > 25


def test_sb3_refuses_a_raw_vector_reward() -> None:
    """Why the MO ids go through LinearReward for SB3: its checker wants a float."""
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with pytest.raises(AssertionError, match="must be a float"):
        sb3_check_env(_make(SMALL_MO_IDS[0], 0, **SMALL), warn=False)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", SMALL_IDS + SMALL_MO_IDS)
def test_checkers_pass_every_time_at_full_size(env_id: str) -> None:
    for seed in range(100, 110):
        gymnasium_check(env_id, seed)
        sb3_check(env_id, seed)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [ENV_IDS["large"], MO_ENV_IDS["large"]])
def test_large_preset_passes_checkers(env_id: str) -> None:
    """A million users: each checker once (a reset builds the whole platform)."""
    gymnasium_check(env_id, 0)
    sb3_check(env_id, 0)
