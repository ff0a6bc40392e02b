"""LiveSB3VecEnv: SB3's VecEnv contract (the same as a DummyVecEnv of single envs),
action masks for sb3-contrib, and MaskablePPO training on it."""

from __future__ import annotations

import numpy as np
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.vec_env import DummyVecEnv

from liveenv import LiveStreamEnv, make_config
from policies.sb3_vecenv import LiveSB3VecEnv

TINY = {
    "users.n_users": 3000,
    "streamers.n_streamers": 300,
    "horizon_hours": 0.15,
    "max_rooms": 32,
}


def test_masks_reach_sb3_contrib():
    venv = LiveSB3VecEnv(3, "default", seed=0, **TINY)
    obs = venv.reset()
    assert is_masking_supported(venv)
    masks = get_action_masks(venv)
    assert masks.shape == (3, 32) and np.array_equal(masks, obs["room_mask"].astype(bool))
    assert len(venv.env_method("action_masks", indices=[1])) == 1
    assert venv.get_attr("render_mode") == [None, None, None]
    assert venv.env_is_wrapped(DummyVecEnv) == [False, False, False]


def test_the_same_as_a_dummy_vec_env_of_single_envs():
    """Same seeds, same actions: observations, rewards, dones, terminal observations
    and TimeLimit.truncated equal SB3's DummyVecEnv over the single env."""
    n, cfg = 2, make_config("default", **TINY)
    ours = LiveSB3VecEnv(n, cfg)
    dummy = DummyVecEnv([lambda: LiveStreamEnv(cfg) for _ in range(n)])
    ours.seed(11)
    dummy.seed(11)
    o1, o2 = ours.reset(), dummy.reset()
    assert all(np.array_equal(o1[k], o2[k]) for k in o1)
    rng, ends = np.random.default_rng(0), 0
    for _ in range(250):
        masks = get_action_masks(ours)
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        o1, r1, d1, i1 = ours.step(actions)
        o2, r2, d2, i2 = dummy.step(actions)
        assert all(np.array_equal(o1[k], o2[k]) for k in o1)
        np.testing.assert_allclose(r1, r2.astype(np.float32))
        assert np.array_equal(d1, d2)
        for a, b in zip(i1, i2, strict=True):
            assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"]
            np.testing.assert_array_equal(a["feedback"], b["feedback"])
            if "terminal_observation" in b:
                ends += 1
                term = a["terminal_observation"]
                assert all(np.array_equal(term[k], b["terminal_observation"][k]) for k in term)
    assert ends >= n


def test_maskable_ppo_learns_on_it():
    import torch

    torch.set_num_threads(1)
    venv = LiveSB3VecEnv(4, "default", seed=0, **TINY)
    model = MaskablePPO(
        "MultiInputPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(256)
    assert model.num_timesteps >= 256
    obs = venv.reset()
    masks = get_action_masks(venv)
    actions, _ = model.predict(obs, action_masks=masks, deterministic=True)
    assert all(masks[i, a] for i, a in enumerate(actions))
    venv.close()
