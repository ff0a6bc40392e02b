"""Beam search constrained to the SIDs of live rooms, and reference scorers.

The distribution everything here uses ("constrained p"): at level l the model's
softmax is renormalised over the tokens that extend the current prefix to a prefix
of some live SID, i.e. log p(t | prefix) = log_softmax(logits[allowed])[t], and
-inf for any other token. log p(sid) is the sum over levels. beam_search ranks by
it, `sequence_log_prob` (differentiable, cached path) and `score_all_live`
(brute-force reference, full re-run per SID) compute it.

Allowed tokens come from vectorised prefix matching of the beams against the live
SIDs (B, K, N) -- the batched equivalent of walking a prefix trie.

Duplicate SIDs in the live table (collisions) are one sequence: a beam maps to the
first live entry with its SID; `score_all_live` gives every duplicate that score.

Live prior (``OneLiveConfig.live_prior_weight`` w > 0 and/or ``room_prior``): every
function also takes ``live_stats`` (B, N, S), the rooms' scaled statistics and taste
match (:func:`policies.onelive.features.room_stat_features`; column 0 is ``log_viewers``).
Each live room gets a log prior ``prior_r = w * viewers_r (+ room_prior(user, stats_r))``
and each level's logits get ``+ log sum_{live rooms r under prefix + [t]} exp(prior_r)``
before the constrained softmax, the same in training and decoding. The generator then
models what the room's live statistics do not explain (the user's taste, the content
now). A full SID's rooms share its mass in proportion to ``exp(prior_r)``
(:func:`collision_log_share`). No prior is the plain constrained softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from policies.onelive.config import GeneratorBatch
from policies.onelive.features import ROOM_PRIOR_COLUMNS, prior_width
from policies.onelive.model import OneLiveGenerator, gather_beams

NEG_INF = float("-inf")
_VIEWERS = ROOM_PRIOR_COLUMNS.index("log_viewers")


class BeamResult(NamedTuple):
    sids: Tensor  # (B, top_k, L) long, -1 where fewer results
    scores: Tensor  # (B, top_k) constrained log p(sid), -inf where fewer
    index: Tensor  # (B, top_k) long index into the N live entries, -1 where fewer


def check_live(model: OneLiveGenerator, live_sids: Tensor, live_mask: Tensor) -> None:
    cfg = model.config
    if live_sids.dim() != 3 or live_sids.shape[-1] != cfg.n_levels or live_sids.dtype != torch.long:
        raise ValueError(
            f"live_sids must be a long tensor (B, N, {cfg.n_levels}), got "
            f"{live_sids.dtype} {tuple(live_sids.shape)}"
        )
    if live_mask.shape != live_sids.shape[:2] or live_mask.dtype != torch.bool:
        raise ValueError(
            f"live_mask must be bool {tuple(live_sids.shape[:2])}, got {live_mask.dtype} "
            f"{tuple(live_mask.shape)}"
        )
    vocab = live_sids.new_tensor(cfg.vocab_sizes)  # (L,)
    bad = ((live_sids < 0) | (live_sids >= vocab)).any(-1) & live_mask  # (B, N)
    if bool(bad.any()):
        raise ValueError(
            f"live_sids has tokens outside [0, vocab_sizes={cfg.vocab_sizes}) in unmasked entries"
        )


def _live_children(
    prefix: Tensor, live_sids: Tensor, live_mask: Tensor, vocab: int
) -> tuple[Tensor, Tensor]:
    """prefix (B, K, l) -> (match, nxt), both (B, K, N): whether live entry j starts with
    the beam's prefix, and entry j's next token (the vectorised walk of a prefix trie)."""
    B, K, n = prefix.shape
    N = live_sids.shape[1]
    match = (prefix[:, :, None, :] == live_sids[:, None, :, :n]).all(-1)  # (B, K, N)
    match = match & live_mask[:, None, :]
    nxt = live_sids[:, :, n].clamp(0, vocab - 1)[:, None, :].expand(B, K, N)  # (B, K, N)
    return match, nxt


def _per_token(values: Tensor, nxt: Tensor, vocab: int) -> Tensor:
    """Sum (B, K, N) entry values onto their next tokens -> (B, K, vocab)."""
    out = torch.zeros(*nxt.shape[:2], vocab, device=nxt.device, dtype=values.dtype)
    return out.scatter_add_(2, nxt, values)


def allowed_next_tokens(prefix: Tensor, live_sids: Tensor, live_mask: Tensor, vocab: int) -> Tensor:
    """prefix (B, K, l) -> (B, K, vocab) bool: t is allowed iff prefix + [t] starts a live SID."""
    match, nxt = _live_children(prefix, live_sids, live_mask, vocab)
    return _per_token(match.float(), nxt, vocab) > 0  # (B, K, vocab)


def _token_log_prior(
    match: Tensor, nxt: Tensor, live_mask: Tensor, log_prior: Tensor, vocab: int
) -> Tensor:
    """(B, K, vocab) log of the summed per-entry ``log_prior`` (B, N) of the live entries
    under prefix + [t] (``match``, ``nxt`` of :func:`_live_children`); finite but
    meaningless where no live entry is (masked by the caller)."""
    top = log_prior.masked_fill(~live_mask, NEG_INF).amax(-1).clamp_min(-1e30)  # (B,)
    w = torch.exp(log_prior - top[:, None]).masked_fill(~live_mask, 0.0)  # (B, N) in [0, 1]
    mass = _per_token(match.to(w.dtype) * w[:, None, :], nxt, vocab)  # (B, K, vocab)
    return torch.log(mass.clamp_min(torch.finfo(w.dtype).tiny)) + top[:, None, None]


def live_log_prior(
    model: OneLiveGenerator, batch: GeneratorBatch, live_stats: Tensor | None, live_mask: Tensor
) -> Tensor | None:
    """``(B, N)`` per-entry log prior ``w * viewers (+ room prior)`` of the model's live
    prior, or None when the model has none. Raises when the model needs the rooms'
    statistics and gets none (or the wrong shape)."""
    cfg = model.config
    if not cfg.has_live_prior:
        return None
    if live_stats is None:
        raise ValueError(
            f"the model has live_prior_weight={cfg.live_prior_weight}, room_prior="
            f"{cfg.room_prior}: pass live_stats (B, N, S), the rooms' scaled statistics "
            "(policies.onelive.features.room_stat_features)"
        )
    want = (*live_mask.shape, prior_width(cfg.room_embed_dim))
    if tuple(live_stats.shape) != want:
        raise ValueError(
            f"live_stats has shape {tuple(live_stats.shape)}, expected {want} "
            f"(one row of room statistics per live entry; room_embed_dim={cfg.room_embed_dim})"
        )
    stats = live_stats.float().masked_fill(~live_mask[..., None], 0.0)
    prior = cfg.live_prior_weight * stats[..., _VIEWERS]
    if model.room_prior is not None:
        prior = prior + model.room_prior(batch, stats)
    return prior.masked_fill(~live_mask, 0.0)


def tilted_logits(
    logits: Tensor,
    prefix: Tensor,
    live_sids: Tensor,
    live_mask: Tensor,
    log_prior: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """logits (B, K, V) of the level after ``prefix`` (B, K, l) -> (float logits plus
    the live prior's log mass per token when given, allowed (B, K, V) bool)."""
    V = logits.shape[-1]
    match, nxt = _live_children(prefix, live_sids, live_mask, V)
    allowed = _per_token(match.float(), nxt, V) > 0  # (B, K, V)
    logits = logits.float()
    if log_prior is not None:
        tilt = _token_log_prior(match, nxt, live_mask, log_prior, V)
        logits = logits + tilt.masked_fill(~allowed, 0.0)
    return logits, allowed


def level_log_probs(
    logits: Tensor,
    prefix: Tensor,
    live_sids: Tensor,
    live_mask: Tensor,
    log_prior: Tensor | None = None,
) -> Tensor:
    """logits (B, K, V) of the level after ``prefix`` (B, K, l) -> (B, K, V) constrained
    log-probabilities (tilted by the live prior when given)."""
    return constrained_log_softmax(*tilted_logits(logits, prefix, live_sids, live_mask, log_prior))


def collision_log_share(
    live_sids: Tensor, live_mask: Tensor, log_prior: Tensor | None = None
) -> Tensor:
    """``(B, N)`` log of each live entry's share of its full SID's mass: ``-log(entries
    sharing the SID)`` without a prior, ``log_prior - logsumexp(log_prior of those
    entries)`` with one; 0 on masked entries."""
    same = (live_sids[:, :, None, :] == live_sids[:, None, :, :]).all(-1)  # (B, N, N)
    same = same & live_mask[:, None, :] & live_mask[:, :, None]
    if log_prior is None:
        share = -torch.log(same.sum(-1).clamp_min(1).float())
    else:
        lp = log_prior.float()[:, None, :].expand(same.shape).masked_fill(~same, NEG_INF)
        share = log_prior.float() - torch.logsumexp(lp, -1).clamp_min(-1e30)
    return share.masked_fill(~live_mask, 0.0)


def constrained_log_softmax(logits: Tensor, allowed: Tensor) -> Tensor:
    """log_softmax renormalised over allowed tokens, -inf elsewhere (NaN-free, also in grad)."""
    any_ok = allowed.any(-1, keepdim=True)
    masked = logits.masked_fill(~allowed & any_ok, NEG_INF)
    return F.log_softmax(masked, -1).masked_fill(~allowed, NEG_INF)


def match_live_index(sids: Tensor, live_sids: Tensor, live_mask: Tensor) -> Tensor:
    """sids (B, K, L) -> (B, K) index of the first live entry with that SID, -1 if none."""
    eq = (sids[:, :, None, :] == live_sids[:, None, :, :]).all(-1) & live_mask[
        :, None, :
    ]  # (B,K,N)
    return torch.where(eq.any(-1), eq.int().argmax(-1), -1)


def _shift_gumbel(g_phi: Tensor, g_parent: Tensor) -> Tensor:
    """Stochastic beam search: condition children's Gumbels g_phi (B, K, V) on their max
    being the parent's value g_parent (B, K) (Kool et al. 2019, numerically stable form)."""
    T = g_parent[..., None]
    Z = g_phi.amax(-1, keepdim=True)
    u = T - g_phi + torch.log1p(-torch.exp(g_phi - Z))
    out = T - F.relu(u) - torch.log1p(torch.exp(-u.abs()))
    return out.masked_fill(torch.isneginf(g_phi) | torch.isneginf(T), NEG_INF)


def _gumbel(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    u = torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    tiny = torch.finfo(like.dtype).tiny
    return -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))


@torch.no_grad()
def beam_search(
    model: OneLiveGenerator,
    batch: GeneratorBatch,
    live_sids: Tensor,
    live_mask: Tensor,
    beam_size: int,
    top_k: int,
    *,
    sample: bool = False,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    live_stats: Tensor | None = None,
) -> BeamResult:
    """Constrained beam search for every request of the batch.

    live_sids (B, N, L) long, live_mask (B, N) bool. Returns the top_k beams,
    best first, with constrained log p(sid) as scores and the live index of each.
    With beam_size >= number of distinct live SIDs the result is exact.
    sample=True: stochastic beam search (Gumbel top-k over sequences, Kool et al.
    2019) from the constrained distribution at `temperature`, so the beams are a
    sample without replacement, in sampled order; scores stay the temperature-1
    constrained log-probs. Noise comes from `generator` (or torch's global RNG).
    live_stats (B, N, S): the rooms' scaled statistics, needed by a model with a live prior.
    The model is put in eval mode for the call and restored afterwards.
    """
    if beam_size < 1 or top_k < 1:
        raise ValueError(f"beam_size={beam_size} and top_k={top_k} must be >= 1")
    if sample and not temperature > 0:
        raise ValueError(f"temperature={temperature} must be > 0")
    check_live(model, live_sids, live_mask)
    prior = live_log_prior(model, batch, live_stats, live_mask)
    was_training = model.training
    model.eval()
    try:
        B, _, L = live_sids.shape
        logits, state = model.decode_start(batch)  # (B, 1, V_1)
        prefix = live_sids.new_zeros(B, 1, 0)  # (B, K, l)
        score = logits.new_zeros(B, 1)  # (B, K) constrained log p of the prefix
        key = logits.new_zeros(B, 1)  # (B, K) ranking key (score, or perturbed phi)
        phi = logits.new_zeros(B, 1)  # (B, K) tempered log p (sampling)
        parent = token = prefix.new_zeros(B, 1)
        for lvl in range(L):
            if lvl > 0:
                logits, state = model.decode_step(state, parent, token)  # (B, K, V)
            V = logits.shape[-1]
            tilted, allowed = tilted_logits(logits, prefix, live_sids, live_mask, prior)
            cand = score[..., None] + constrained_log_softmax(tilted, allowed)  # (B, K, V)
            if sample:
                cand_phi = phi[..., None] + constrained_log_softmax(tilted / temperature, allowed)
                cand_key = _shift_gumbel(
                    cand_phi + _gumbel(cand_phi.shape, cand_phi, generator), key
                )
            else:
                cand_key = cand
            k = min(beam_size, cand.shape[1] * V)
            key, flat = cand_key.flatten(1).topk(k, dim=1)  # (B, k)
            parent, token = flat // V, flat % V  # (B, k)
            score = cand.flatten(1).gather(1, flat)
            if sample:
                phi = cand_phi.flatten(1).gather(1, flat)
            prefix = torch.cat([gather_beams(prefix, parent), token[..., None]], -1)  # (B, k, l+1)
    finally:
        model.train(was_training)
    ok = torch.isfinite(score)  # (B, K)
    index = match_live_index(prefix, live_sids, live_mask).masked_fill(~ok, -1)
    sids, score = prefix.masked_fill(~ok[..., None], -1), score.masked_fill(~ok, NEG_INF)
    K = sids.shape[1]
    if top_k > K:  # pad
        sids = torch.cat([sids, sids.new_full((B, top_k - K, L), -1)], 1)
        score = torch.cat([score, score.new_full((B, top_k - K), NEG_INF)], 1)
        index = torch.cat([index, index.new_full((B, top_k - K), -1)], 1)
    return BeamResult(sids[:, :top_k], score[:, :top_k], index[:, :top_k])


def sequence_log_prob(
    model: OneLiveGenerator,
    batch: GeneratorBatch,
    sids: Tensor,
    live_sids: Tensor,
    live_mask: Tensor,
    live_stats: Tensor | None = None,
) -> Tensor:
    """Constrained log p of given SIDs, sids (B, M, L) -> (B, M); -inf for SIDs that are
    not live (or contain -1). One context pass per request, the M SIDs decoded as beams
    through the same cached path as beam_search. Differentiable (policy-gradient ratios);
    runs in the model's current train/eval mode."""
    check_live(model, live_sids, live_mask)
    prior = live_log_prior(model, batch, live_stats, live_mask)
    B, M, L = sids.shape
    safe = sids.clamp(min=0)
    logits, state = model.decode_start(batch)  # (B, 1, V_1)
    logits = logits.expand(B, M, -1)
    total = logits.new_zeros(B, M)
    root = sids.new_zeros(B, M)  # level 1: every SID extends the single BOS beam
    same = torch.arange(M, device=sids.device).expand(B, M)  # later: beam m extends beam m
    for lvl in range(L):
        if lvl > 0:
            parent = root if lvl == 1 else same
            logits, state = model.decode_step(state, parent, safe[:, :, lvl - 1])  # (B, M, V)
        logp = level_log_probs(logits, safe[:, :, :lvl], live_sids, live_mask, prior)  # (B, M, V)
        total = total + logp.gather(-1, safe[:, :, lvl : lvl + 1]).squeeze(-1)
    return total.masked_fill((sids < 0).any(-1), NEG_INF)


@torch.no_grad()
def score_all_live(
    model: OneLiveGenerator,
    batch: GeneratorBatch,
    live_sids: Tensor,
    live_mask: Tensor,
    live_stats: Tensor | None = None,
) -> Tensor:
    """Brute-force reference: constrained log p of every live SID, (B, N), -inf where masked.

    Uses the plain teacher-forced `forward` on the batch repeated N times (B*N context
    passes, no cache), independent of the decoding path; meant for tests and small N.
    """
    check_live(model, live_sids, live_mask)
    prior = live_log_prior(model, batch, live_stats, live_mask)
    was_training = model.training
    model.eval()
    try:
        B, N, L = live_sids.shape
        tgt = live_sids.masked_fill(~live_mask[..., None], 0)  # (B, N, L)
        logits = model(replace(batch.repeat_interleave(N), target_sid=tgt.reshape(B * N, L)))
    finally:
        model.train(was_training)
    total = torch.zeros(B, N, device=live_sids.device)
    for lvl, lg in enumerate(logits):  # lg (B*N, V)
        logp = level_log_probs(lg.view(B, N, -1), tgt[:, :, :lvl], live_sids, live_mask, prior)
        total = total + logp.gather(-1, tgt[:, :, lvl : lvl + 1]).squeeze(-1)
    return total.masked_fill(~live_mask, NEG_INF)


def constrained_nll(
    model: OneLiveGenerator,
    batch: GeneratorBatch,
    live_sids: Tensor,
    live_mask: Tensor,
    live_stats: Tensor | None = None,
) -> Tensor:
    """(B, L) teacher-forced negative log-likelihood of each level of ``batch.target_sid``
    under the constrained distribution (see :func:`constrained_loss`)."""
    tgt = batch.target_sid
    if tgt is None:
        raise ValueError("constrained_nll needs batch.target_sid")
    prior = live_log_prior(model, batch, live_stats, live_mask)
    per = []
    for lvl, lg in enumerate(model(batch)):  # lg (B, V)
        logp = level_log_probs(lg[:, None], tgt[:, None, :lvl], live_sids, live_mask, prior)[:, 0]
        per.append(-logp.gather(1, tgt[:, lvl : lvl + 1])[:, 0])  # (B,)
    nll = torch.stack(per, 1)  # (B, L)
    if not bool(torch.isfinite(nll).all()):
        raise ValueError("constrained_loss: a target SID is not among its row's live SIDs")
    return nll


def constrained_loss(
    model: OneLiveGenerator,
    batch: GeneratorBatch,
    live_sids: Tensor,
    live_mask: Tensor,
    weights: Tensor | None = None,
    live_stats: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Teacher-forced cross-entropy under the constrained distribution: at each level
    the softmax is renormalised over the tokens that keep the target's prefix on a SID
    of ``live_sids`` (B, N, L) / ``live_mask`` (B, N), the objective that matches
    constrained decoding. The target SID must be among the live SIDs of its row.
    Returns (sum_l w_l CE_l, per-level CE (L,) detached), like ``model.loss``."""
    nll = constrained_nll(model, batch, live_sids, live_mask, live_stats)  # (B, L)
    return level_loss(nll, weights, model.config.level_loss_weights)


def level_loss(
    nll: Tensor, weights: Tensor | None, level_weights: Sequence[float]
) -> tuple[Tensor, Tensor]:
    """(sum_l w_l CE_l, per-level CE (L,) detached) of per-example, per-level ``nll``
    (B, L), the examples weighted by ``weights`` (B,) (None: equally)."""
    if weights is None:
        per = nll.mean(0)
    else:
        per = (nll * weights[:, None]).sum(0) / weights.sum().clamp_min(1e-12)
    return (per.new_tensor(level_weights) * per).sum(), per.detach()
