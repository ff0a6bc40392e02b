"""GeneratorPolicy: constrained choices, collisions, sampling propensities, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from agents.evaluate.online import evaluate
from liveenv import LiveStreamEnv, make_config
from policies.base import Policy
from policies.baselines import PopularPolicy
from policies.onelive import OneLiveConfig, OneLiveGenerator, save_checkpoint, score_all_live
from policies.onelive.features import N_FEEDBACK_TYPES, TIME_DIM
from policies.onelive.hybrid_sids import HybridTokenizer, load_tokenizer
from policies.onelive.policy import GeneratorPolicy
from policies.tokenizer import ResidualKMeans, SIDTokenizer, SIDTokenizerConfig
from policies.tokenizer.tower import TwoTower

torch.set_num_threads(1)  # tiny models: threads only contend on a shared CPU
TINY = {
    "users.n_users": 3000,
    "streamers.n_streamers": 300,
    "start_hour": 20.0,
    "max_rooms": 64,
    "horizon_hours": 2.0,
}
VOCAB = (4, 3, 3)  # small on purpose: collisions happen among ~60 live rooms


def make_tokenizer(seed: int = 0, mode: str = "dynamic") -> SIDTokenizer:
    """A valid tokenizer without fitting: an untrained tower and random unit codebooks."""
    cfg = SIDTokenizerConfig(mode=mode, codebook_sizes=VOCAB, embed_dim=8, hidden_dim=16, seed=seed)
    tower = TwoTower(cfg.tower_config(16, 20), generator=torch.Generator().manual_seed(seed))
    rng = np.random.default_rng(seed)
    books = [rng.normal(size=(k, 8)) / (1 + lvl) for lvl, k in enumerate(VOCAB)]
    return SIDTokenizer(cfg, tower, ResidualKMeans.from_codebooks(books, cfg.quantiser_config()))


def make_policy(**kwargs: object) -> GeneratorPolicy:
    torch.manual_seed(0)
    cfg = OneLiveConfig(
        vocab_sizes=VOCAB,
        user_dim=20,
        time_dim=TIME_DIM,
        n_feedback_types=N_FEEDBACK_TYPES,
        max_history=20,
        d_model=16,
        n_head=2,
        n_layer=1,
    )
    model = OneLiveGenerator(cfg)
    with torch.no_grad():  # a sharper than initial distribution, so choices are decisive
        for head in model.heads:
            head.weight.mul_(50.0)
    return GeneratorPolicy.from_parts(model, make_tokenizer(), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def observations() -> list[dict[str, np.ndarray]]:
    """Observations of a tiny world after some requests (users with history)."""
    env = LiveStreamEnv(make_config("default", **TINY))
    obs, _ = env.reset(seed=1)
    rng, seen = np.random.default_rng(0), []
    for _ in range(300):
        live = np.flatnonzero(obs["room_mask"])
        obs, *_ = env.step(int(rng.choice(live)))
        seen.append(obs)
    return seen[-40:]


def batch_of(seen: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([o[k] for o in seen]) for k in seen[0]}


def test_greedy_choice_is_the_most_likely_live_sid(observations: list) -> None:
    """With beams over every live SID, the chosen room carries the SID of highest
    constrained probability (brute-force reference), most viewers among collisions."""
    policy = make_policy(beam_size=64)
    obs = batch_of(observations[-16:])
    slots = policy.act(obs).slots
    assert slots.shape == (16,)
    gb, live, mask, _ = policy.prepare(obs)
    ref = score_all_live(policy.model, gb, live, mask)  # (B, R)
    viewers = obs["rooms"][..., 32]
    n_collide = 0
    for b, slot in enumerate(slots):
        assert mask[b, slot]
        assert ref[b, slot] == pytest.approx(float(ref[b].max()), abs=1e-5)
        same = np.flatnonzero((live[b] == live[b, slot]).all(-1).numpy() & mask[b].numpy())
        n_collide += len(same) > 1
        assert viewers[b, slot] == viewers[b, same].max()  # tie rule: most live viewers
    assert n_collide > 0  # the collision rule was exercised
    lp = policy.log_probs_of_slots(obs)
    torch.testing.assert_close(lp, ref.masked_fill(~mask, float("-inf")), atol=1e-4, rtol=0)


def test_slates_are_distinct_live_rooms_and_batched_equals_single(observations: list) -> None:
    policy = make_policy(beam_size=8, slate_size=5)
    out = policy.act(batch_of(observations))
    assert out.slots.shape == (len(observations), 5) and out.propensities is None
    for obs, row in zip(observations, out.slots, strict=True):
        assert len(set(row.tolist())) == 5 and obs["room_mask"][row].all()
        np.testing.assert_array_equal(policy.act(obs).slots[0], row)


def test_sampling_propensities_are_exact_and_seeded(observations: list) -> None:
    obs = observations[-1]
    policy = make_policy(temperature=1.0, slate_size=2, seed=3)
    lp = policy.log_probs_of_slots(obs, split_collisions=True)[0].detach().double()
    q = torch.softmax(lp, 0).numpy()
    assert q.sum() == pytest.approx(1.0, abs=1e-5) and np.all(q[obs["room_mask"] == 0] == 0)
    n = 1200  # one batch of the same request n times: n independent draws
    draws = policy.act({k: np.repeat(v[None], n, axis=0) for k, v in obs.items()})
    a, b = draws.slots[:, 0], draws.slots[:, 1]
    assert np.all(a != b) and obs["room_mask"][draws.slots].all()
    # propensity of each position given the slots above it
    np.testing.assert_allclose(draws.propensities[:, 0], q[a], rtol=1e-5)
    np.testing.assert_allclose(draws.propensities[:, 1], q[b] / (1 - q[a]), rtol=1e-5)
    top = int(np.argmax(q))
    freq = np.mean(a == top)
    assert abs(freq - q[top]) < 4 * np.sqrt(q[top] * (1 - q[top]) / n) + 1e-3
    again = make_policy(temperature=1.0, slate_size=2, seed=3)
    first = again.act({k: np.repeat(v[None], n, axis=0) for k, v in obs.items()})
    np.testing.assert_array_equal(first.slots, draws.slots)  # the seed reproduces


def test_log_probs_are_masked_normalised_and_differentiable(observations: list) -> None:
    policy = make_policy()
    obs = batch_of(observations[:4])
    lp = policy.log_probs_of_slots(obs)
    mask = torch.as_tensor(obs["room_mask"]).bool()
    assert lp.shape == (4, 64) and torch.isinf(lp[~mask]).all() and torch.isfinite(lp[mask]).all()
    split = policy.log_probs_of_slots(obs, split_collisions=True)
    torch.testing.assert_close(torch.logsumexp(split, 1), torch.zeros(4), atol=1e-5, rtol=0)
    split[mask].sum().backward()
    assert policy.model.heads[0].weight.grad is not None


def test_save_load_round_trip(observations: list, tmp_path: Path) -> None:
    policy = make_policy(beam_size=16, slate_size=3)
    path = policy.save(tmp_path / "onelive.npz")
    loaded = Policy.load(path)
    assert isinstance(loaded, GeneratorPolicy) and loaded.beam_size == 16
    obs = batch_of(observations)
    np.testing.assert_array_equal(loaded.act(obs).slots, policy.act(obs).slots)
    torch.testing.assert_close(loaded.log_probs_of_slots(obs), policy.log_probs_of_slots(obs))
    tok_path = tmp_path / "tok.pt"
    policy.tokenizer.save(tok_path)
    save_checkpoint(tmp_path / "gen.pt", policy.model, extra={"tokenizer": str(tok_path)})
    from_files = GeneratorPolicy.from_files(tmp_path / "gen.pt", beam_size=16, slate_size=3)
    np.testing.assert_array_equal(from_files.act(obs).slots, policy.act(obs).slots)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="beam_size"):
        GeneratorPolicy(beam_size=2, slate_size=3)
    with pytest.raises(ValueError, match="temperature"):
        GeneratorPolicy(temperature=-1.0)
    with pytest.raises(RuntimeError, match="no model"):
        GeneratorPolicy().act({"room_mask": np.ones(3)})


def test_plugs_into_the_evaluation_harness() -> None:
    """The harness plays it like any baseline; every chosen room was live (else the env,
    with masked_action="raise", would have raised) and clicks happen."""
    result = evaluate(
        {"onelive": make_policy()},
        "default",
        seeds=(0,),
        steps_per_seed=60,
        overrides=TINY,
        progress=False,
    )
    row = result.overall().set_index("policy").loc["onelive"]
    assert row["n_impressions"] == 60 and row["click_mean"] > 0


def test_parallel_evaluation_equals_one_process() -> None:
    """workers=2 pickles the generator (and the privileged oracle) to spawned processes;
    every table, and every impression, equals the one-process run's."""
    kwargs = dict(seeds=(0, 1), steps_per_seed=40, overrides=TINY, progress=False, expected=True)
    one = evaluate({"onelive": make_policy(), "popular": PopularPolicy()}, **kwargs)
    two = evaluate({"onelive": make_policy(), "popular": PopularPolicy()}, workers=2, **kwargs)
    pd.testing.assert_frame_equal(one.table, two.table)
    pd.testing.assert_frame_equal(one.impressions, two.impressions)
    assert set(one.table["policy"]) == {"onelive", "popular", "random", "oracle"}


def test_ranking_scores_order_slots_as_greedy_decoding(observations: list) -> None:
    """Offline scores rank the live slots as act() serves them: the top slot of the
    ranking is the greedy choice, slates follow the ranking, empty slots are -inf."""
    obs = batch_of(observations[-8:])
    scores = make_policy().scores(obs)
    live = obs["room_mask"].astype(bool)
    assert np.all(np.isneginf(scores[~live])) and np.all(np.isfinite(scores[live]))
    slate = make_policy(beam_size=64, slate_size=4).act(obs).slots
    np.testing.assert_array_equal(np.argsort(-scores, axis=1, kind="stable")[:, :4], slate)


def test_popularity_prior_reranks_the_generated_rooms(observations: list) -> None:
    """w = 0 is the pure generator; a large w serves the most viewed live rooms first."""
    obs = batch_of(observations[-8:])
    viewers = obs["rooms"][..., 32]
    pure = make_policy(beam_size=64, slate_size=3)
    heavy = make_policy(beam_size=64, slate_size=3, popularity_weight=1e6)
    assert not np.array_equal(pure.act(obs).slots, heavy.act(obs).slots)
    live_max = np.where(obs["room_mask"] > 0, viewers, -np.inf).max(1)
    np.testing.assert_allclose(viewers[np.arange(8), heavy.act(obs).slots[:, 0]], live_max)
    order = np.argsort(-heavy.scores(obs), axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(order, heavy.act(obs).slots)
    with pytest.raises(ValueError, match="popularity_weight"):
        GeneratorPolicy(popularity_weight=float("nan"))


def test_hybrid_sids_concatenate_static_prefix_and_dynamic_content(
    observations: list, tmp_path: Path
) -> None:
    static, dynamic = make_tokenizer(1, "static"), make_tokenizer(2, "dynamic")
    hybrid = HybridTokenizer(static, dynamic, static_levels=2, dynamic_levels=1)
    assert hybrid.vocab_sizes == VOCAB[:2] + VOCAB[:1] and hybrid.n_levels == 3
    obs = batch_of(observations[-4:])
    rooms = obs["rooms"][obs["room_mask"] > 0]
    streamer = obs["room_streamer"][obs["room_mask"] > 0]
    codes = hybrid.encode(rooms[:, :16], rooms[:, 16:32], streamer)
    np.testing.assert_array_equal(
        codes[:, :2], static.encode(None, rooms[:, 16:32], streamer)[:, :2]
    )
    np.testing.assert_array_equal(
        codes[:, 2], dynamic.encode(rooms[:, :16], rooms[:, 16:32], streamer)[:, 0]
    )
    again = load_tokenizer(hybrid.save(tmp_path / "hybrid.pt"))
    assert isinstance(again, HybridTokenizer)
    np.testing.assert_array_equal(again.encode(rooms[:, :16], rooms[:, 16:32], streamer), codes)
    assert isinstance(load_tokenizer(static.save(tmp_path / "static.pt")), SIDTokenizer)
    torch.manual_seed(0)
    cfg = OneLiveConfig(
        vocab_sizes=hybrid.vocab_sizes,
        user_dim=20,
        time_dim=TIME_DIM,
        n_feedback_types=N_FEEDBACK_TYPES,
        d_model=16,
        n_head=2,
        n_layer=1,
    )
    policy = GeneratorPolicy.from_parts(OneLiveGenerator(cfg), hybrid, beam_size=8)
    loaded = Policy.load(policy.save(tmp_path / "p.npz"))
    np.testing.assert_array_equal(loaded.act(obs).slots, policy.act(obs).slots)
    with pytest.raises(ValueError, match="static and a dynamic"):
        HybridTokenizer(dynamic, static)
