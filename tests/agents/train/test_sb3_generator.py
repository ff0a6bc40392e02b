"""The generator as an sb3-contrib MaskablePPO policy: logits are the generator's
slot log-likelihoods, the pretrained weights survive construction, it trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from tiny_run import TINY_WORLD, build_tiny

from agents.align.actor import GeneratorActor
from agents.train.sb3_generator import GeneratorMaskablePolicy, SB3GeneratorArgs, make_model
from policies.onelive.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return build_tiny(tmp_path_factory.getbasetemp() / "align-tiny")


class Record(BaseCallback):
    """Mean rollout reward and the last logged losses after every update."""

    def __init__(self) -> None:
        super().__init__()
        self.rewards: list[float] = []
        self.losses: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.rewards.append(float(np.mean(self.model.rollout_buffer.rewards)))
        if "train/loss" in self.model.logger.name_to_value:
            self.losses.append(float(self.model.logger.name_to_value["train/loss"]))


def test_policy_logits_are_the_generator_slot_log_likelihoods(tiny) -> None:
    model = make_model(
        SB3GeneratorArgs(
            generator=str(tiny.generator), overrides=dict(TINY_WORLD), n_steps=32, batch_size=16
        )
    )
    policy = model.policy
    assert isinstance(policy, GeneratorMaskablePolicy)
    pretrained, _, _ = load_checkpoint(tiny.generator)
    mine = policy.generator_actor.model.state_dict()
    assert all(torch.equal(v, mine[k]) for k, v in pretrained.state_dict().items())  # no re-init
    env = model.get_env()
    obs = env.reset()
    obs_t, _ = policy.obs_to_tensor(obs)
    masks = np.stack(env.env_method("action_masks"))
    dist = policy.get_distribution(obs_t, action_masks=masks)
    actor = GeneratorActor.from_checkpoint(tiny.generator)
    expected = actor.slot_log_probs(actor.encode({k: v for k, v in obs.items()}))
    live = torch.from_numpy(masks)
    got = dist.distribution.logits
    torch.testing.assert_close(got[live], expected[live], atol=1e-5, rtol=1e-5)


def test_maskable_ppo_trains_the_generator(tiny) -> None:
    args = SB3GeneratorArgs(
        generator=str(tiny.generator),
        overrides=dict(TINY_WORLD),
        n_steps=64,
        batch_size=32,
        n_epochs=2,
        lr=1e-3,
        timesteps=256,
        seed=0,
    )
    model = make_model(args)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    rec = Record()
    model.learn(total_timesteps=256, callback=rec)
    after = model.policy.state_dict()
    gen_keys = [k for k in before if k.startswith("features_extractor.actor.model.")]
    assert gen_keys and all(not torch.equal(before[k], after[k]) for k in gen_keys[:5])
    assert len(rec.rewards) == 4 and len(rec.losses) >= 3
    assert np.all(np.isfinite(rec.losses)) and len(set(np.round(rec.losses, 6))) > 1  # loss moves
    assert len(set(np.round(rec.rewards, 6))) > 1  # the return of the rollouts moves
