"""A real client: sb3-contrib's MaskablePPO learns in the default world."""

from __future__ import annotations

import numpy as np
import pytest

from liveenv import LiveStreamEnv, make_config


def mean_reward(env: LiveStreamEnv, act, seed: int, steps: int) -> float:
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        obs, r, _, trunc, _ = env.step(act(obs))
        total += r
        if trunc:
            obs, _ = env.reset()
    return total / steps


@pytest.mark.slow
def test_maskable_ppo_beats_uniform_random():
    from sb3_contrib import MaskablePPO

    from agents.sb3_policy import RoomScoringPolicy

    cfg = make_config("default", start_hour=18.0, horizon_hours=6.0)
    model = MaskablePPO(RoomScoringPolicy, LiveStreamEnv(cfg), n_steps=1024, batch_size=256,
                        learning_rate=1e-3, seed=0, verbose=0)  # fmt: skip
    model.learn(total_timesteps=20_000)
    env = LiveStreamEnv(cfg)
    rng = np.random.default_rng(0)

    def ppo(obs):
        return int(model.predict(obs, action_masks=env.action_masks(), deterministic=True)[0])

    def uniform(obs):
        return int(rng.choice(np.flatnonzero(obs["room_mask"])))

    seeds, steps = (101, 102, 103), 2000
    random_scores = [mean_reward(env, uniform, s, steps) for s in seeds]
    ppo_scores = [mean_reward(env, ppo, s, steps) for s in seeds]
    # margin from the seed-to-seed spread of the random policy's mean reward
    margin = 2 * np.std(random_scores, ddof=1)
    assert np.mean(ppo_scores) > np.mean(random_scores) + margin, (ppo_scores, random_scores)
