from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import liveenv
from liveenv import ENV_IDS, LiveStreamEnv


def test_every_preset_is_registered():
    assert set(ENV_IDS.values()) <= set(gym.registry)
    assert set(liveenv.MO_ENV_IDS.values()) <= set(gym.registry)
    assert liveenv.ENV_IDS["cold_start"] == "liveenv/ColdStart-v0"
    assert liveenv.MO_ENV_IDS["cold_start"] == "liveenv/ColdStart-MO-v0"


def rollout(env: LiveStreamEnv, seed: int, steps: int):
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed + 100)
    trace = [obs]
    for _ in range(steps):
        action = rng.choice(np.flatnonzero(env.action_masks()))
        obs, reward, term, trunc, info = env.step(action)
        trace.append(
            (
                obs,
                reward,
                term,
                trunc,
                {k: v for k, v in info.items() if k != "feedback"},
                info["feedback"],
            )
        )
    return trace


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def test_same_seed_same_trajectory_bit_for_bit(tiny_config):
    a = rollout(LiveStreamEnv(tiny_config), seed=7, steps=1500)
    b = rollout(LiveStreamEnv(tiny_config), seed=7, steps=1500)
    assert _equal(a, b)
    c = rollout(LiveStreamEnv(tiny_config), seed=8, steps=1500)
    assert not _equal(a, c)


def test_world_seed_fixes_the_platform_and_reset_seed_the_dynamics(tiny_config):
    """Same ``world_seed``: the same users and streamers (hidden quality, pooled
    embedding, interests) on every reset seed, with other live rooms and requests.
    ``world_seed=None``: each reset seed draws a platform of its own."""

    def platform(cfg, seed):
        env = LiveStreamEnv(cfg)
        obs, _ = env.reset(seed=seed)
        w = env.world
        n_s, n_u = cfg.streamers.n_streamers, cfg.users.n_users
        return (
            w.streamers.quality[:n_s].copy(),
            w.streamers.pooled[:n_s].copy(),
            w.users.interest[:n_u].copy(),
            obs["room_streamer"].copy(),
        )

    q0, p0, i0, live0 = platform(tiny_config, 0)
    q1, p1, i1, live1 = platform(tiny_config, 1)
    np.testing.assert_array_equal(q0, q1)
    np.testing.assert_array_equal(p0, p1)
    np.testing.assert_array_equal(i0, i1)
    assert not np.array_equal(live0, live1)  # other broadcasts and requests
    q2, *_ = platform(tiny_config.replace(world_seed=5), 0)
    assert not np.array_equal(q0, q2)
    rnd = tiny_config.replace(world_seed=None)
    assert not np.array_equal(platform(rnd, 0)[0], platform(rnd, 1)[0])
    np.testing.assert_array_equal(platform(rnd, 3)[1], platform(rnd, 3)[1])
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match="world_seed"):
            tiny_config.replace(world_seed=bad)


def test_masked_and_out_of_range_actions_are_refused(tiny_config):
    env = LiveStreamEnv(tiny_config.replace(masked_action="raise"))
    env.reset(seed=0)
    n_live = int(env.action_masks().sum())
    assert 0 < n_live < tiny_config.max_rooms
    with pytest.raises(ValueError, match=rf"slot {n_live} is masked: only slots \[0, {n_live}\)"):
        env.step(n_live)
    with pytest.raises(ValueError, match=r"slot 999 is out of range: slots must be in \[0, 128\)"):
        env.step(999)
    with pytest.raises(ValueError, match="out of range"):
        env.step(-1)


def test_masked_action_skip_is_the_default_no_op(tiny_config):
    """By default a masked slot is answered with nothing: zero feedback and reward,
    the info keys of a served request, ``invalid_action``; the visit ends."""
    assert tiny_config.masked_action == "skip"
    env = LiveStreamEnv(tiny_config)
    _, info0 = env.reset(seed=0)
    served = LiveStreamEnv(tiny_config)
    served.reset(seed=0)
    *_, ok = served.step(0)
    n_live = int(env.action_masks().sum())
    user = info0["user_id"]
    _, reward, term, trunc, info = env.step(n_live)
    assert reward == 0.0 and not term and not trunc
    assert info["invalid_action"] and info["clicked_slot"] == -1
    assert not np.any(info["feedback"]) and info.keys() == ok.keys()
    assert not env.world.users.in_session[user]


def test_slate_actions(tiny_config):
    env = LiveStreamEnv(tiny_config.replace(slate_size=3, masked_action="raise"))
    env.reset(seed=0)
    assert env.action_space.shape == (3,)
    assert env.action_masks().shape == (3 * tiny_config.max_rooms,)
    with pytest.raises(ValueError, match="must be distinct"):
        env.step([0, 0, 1])
    skip = LiveStreamEnv(tiny_config.replace(slate_size=3))
    skip.reset(seed=0)
    _, reward, _, _, info = skip.step(np.array([0, 0, 1]))  # in the space, shows no slate
    assert reward == 0.0 and info["invalid_action"]
    clicked = 0
    for _ in range(300):
        _, _, _, _, info = env.step([0, 1, 2])
        clicked += info["clicked_slot"] >= 0
        assert info["clicked_slot"] in (-1, 0, 1, 2)
    assert clicked > 0


def test_reward_is_weighted_feedback_and_weights_change_on_reset(tiny_config):
    env = LiveStreamEnv(tiny_config)
    env.reset(seed=0)
    for _ in range(200):
        _, r, _, _, info = env.step(0)
        assert r == pytest.approx(float(info["feedback"] @ env.weights))
    env.reset(seed=0, options={"reward_weights": {"click": 7.0}})
    assert env.weights[0] == 7.0
    with pytest.raises(ValueError, match="unknown objective"):
        env.reset(options={"reward_weights": {"clik": 1.0}})
    with pytest.raises(ValueError, match="reset options"):
        env.reset(options={"nope": 1})
    _, r, _, _, _ = env.step(0)
    assert isinstance(r, float)  # reward_mode="scalar", the default


def test_episode_truncates_at_the_horizon_and_never_terminates(tiny_config):
    env = LiveStreamEnv(tiny_config.replace(horizon_hours=0.25))
    _, info = env.reset(seed=1)
    t0 = env.world.t0
    assert info["time_s"] < t0 + 0.25 * 3600
    for _ in range(100_000):
        _, _, term, trunc, info = env.step(0)
        assert not term
        if trunc:
            break
    assert trunc and info["time_s"] >= t0 + 0.25 * 3600 - 1


def test_oracle_and_info(tiny_config):
    env = LiveStreamEnv(tiny_config)
    env.reset(seed=3)
    util = env.oracle_utilities()
    mask = env.action_masks()
    assert np.all(np.isfinite(util[mask])) and np.all(np.isneginf(util[~mask]))
    exp = env.oracle_expected_feedback()
    assert np.all(exp[mask][:, 0] > 0) and np.all(exp[mask][:, 0] < 1)
    _, _, _, _, info = env.step(int(np.argmax(util)))
    assert info["phase"] in ("warmup", "peak", "decline")
    assert info["streamer_cohort"] in ("new", "established")
    assert info["user_cohort"] in ("new", "light", "heavy")
    assert env.reward_space.shape == (6,)


def test_render_modes(tiny_config):
    env = LiveStreamEnv(tiny_config, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(0)
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.std() > 0
    env = LiveStreamEnv(tiny_config, render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    text = env.render()
    assert "live rooms" in text and "reward" in text
    with pytest.raises(ValueError, match="render_mode='human' is not supported"):
        LiveStreamEnv(tiny_config, render_mode="human")
