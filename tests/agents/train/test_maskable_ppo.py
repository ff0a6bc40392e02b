"""A real client: sb3-contrib's MaskablePPO learns in the default world."""

from __future__ import annotations

import numpy as np
import pytest

from agents.train.sb3 import TrainSB3Args, mean_reward, train_sb3
from policies.baselines import RandomPolicy


@pytest.mark.slow
def test_maskable_ppo_beats_uniform_random(tmp_path) -> None:
    # the trainer's defaults: short episodes in fresh worlds, gamma 0 (see agents/train/sb3.py)
    args = TrainSB3Args(
        algo="MaskablePPO",
        timesteps=20_000,
        eval_every=20_000,
        eval_seeds=(9001,),
        eval_steps=50,
        out=str(tmp_path),
    )
    policy = train_sb3(args).policy
    seeds, steps = (101, 102, 103, 104), 1000  # worlds never seen in training
    ppo = np.array([mean_reward(policy, "default", (s,), steps) for s in seeds])
    rnd = np.array([mean_reward(RandomPolicy(), "default", (s,), steps) for s in seeds])
    # margin from the seed-to-seed spread of the random policy's mean reward
    margin = 2 * np.std(rnd, ddof=1)
    assert ppo.mean() > rnd.mean() + margin, (ppo, rnd)
    assert (ppo > rnd).all(), (ppo, rnd)  # in every one of the four worlds
