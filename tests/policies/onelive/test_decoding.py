"""Tests of constrained beam search, sampling and the reference scorers."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from policies.onelive import (
    GeneratorBatch,
    OneLiveConfig,
    OneLiveGenerator,
    allowed_next_tokens,
    beam_search,
    score_all_live,
    sequence_log_prob,
)
from policies.onelive.decoding import collision_log_share, live_log_prior
from policies.onelive.features import ROOM_AFFINITY_COLUMNS, ROOM_PRIOR_COLUMNS

MODES = [pytest.param(True, id="mtp"), pytest.param(False, id="ar")]
N_STATS = len(ROOM_PRIOR_COLUMNS)


def setup(mtp: bool, B: int = 3, N: int = 10, seed: int = 0, unique: bool = True):
    """Tiny model, a random batch, and a live table (B, N, 3) with ~20% masked entries."""
    torch.manual_seed(seed)
    cfg = OneLiveConfig(
        vocab_sizes=(4, 3, 3),
        user_dim=3,
        time_dim=2,
        max_history=6,
        d_model=16,
        n_head=2,
        n_layer=2,
        use_mtp=mtp,
    )
    model = OneLiveGenerator(cfg)
    with torch.no_grad():  # sharper distributions than at init
        for head in model.heads:
            head.weight.mul_(50.0)
    g = torch.Generator().manual_seed(seed)
    batch = GeneratorBatch.random(cfg, B, 5, generator=g)
    if unique:
        code = torch.stack([torch.randperm(36, generator=g)[:N] for _ in range(B)])  # (B, N)
    else:
        code = torch.randint(0, 6, (B, N), generator=g)  # many duplicates, shared prefixes
    live = torch.stack([code // 9, (code // 3) % 3, code % 3], -1)  # (B, N, 3)
    mask = torch.rand(B, N, generator=g) < 0.8
    mask[:, 0] = True
    return model, batch, live, mask


def _trie_allowed(prefix: list[int], live: list[list[int]], vocab: int) -> list[bool]:
    """Plain reference: walk a python dict trie."""
    trie: dict = {}
    for sid in live:
        node = trie
        for t in sid:
            node = node.setdefault(t, {})
    node = trie
    for t in prefix:
        node = node.get(t, {})
    return [t in node for t in range(vocab)]


def test_allowed_next_tokens_matches_a_trie() -> None:
    _, _, live, mask = setup(True, B=2, N=8, unique=False)
    for lvl in range(3):
        prefix = live[:, :, :lvl]  # beams = the live SIDs' own prefixes, plus a dead one
        prefix = torch.cat([prefix, torch.full((2, 1, lvl), 2)], 1)
        got = allowed_next_tokens(prefix, live, mask, 4)
        for b in range(2):
            real = [s for s, m in zip(live[b].tolist(), mask[b].tolist(), strict=True) if m]
            for k in range(prefix.shape[1]):
                assert got[b, k].tolist() == _trie_allowed(prefix[b, k].tolist(), real, 4)


@pytest.mark.parametrize("mtp", MODES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_equals_brute_force(mtp: bool, seed: int) -> None:
    model, batch, live, mask = setup(mtp, seed=seed)
    ref = score_all_live(model, batch, live, mask)  # (B, N)
    res = beam_search(model, batch, live, mask, beam_size=10, top_k=6)
    best, idx = ref.topk(6, dim=1)
    n_live = mask.sum(1, keepdim=True)
    valid = torch.arange(6)[None] < n_live  # fewer live rooms than top_k in some rows
    torch.testing.assert_close(res.scores[valid], best[valid], atol=1e-4, rtol=1e-4)
    assert torch.equal(res.index[valid], idx[valid])
    assert torch.equal(res.sids[valid], live.gather(1, idx[..., None].expand(-1, -1, 3))[valid])
    assert (res.index[~valid] == -1).all() and (res.sids[~valid] == -1).all()
    assert torch.isneginf(res.scores[~valid]).all()
    # all N live SIDs together carry the whole constrained probability mass
    torch.testing.assert_close(ref.exp().sum(1), torch.ones(3), atol=1e-4, rtol=0)


@pytest.mark.parametrize("mtp", MODES)
def test_sequence_log_prob_matches_reference_and_has_gradients(mtp: bool) -> None:
    model, batch, live, mask = setup(mtp, unique=False)
    model.train()  # dropout is 0; mode must be left alone
    ref = score_all_live(model, batch, live, mask)
    assert model.training
    sids = torch.cat([live, torch.full((3, 1, 3), -1)], 1)  # plus an invalid SID
    lp = sequence_log_prob(model, batch, sids, live, mask)  # (B, N + 1)
    torch.testing.assert_close(lp[:, :-1][mask], ref[mask], atol=1e-4, rtol=1e-4)
    assert torch.isneginf(lp[:, -1]).all()
    lp[:, :-1][mask].sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("mtp", MODES)
@pytest.mark.parametrize("sample", [False, True])
def test_results_are_always_live(mtp: bool, sample: bool) -> None:
    model, batch, live, mask = setup(mtp, N=12, unique=False)
    res = beam_search(model, batch, live, mask, beam_size=2, top_k=3, sample=sample)
    for b in range(3):
        real = {tuple(s) for s, m in zip(live[b].tolist(), mask[b].tolist(), strict=True) if m}
        rows = zip(res.sids[b].tolist(), res.index[b].tolist(), res.scores[b].tolist(), strict=True)
        for sid, i, s in rows:
            if i >= 0:
                assert tuple(sid) in real and s > float("-inf")
                assert mask[b, i] and live[b, i].tolist() == sid
            else:
                assert sid == [-1, -1, -1] and s == float("-inf")
    assert (res.index[:, :2] >= 0).all()  # at least two distinct live SIDs in every row


def test_no_live_rooms_gives_empty_results() -> None:
    model, batch, live, mask = setup(True)
    res = beam_search(model, batch, live, torch.zeros_like(mask), beam_size=4, top_k=2)
    assert (res.index == -1).all() and (res.sids == -1).all() and torch.isneginf(res.scores).all()


def test_bad_live_table_is_rejected() -> None:
    model, batch, live, mask = setup(True)
    with pytest.raises(ValueError, match="outside"):
        beam_search(model, batch, live + 5, mask, beam_size=4, top_k=2)
    with pytest.raises(ValueError, match="live_sids"):
        beam_search(model, batch, live[..., :2], mask, beam_size=4, top_k=2)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, batch, live, mask, beam_size=0, top_k=2)


@pytest.mark.parametrize("mtp", MODES)
def test_sampling_is_reproducible(mtp: bool) -> None:
    model, batch, live, mask = setup(mtp, N=12)
    model.train()
    kw = dict(beam_size=3, top_k=3, sample=True, temperature=2.0)

    def draw(seed: int):
        return beam_search(
            model, batch, live, mask, generator=torch.Generator().manual_seed(seed), **kw
        )

    a, b = draw(7), draw(7)
    assert torch.equal(a.sids, b.sids) and torch.equal(a.scores, b.scores)
    assert model.training  # mode restored
    torch.manual_seed(3)
    c = beam_search(model, batch, live, mask, **kw)
    torch.manual_seed(3)
    assert torch.equal(c.sids, beam_search(model, batch, live, mask, **kw).sids)
    assert any(not torch.equal(a.sids, draw(s).sids) for s in range(8, 20))


@pytest.mark.parametrize("mtp", MODES)
def test_low_temperature_sampling_is_greedy(mtp: bool) -> None:
    model, batch, live, mask = setup(mtp)
    greedy = beam_search(model, batch, live, mask, beam_size=1, top_k=1)
    cold = beam_search(
        model, batch, live, mask, beam_size=1, top_k=1, sample=True, temperature=1e-3
    )
    assert torch.equal(greedy.sids, cold.sids)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_sampling_follows_the_constrained_distribution(beam_size: int) -> None:
    """The first beam of stochastic beam search is a draw from p (any beam size)."""
    model, batch, live, mask = setup(True, B=1, N=6)
    model.eval()
    mask[:] = True
    with torch.no_grad():
        for head in model.heads:
            head.weight.mul_(0.02)  # back to flatter distributions
    p = score_all_live(model, batch, live, mask)[0].exp()  # (N,)
    R = 4000
    big = batch.repeat_interleave(R)
    res = beam_search(
        model,
        big,
        live.expand(R, -1, -1),
        mask.expand(R, -1),
        beam_size=beam_size,
        top_k=1,
        sample=True,
        generator=torch.Generator().manual_seed(0),
    )
    freq = torch.bincount(res.index[:, 0], minlength=6).float() / R
    torch.testing.assert_close(freq, p, atol=0.03, rtol=0)


# ----- live prior (OneLiveConfig.live_prior_weight) ----------------------------------
def setup_prior(mtp: bool, w: float = 1.5, seed: int = 0, unique: bool = False):
    """``setup`` with a live prior of weight ``w`` and random room statistics (B, N, S)
    whose first column (log_viewers) is in [0, 4)."""
    model, batch, live, mask = setup(mtp, seed=seed, unique=unique)
    model.config = replace(model.config, live_prior_weight=w)
    stats = torch.rand((*mask.shape, N_STATS), generator=torch.Generator().manual_seed(seed + 7))
    return model, batch, live, mask, stats * 4


def with_room_prior(model: OneLiveGenerator, seed: int = 0) -> OneLiveGenerator:
    """A copy of ``model`` with a room prior of random (non-zero) weights."""
    cfg = replace(model.config, room_prior=True)
    out = OneLiveGenerator(cfg)
    out.load_state_dict(model.state_dict(), strict=False)
    g = torch.Generator().manual_seed(seed + 11)
    with torch.no_grad():
        for p in out.room_prior.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return out


def _room_probs(model, batch, live, mask, stats) -> torch.Tensor:
    """(B, N) room-level probabilities: q(SID) times the room's share of its SID."""
    logp = sequence_log_prob(model, batch, live, live, mask, stats)
    share = collision_log_share(live, mask, live_log_prior(model, batch, stats, mask))
    return (logp + share).masked_fill(~mask, float("-inf")).exp()


@pytest.mark.parametrize("mtp", MODES)
def test_a_generator_without_an_opinion_serves_rooms_by_the_live_prior(mtp: bool) -> None:
    """Zero heads (uniform logits): the tilted hierarchy gives each live room exactly
    exp(w * viewers) / sum, whatever the SID tree (collisions and shared prefixes)."""
    model, batch, live, mask, viewers = setup_prior(mtp, unique=False)
    with torch.no_grad():
        for head in model.heads:
            head.weight.zero_()
    got = _room_probs(model, batch, live, mask, viewers)
    prior = torch.softmax((1.5 * viewers[..., 0]).masked_fill(~mask, float("-inf")), -1)
    torch.testing.assert_close(got, prior, atol=1e-5, rtol=1e-5)
    rich = with_room_prior(model)  # the same holds for the personalised room score
    with torch.no_grad():
        room = rich.room_prior(batch, viewers.masked_fill(~mask[..., None], 0.0))
    assert float(room[mask].std()) > 0.1
    prior = torch.softmax((1.5 * viewers[..., 0] + room).masked_fill(~mask, float("-inf")), -1)
    torch.testing.assert_close(
        _room_probs(rich, batch, live, mask, viewers), prior, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("mtp", MODES)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("room", [False, True], ids=["viewers", "room_prior"])
def test_live_prior_decoding_equals_brute_force_and_sums_to_one(
    mtp: bool, seed: int, room: bool
) -> None:
    model, batch, live, mask, viewers = setup_prior(mtp, seed=seed, unique=True)
    if room:
        model = with_room_prior(model, seed)
    ref = score_all_live(model, batch, live, mask, viewers)  # (B, N)
    res = beam_search(model, batch, live, mask, beam_size=10, top_k=5, live_stats=viewers)
    torch.testing.assert_close(res.scores, ref.topk(5, dim=1).values, atol=1e-4, rtol=1e-4)
    seq = sequence_log_prob(model, batch, live, live, mask, viewers)
    torch.testing.assert_close(seq[mask], ref[mask], atol=1e-4, rtol=1e-4)
    plain_model = OneLiveGenerator(replace(model.config, live_prior_weight=0.0, room_prior=False))
    plain_model.load_state_dict(model.state_dict(), strict=False)
    plain = score_all_live(plain_model, batch, live, mask)
    assert not torch.allclose(ref[mask], plain[mask], atol=1e-3)  # the prior moves the scores
    dup_model, *dup = setup_prior(mtp, seed=seed, unique=False)
    if room:
        dup_model = with_room_prior(dup_model, seed)
    torch.testing.assert_close(
        _room_probs(dup_model, *dup).sum(-1), torch.ones(3), atol=1e-5, rtol=0
    )


def test_a_live_prior_model_needs_viewers_and_a_valid_weight() -> None:
    model, batch, live, mask, viewers = setup_prior(True)
    with pytest.raises(ValueError, match=r"live_prior_weight=1\.5, room_prior=False: pass live_"):
        beam_search(model, batch, live, mask, beam_size=4, top_k=2)
    with pytest.raises(ValueError, match="live_stats has shape"):
        sequence_log_prob(model, batch, live, live, mask, viewers[:, :3])
    with pytest.raises(ValueError, match="live_stats has shape"):
        sequence_log_prob(model, batch, live, live, mask, viewers[..., 0])  # viewers alone
    for bad in (-0.5, float("nan"), True):
        with pytest.raises(ValueError, match=r"OneLiveConfig\.live_prior_weight"):
            OneLiveConfig(live_prior_weight=bad)
    assert (
        OneLiveConfig.from_dict(
            {k: v for k, v in OneLiveConfig().to_dict().items() if k != "live_prior_weight"}
        ).live_prior_weight
        == 0.0
    )  # checkpoints from before the field load without a prior


def test_the_room_prior_learns_through_the_constrained_likelihood() -> None:
    """The room prior is part of the policy: the SID likelihood's gradient reaches it, a
    room-prior model needs the statistics even without a viewers weight, and checkpoints
    from before the field load without one."""
    model, batch, live, mask, stats = setup_prior(True, w=0.0)
    rich = with_room_prior(model)
    sequence_log_prob(rich, batch, live, live, mask, stats)[mask].sum().backward()
    grad = rich.room_prior.weights.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    fresh = OneLiveGenerator(replace(model.config, room_prior=True))
    assert not fresh.room_prior.weights.weight.detach().any()  # starts at zero
    with pytest.raises(ValueError, match=r"room_prior=True: pass live_stats"):
        beam_search(fresh, batch, live, mask, beam_size=4, top_k=2)
    with pytest.raises(ValueError, match=r"OneLiveConfig\.room_prior"):
        OneLiveConfig(room_prior=1)
    old = {k: v for k, v in OneLiveConfig().to_dict().items() if k != "room_prior"}
    assert OneLiveConfig.from_dict(old).room_prior is False


def test_the_streamer_affinity_is_read_only_by_a_room_affinity_model() -> None:
    """Without ``room_affinity`` the room prior reads the first seven columns (as every
    checkpoint from before the field did); with it, also the user's history with the
    room's streamer. It needs a room prior."""
    model, batch, _, mask, stats = setup_prior(True, w=0.0)
    affinity = [ROOM_PRIOR_COLUMNS.index(c) for c in ROOM_AFFINITY_COLUMNS]
    moved = stats.clone()
    moved[..., affinity] += (
        torch.rand((*mask.shape, len(affinity)), generator=torch.Generator().manual_seed(5)) * 3
    )
    plain = with_room_prior(model)
    assert plain.room_prior.weights.out_features == len(ROOM_PRIOR_COLUMNS) - len(affinity)
    with torch.no_grad():
        torch.testing.assert_close(plain.room_prior(batch, moved), plain.room_prior(batch, stats))
    rich = with_room_prior(
        OneLiveGenerator(replace(model.config, room_prior=True, room_affinity=True))
    )
    assert rich.room_prior.weights.out_features == len(ROOM_PRIOR_COLUMNS)
    with torch.no_grad():
        diff = rich.room_prior(batch, moved) - rich.room_prior(batch, stats)
    assert float(diff[mask].abs().min()) > 0
    with pytest.raises(ValueError, match=r"OneLiveConfig\.room_affinity=True .*room_prior=True"):
        OneLiveConfig(room_affinity=True)
    old = {
        k: v for k, v in OneLiveConfig(room_prior=True).to_dict().items() if k != "room_affinity"
    }
    assert OneLiveConfig.from_dict(old).room_affinity is False


def test_the_bilinear_match_scores_taste_against_content() -> None:
    """With ``room_embed_dim`` o the room prior adds ``[taste, last, user] A [content,
    pooled]``: zero at init (the prior is then the statistics' alone), the cosine taste
    match when A is the identity on (taste, content), learnt through the constrained
    likelihood; decoding refuses statistics without the embedding blocks."""
    o = 4
    model, batch, live, mask, stats = setup_prior(True, w=0.0)
    g = torch.Generator().manual_seed(9)
    emb = torch.randn((*mask.shape, 4 * o), generator=g)
    emb[..., 2 * o :] = emb[:, :1, 2 * o :]  # taste and last: one per request
    wide = torch.cat([stats, emb], -1)
    cfg = replace(model.config, room_prior=True, room_embed_dim=o)
    rich = OneLiveGenerator(cfg)
    rich.load_state_dict(model.state_dict(), strict=False)
    plain = OneLiveGenerator(replace(cfg, room_embed_dim=0))
    plain.load_state_dict(rich.state_dict(), strict=False)
    with torch.no_grad():
        rich.room_prior.weights.weight.normal_(generator=g)
        plain.room_prior.weights.weight.copy_(rich.room_prior.weights.weight)
        torch.testing.assert_close(rich.room_prior(batch, wide), plain.room_prior(batch, stats))
        rich.room_prior.match[:o, :o] = torch.eye(o)  # taste . content
        want = (emb[..., 2 * o : 3 * o] * emb[..., :o]).sum(-1)
        got = rich.room_prior(batch, wide) - plain.room_prior(batch, stats)
        torch.testing.assert_close(got, want)
    sequence_log_prob(rich, batch, live, live, mask, wide)[mask].sum().backward()
    assert (
        rich.room_prior.match.grad is not None and float(rich.room_prior.match.grad.abs().sum()) > 0
    )
    with pytest.raises(ValueError, match=r"live_stats has shape .*room_embed_dim=4"):
        sequence_log_prob(rich, batch, live, live, mask, stats)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match=r"OneLiveConfig\.room_embed_dim"):
            OneLiveConfig(room_prior=True, room_embed_dim=bad)
    with pytest.raises(ValueError, match=r"OneLiveConfig\.room_embed_dim=16 .*room_prior=True"):
        OneLiveConfig(room_embed_dim=16)
    old = {k: v for k, v in cfg.to_dict().items() if k != "room_embed_dim"}
    assert OneLiveConfig.from_dict(old).room_embed_dim == 0
