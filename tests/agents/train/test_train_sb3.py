"""SB3 wiring: masking of empty slots, the Policy wrapper, and the trainer's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO

from agents.train.sb3 import TrainSB3Args, save_result, train_sb3
from liveenv.env import LiveStreamEnv
from liveenv.presets import make_config
from policies.base import Policy
from policies.sb3_policy import (
    MASKED_LOGIT,
    RoomScoringActorCriticPolicy,
    RoomScoringPolicy,
    SB3Policy,
)

TINY = {
    "users.n_users": 1000,
    "streamers.n_streamers": 120,
    "start_hour": 20.0,
    "horizon_hours": 1.0,
}


def tiny_env(**extra) -> LiveStreamEnv:
    return LiveStreamEnv(make_config("default", **TINY, **extra))


def observations(env: LiveStreamEnv, n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(n):
        out.append(obs)
        obs, *_ = env.step(int(np.flatnonzero(obs["room_mask"])[-1]))
    return out


def test_plain_ppo_masks_empty_slots_inside_the_network() -> None:
    torch.manual_seed(0)
    env = tiny_env(masked_action="skip")
    model = PPO(RoomScoringActorCriticPolicy, env, n_steps=64, batch_size=32, seed=0, device="cpu")
    obs = observations(env, 3)
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    tensor, _ = model.policy.obs_to_tensor(batch)
    with torch.no_grad():
        probs = model.policy.get_distribution(tensor).distribution.probs.numpy()
    live = batch["room_mask"].astype(bool)
    assert np.all(probs[~live] == 0.0) and np.allclose(probs.sum(1), 1.0)
    assert MASKED_LOGIT < -1e3
    actions, _ = model.predict(batch, deterministic=False)
    assert live[np.arange(3), actions].all()


def test_sb3_policy_round_trip_acts_the_same(tmp_path) -> None:
    env = tiny_env()
    model = MaskablePPO(RoomScoringPolicy, env, n_steps=64, batch_size=32, seed=1, device="cpu")
    policy = SB3Policy(model, name="mppo")
    loaded = Policy.load(policy.save(tmp_path / "p.npz"))
    assert isinstance(loaded, SB3Policy) and loaded.algo == "MaskablePPO" and loaded.name == "mppo"
    obs = observations(env, 5, seed=2)
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    np.testing.assert_array_equal(policy.act(batch).slots, loaded.act(batch).slots)
    assert policy.act(obs[0]).slots.shape == (1,)
    assert batch["room_mask"][np.arange(5), policy.act(batch).slots].all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"algo": "DQN"}, "algo='DQN' is unknown"),
        ({"timesteps": 0}, "timesteps=0"),
        ({"gamma": 1.5}, "gamma=1.5"),
        ({"eval_seeds": ()}, "eval_seeds is empty"),
    ],
)
def test_bad_args_are_refused(kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainSB3Args(**kwargs)


def test_sb3_policy_refuses_slates_and_unknown_algorithms() -> None:
    with pytest.raises(ValueError, match="slate_size=2"):
        SB3Policy(None, slate_size=2)
    with pytest.raises(ValueError, match="algo='A2C' is unknown"):
        SB3Policy(None, algo="A2C")


def test_trainer_writes_policy_and_learning_curve(tmp_path) -> None:
    args = TrainSB3Args(
        algo="PPO",
        timesteps=256,
        n_steps=128,
        batch_size=64,
        n_epochs=1,
        eval_every=128,
        eval_seeds=(7,),
        eval_steps=20,
        horizon_hours=0.25,
        start_hour=20.0,
        out=str(tmp_path / "ppo"),
    )
    result = train_sb3(args)
    files = save_result(result, args)
    curve = result.curve
    assert curve["timesteps"].is_monotonic_increasing and curve["timesteps"].iloc[-1] >= 256
    assert len(curve) >= 3 and (curve["invalid_share"] == 0).all()  # never an empty slot
    assert np.isfinite(curve["eval_reward"]).all() and np.isfinite(result.random_reward)
    for key in ("policy", "curve_csv", "curve_png", "report"):
        assert (tmp_path / "ppo" / files[key].split("/")[-1]).stat().st_size > 0
    assert isinstance(Policy.load(files["policy"]), SB3Policy)
