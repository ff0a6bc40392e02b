"""Bad actions and inputs are refused with errors that name them; none is coerced.

One test per item of the catalogue (issue 23, item 3); every one of them passed
silently (or with a nonsense slot) before.
"""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

from liveenv import OBJECTIVES, LiveStreamEnv
from liveenv.batched import BatchedLiveEnv

RANGE = r"slots are integers in \[0, 128\)"


@pytest.fixture
def env(tiny_config) -> LiveStreamEnv:
    e = LiveStreamEnv(tiny_config)
    e.reset(seed=0)
    return e


@pytest.fixture
def slate_env(tiny_config) -> LiveStreamEnv:
    e = LiveStreamEnv(tiny_config.replace(slate_size=3))
    e.reset(seed=0)
    return e


@pytest.mark.parametrize("action", [1.7, np.float32(2.0), 1.0])
def test_float_action_is_refused(env, action) -> None:
    with pytest.raises(
        TypeError,
        match=rf"action={re.escape(repr(action))} is invalid: must be an integer.*{RANGE}",
    ):
        env.step(action)


def test_negative_float_action_is_refused(env) -> None:
    with pytest.raises(TypeError, match=rf"action=-0.5 is invalid.*{RANGE}"):
        env.step(-0.5)


def test_string_action_is_refused(env) -> None:
    with pytest.raises(TypeError, match=rf"action='0' is invalid.*{RANGE}"):
        env.step("0")


@pytest.mark.parametrize("action", [True, np.True_])
def test_bool_action_is_refused(env, action) -> None:
    with pytest.raises(TypeError, match=r"not bool"):
        env.step(action)


@pytest.mark.parametrize("action", [[0], [[0]], np.array([0])])
def test_array_action_is_refused_for_one_room(env, action) -> None:
    with pytest.raises(TypeError, match=r"must be an integer scalar"):
        env.step(action)


def test_two_dimensional_slate_is_refused(slate_env) -> None:
    with pytest.raises(
        ValueError, match=r"must be a 1-D integer array of shape \(3,\), got shape \(1, 3\)"
    ):
        slate_env.step([[0, 1, 2]])
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        slate_env.step([0, 1])


@pytest.mark.parametrize("action", [[0.0, 1.0, 2.0], np.array([True, False, True]), "012"])
def test_non_integer_slate_is_refused(slate_env, action) -> None:
    with pytest.raises(TypeError, match=rf"must be a 1-D integer array of 3 slots.*{RANGE}"):
        slate_env.step(action)


def test_nan_action_names_the_action_not_a_cast_slot(env) -> None:
    with pytest.raises(TypeError, match=r"action=nan is invalid") as err:
        env.step(np.nan)
    assert "-9223372036854775808" not in str(err.value)


def test_integer_actions_of_every_kind_are_accepted(env, slate_env) -> None:
    for a in (0, np.int32(1), np.uint8(2), np.int64(0), np.array(1)):
        *_, info = env.step(a)
        assert not info["invalid_action"]
    for a in ([0, 1, 2], (2, 1, 0), np.array([0, 1, 2], dtype=np.int16)):
        *_, info = slate_env.step(a)
        assert not info["invalid_action"]


@pytest.mark.parametrize(
    ("name", "value", "what"),
    [("click", -1.0, "negative"), ("gift", np.inf, "non-finite"), ("like", np.nan, "non-finite")],
)
def test_bad_reward_weights_are_refused_at_make(name, value, what) -> None:
    with pytest.raises(
        ValueError,
        match=rf"reward_weights\['{name}'\]={value!r} is invalid \({what}\): .*\[0, inf\)",
    ):
        gym.make("liveenv/Default-v0", reward_weights={name: value})


@pytest.mark.parametrize(("name", "value"), [("follow", -0.5), ("watch_time", -np.inf)])
def test_bad_reward_weights_are_refused_at_reset(env, name, value) -> None:
    before = env.weights.copy()
    with pytest.raises(
        ValueError, match=rf"options.reward_weights\['{name}'\]={value!r} .*\[0, inf\)"
    ):
        env.reset(options={"reward_weights": {name: value}})
    np.testing.assert_array_equal(env.weights, before)
    env.reset(options={"reward_weights": {name: 0.0}})  # zero is allowed
    assert env.weights[OBJECTIVES.index(name)] == 0


@pytest.mark.parametrize("options", [[], (), "", 0, [("reward_weights", {})]])
def test_reset_options_must_be_a_dict(env, options) -> None:
    with pytest.raises(TypeError, match=r"reset options=.* is invalid: must be None or a dict"):
        env.reset(options=options)
    with pytest.raises(ValueError, match=r"reset options \['seed'\] are unknown"):
        env.reset(options={"seed": 1})
    env.reset(options={})
    env.reset(options=None)


@pytest.mark.parametrize("mode", ["human", "ANSI", "rgb", 3])
def test_render_mode_must_be_a_supported_one(tiny_config, mode) -> None:
    """Refused by name at construction (already so before the strict-input work;
    kept as a guard). Through ``gym.make``, ``"human"`` and ``"*_list"`` are
    Gymnasium's own wrappers over the supported modes."""
    with pytest.raises(ValueError, match=r"is not supported; allowed: \['ansi', 'rgb_array'\]"):
        LiveStreamEnv(tiny_config, render_mode=mode)


def test_batched_actions_are_checked_alike(tiny_config) -> None:
    env = BatchedLiveEnv(tiny_config, batch_size=64)
    obs, _ = env.reset(seed=0)
    while len(obs["user"]) < 2:
        obs, *_ = env.step(np.zeros(len(obs["user"]), dtype=np.int64))
    b = len(obs["user"])
    for bad in (np.zeros(b), np.zeros(b, dtype=bool), np.array(["0"] * b)):
        with pytest.raises(TypeError, match=r"must be an integer array of shape"):
            env.step(bad)
    with pytest.raises(ValueError, match=rf"actions of shape \({b}, 1\) are invalid"):
        env.step(np.zeros((b, 1), dtype=np.int64))
    obs, rewards, *_ = env.step(np.zeros(b, dtype=np.int32))
    assert len(rewards) == b


def test_batched_slates_are_checked_alike(tiny_config) -> None:
    env = BatchedLiveEnv(tiny_config.replace(slate_size=3), batch_size=64)
    obs, _ = env.reset(seed=0)
    b = len(obs["user"])
    good = np.tile([0, 1, 2], (b, 1))
    with pytest.raises(TypeError):
        env.step(good.astype(float))
    with pytest.raises(ValueError, match=r"actions of shape"):
        env.step(good.reshape(-1))
    bad = good.copy()
    bad[-1] = [1, 1, 0]
    with pytest.raises(ValueError, match=rf"actions\[{b - 1}\]=\[1, 1, 0\] is invalid: .*distinct"):
        env.step(bad)
    env.step(good)
