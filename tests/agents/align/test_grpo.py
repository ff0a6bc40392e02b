"""GRPO/ECPO alignment: the math, the actor, the pool, a run that improves the
policy, and an interrupted run that resumes to the same parameters."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_run import TINY_WORLD, build_tiny, tiny_align_args

from agents.align.actor import GeneratorActor
from agents.align.grpo import AlignArgs, align
from agents.align.loop import make_optimizer
from agents.align.objective import ecpo_surrogate, exact_kl, group_advantages
from agents.align.pool import RequestPool, make_behaviour, sample_slots
from liveenv.env import LiveStreamEnv
from liveenv.presets import make_config
from policies.onelive import OneLiveConfig, OneLiveGenerator
from policies.onelive.checkpoint import load_checkpoint
from policies.onelive.decoding import collision_log_share
from policies.onelive.policy import GeneratorPolicy


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return build_tiny(tmp_path_factory.getbasetemp() / "align-tiny")


def _obs(n: int = 12, seed: int = 5) -> dict[str, np.ndarray]:
    env = LiveStreamEnv(make_config("default", **TINY_WORLD, horizon_hours=2.0))
    obs, _ = env.reset(seed=seed)
    rows, rng = [obs], np.random.default_rng(seed)
    for _ in range(n - 1):
        obs, *_ = env.step(int(rng.integers(int(obs["room_mask"].sum()))))
        rows.append(obs)
    return {k: np.stack([o[k] for o in rows]) for k in rows[0]}


# ----- the math ------------------------------------------------------------------------
def test_group_advantages_normalise_clamp_and_skip_degenerate_groups() -> None:
    reward = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 0.0, 100.0]])
    adv, valid = group_advantages(reward, min_std=1e-6, clip=1.5)
    assert valid.tolist() == [True, False, True]
    torch.testing.assert_close(adv[0].mean(), torch.tensor(0.0))
    assert torch.all(adv[1] == 0)  # all equal rewards: no signal, no update
    assert adv.abs().max() <= 1.5 and adv[2, 3] == 1.5  # the outlier is clamped


def test_ecpo_ratio_is_one_on_policy_and_early_clipped_off_policy() -> None:
    old = torch.log(torch.tensor([[0.2, 0.3]]))
    adv = torch.tensor([[1.0, -1.0]])
    valid = torch.tensor([True])
    loss, frac = ecpo_surrogate(old.clone(), old, adv, valid, eps=0.2, delta=0.1)
    assert float(loss) == pytest.approx(0.0) and float(frac) == 0.0  # -mean(A) = 0
    # pi far above pi_old with a negative advantage: plain PPO's ratio is 5 (unbounded
    # gradient), ECPO's is pi / (sg(pi) / 1.3) = 1.3
    new = torch.log(torch.tensor([[0.2, 1.5]])).requires_grad_(True)
    l_ecpo, _ = ecpo_surrogate(new, old, adv, valid, 0.2, 0.1, early=True)
    l_ppo, _ = ecpo_surrogate(new, old, adv, valid, 0.2, 0.1, early=False)
    assert l_ecpo.item() == pytest.approx(-(1.0 - 1.3) / 2, rel=1e-5)
    assert l_ppo.item() == pytest.approx(-(1.0 - 5.0) / 2, rel=1e-5)
    (g,) = torch.autograd.grad(l_ecpo, new)
    assert torch.isfinite(g).all() and abs(float(g[0, 1])) == pytest.approx(1.3 / 2, rel=1e-5)


def test_exact_kl_is_zero_for_equal_policies_and_positive_otherwise() -> None:
    p = torch.log_softmax(torch.tensor([[0.0, 1.0, 2.0, float("-inf")]]), -1)
    q = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.0, float("-inf")]]), -1)
    assert float(exact_kl(p, p)) == pytest.approx(0.0, abs=1e-7)
    expected = float((p.exp()[0, :3] * (p[0, :3] - q[0, :3])).sum())
    assert float(exact_kl(p, q)) == pytest.approx(expected) and expected > 0


def test_sampling_without_replacement_is_seeded_and_never_picks_dead_slots() -> None:
    logp = torch.log_softmax(torch.tensor([[0.0, 1.0, 2.0, -1.0, 0.5] + [0.0] * 3]), -1)
    logp[:, 5:] = float("-inf")
    a = sample_slots(logp.expand(200, -1), 4, torch.Generator().manual_seed(0))
    b = sample_slots(logp.expand(200, -1), 4, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert (a < 5).all() and all(len(set(r.tolist())) == 4 for r in a)
    few = sample_slots(logp.expand(3, -1), 7, torch.Generator().manual_seed(1))
    assert (few < 5).all()  # fewer live slots than the group: draws repeat, never dead slots


# ----- the actor ------------------------------------------------------------------------
def test_actor_matches_the_generator_policy_and_is_a_distribution(tiny) -> None:
    actor = GeneratorActor.from_checkpoint(tiny.generator)
    policy = GeneratorPolicy.from_files(tiny.generator)
    obs = _obs()
    mine = actor.slot_log_probs(actor.encode(obs))
    theirs = policy.log_probs_of_slots(obs, split_collisions=True)
    live = torch.from_numpy(obs["room_mask"].astype(bool))
    torch.testing.assert_close(mine[live], theirs[live].float(), atol=1e-5, rtol=1e-5)
    assert torch.isneginf(mine[~live]).all()
    torch.testing.assert_close(mine.exp().sum(-1), torch.ones(len(mine)), atol=1e-5, rtol=0)
    sids = torch.tensor([[[1, 2], [1, 2], [3, 4], [0, 0]]])
    counts = (-collision_log_share(sids, torch.tensor([[True, True, True, False]]))).exp()
    assert counts.tolist() == [[2.0, 2.0, 1.0, 1.0]]


def test_the_greedy_behaviour_serves_the_actors_most_likely_room(tiny) -> None:
    """``behaviour=greedy`` collects the states the served (greedy) policy meets: each
    step takes the slot of highest probability, whatever the seed; ``policy`` samples."""
    actor = GeneratorActor.from_checkpoint(tiny.generator)
    env = LiveStreamEnv(make_config("default", **TINY_WORLD))
    obs, _ = env.reset(seed=3)
    picks, samples = [], []
    for step in range(12):
        best = int(actor.slot_log_probs(actor.encode(obs))[0].argmax())
        picks.append([make_behaviour("greedy", actor, s, 1.0)(obs, env) for s in (0, 1)])
        samples.append(make_behaviour("policy", actor, step, 1.0)(obs, env))
        assert picks[-1] == [best, best]
        obs, *_ = env.step(best)
    assert any(s != p[0] for s, p in zip(samples, picks, strict=True))  # sampling differs


# ----- runs -----------------------------------------------------------------------------
def test_bad_arguments_are_refused_with_the_field_name() -> None:
    with pytest.raises(ValueError, match=r"AlignArgs\.method"):
        AlignArgs(generator="g", reward_model="r", method="ppo")
    with pytest.raises(ValueError, match="group_size"):
        AlignArgs(generator="g", reward_model="r", group_size=1)
    with pytest.raises(ValueError, match="reward_model is required"):
        AlignArgs(generator="g")
    with pytest.raises(ValueError, match="unknown objective"):
        AlignArgs(generator="g", reward_model="r", weights="gifts=1")
    with pytest.raises(ValueError, match=r"AlignArgs\.prior_lr_scale=0\.0"):
        AlignArgs(generator="g", reward_model="r", prior_lr_scale=0.0)


def test_the_room_prior_gets_its_own_learning_rate() -> None:
    """``prior_lr_scale`` sets the room prior's learning rate; every other weight keeps
    ``lr``, each parameter in exactly one group; a model without a prior has one group."""
    args = AlignArgs(generator="g", reward_model="r", lr=2e-4, prior_lr_scale=30.0)
    model = OneLiveGenerator(
        OneLiveConfig(room_prior=True, room_embed_dim=4, d_model=16, n_head=2, n_layer=1)
    )
    groups = make_optimizer(GeneratorActor(model, None), args).param_groups  # type: ignore[arg-type]
    assert [g["lr"] for g in groups] == [2e-4, pytest.approx(6e-3)]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.room_prior.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    plain = OneLiveGenerator(OneLiveConfig(d_model=16, n_head=2, n_layer=1))
    assert len(make_optimizer(GeneratorActor(plain, None), args).param_groups) == 1  # type: ignore[arg-type]


def test_alignment_raises_the_expected_reward_of_the_policy(tiny, tmp_path: Path) -> None:
    """Online GRPO/ECPO (the env's expected response as reward) on the tiny world:
    the policy's true expected return on held-out requests rises, the KL stays finite."""
    args = tiny_align_args(
        tiny,
        tmp_path / "run",
        reward_source="env",
        iterations=20,
        lr=3e-3,
        pool_requests=384,
        eval_requests=128,
        log_every=5,
        checkpoint_every=10,
        seed=1,
    )
    path = align(args)
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    first, last = curves.iloc[0], curves.iloc[-1]
    assert last["env_return"] > 1.2 * first["env_return"]  # seeded; observed 1.3x
    assert 0 < last["kl_ref"] < 5 and first["kl_ref"] == pytest.approx(0, abs=1e-6)
    for col in ("reward", "clip_frac", "entropy", "env_gift", "model_return", "skipped"):
        assert col in curves
    _, extra, _ = load_checkpoint(path)
    assert extra["tokenizer"] == str(tiny.tokenizer)  # loadable by GeneratorPolicy
    GeneratorPolicy.from_files(path).act(_obs(2))


def test_interrupted_run_resumes_to_identical_parameters(tiny, tmp_path: Path) -> None:
    common = dict(
        iterations=6, checkpoint_every=2, log_every=2, refresh_every=3, refresh_requests=32, seed=3
    )
    full = align(tiny_align_args(tiny, tmp_path / "full", **common))
    align(tiny_align_args(tiny, tmp_path / "cut", stop_at=4, **common))
    assert not (tmp_path / "cut" / "model.pt").exists()
    resumed = align(tiny_align_args(tiny, tmp_path / "cut", resume=True, **common))
    assert full.name == "best.pt" and resumed.name == "best.pt"
    for name in ("model.pt", "best.pt"):
        a = load_checkpoint(tmp_path / "full" / name)[0].state_dict()
        b = load_checkpoint(tmp_path / "cut" / name)[0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    ca = pd.read_csv(tmp_path / "full" / "curves.csv").drop(columns="wall_s")
    cb = pd.read_csv(tmp_path / "cut" / "curves.csv").drop(columns="wall_s")
    pd.testing.assert_frame_equal(ca, cb)
    with pytest.raises(ValueError, match="other arguments than the checkpoint"):
        align(tiny_align_args(tiny, tmp_path / "cut", resume=True, **{**common, "lr": 0.5}))
    pool = RequestPool.load(next((tmp_path / "cut").glob("pool-*.npz")))
    assert len(pool) == 128 and math.isfinite(float(pool.env_feedback.sum()))
