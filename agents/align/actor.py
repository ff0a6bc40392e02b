"""The generator as a differentiable policy over the live-room slots of a request.

``pi(slot | request)`` is the generator's constrained SID likelihood
(:func:`policies.onelive.decoding.sequence_log_prob`: each level's softmax
renormalised over the tokens that continue some live SID) of the slot's current
SID, split evenly among the live slots that share that SID (a collision): so
``pi`` sums to one over the live slots and ``log pi = log p(sid) - log n_sid``.
A generator with a live prior (``live_prior_weight`` w > 0 or a ``room_prior``) splits
a SID's mass in proportion to ``exp(prior)`` of its rooms instead
(:func:`policies.onelive.decoding.collision_log_share`). Empty slots get ``-inf``.

Encoding an observation (history SIDs, live SIDs through the tokenizer) is not
differentiable and is done once per request (:meth:`GeneratorActor.encode`);
the result is a plain tensor bundle (:class:`EncodedRequests`) that alignment
stores, indexes and re-scores many times.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from policies.base import as_batch
from policies.checkpoint import named_path
from policies.onelive.checkpoint import load_checkpoint
from policies.onelive.config import GeneratorBatch
from policies.onelive.decoding import collision_log_share, live_log_prior, sequence_log_prob
from policies.onelive.features import ROOM_PRIOR_COLUMNS, FeatureBuilder, room_stat_features
from policies.onelive.model import OneLiveGenerator

NEG_INF = float("-inf")


@dataclass
class EncodedRequests:
    """Generator inputs of ``B`` requests and the SIDs of their live slots.

    ``live_sids`` (B, N, L) long: the SID of slot ``j`` of the room table
    (``N = max_rooms``; -1 where no room is live); ``live_mask`` (B, N) bool;
    ``live_stats`` (B, N, S) float: the slots' scaled statistics
    (:func:`policies.onelive.features.room_stat_features`, 0 where empty).
    """

    user_feats: Tensor
    hist_sid: Tensor
    hist_feedback: Tensor
    hist_time: Tensor
    hist_mask: Tensor
    now_time: Tensor
    live_sids: Tensor
    live_mask: Tensor
    live_stats: Tensor

    def __len__(self) -> int:
        return int(self.user_feats.shape[0])

    def batch(self) -> GeneratorBatch:
        return GeneratorBatch(
            self.user_feats,
            self.hist_sid,
            self.hist_feedback,
            self.hist_time,
            self.hist_mask,
            self.now_time,
        )

    def index(self, rows: Tensor | np.ndarray) -> EncodedRequests:
        rows = torch.as_tensor(rows, dtype=torch.long)
        return EncodedRequests(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name).numpy() for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> EncodedRequests:
        """From :meth:`arrays`. Files from before ``live_stats`` existed get their
        ``live_viewers`` (B, N) as its viewers column (zeros without), other columns 0;
        files from before the streamer affinity get those columns as 0."""
        arrays = dict(arrays)
        if "live_stats" not in arrays:
            mask = np.asarray(arrays["live_mask"])
            stats = np.zeros((*mask.shape, len(ROOM_PRIOR_COLUMNS)), np.float32)
            stats[..., ROOM_PRIOR_COLUMNS.index("log_viewers")] = arrays.get("live_viewers", 0.0)
            arrays["live_stats"] = stats
        stats = np.asarray(arrays["live_stats"])
        if stats.shape[-1] < len(ROOM_PRIOR_COLUMNS):
            pad = np.zeros(
                (*stats.shape[:-1], len(ROOM_PRIOR_COLUMNS) - stats.shape[-1]), stats.dtype
            )
            arrays["live_stats"] = np.concatenate([stats, pad], -1)
        return cls(**{f.name: torch.from_numpy(np.asarray(arrays[f.name])) for f in fields(cls)})

    @classmethod
    def cat(cls, parts: list[EncodedRequests]) -> EncodedRequests:
        """Concatenate along the batch axis (padding the history axis to the longest)."""
        h = max(p.hist_sid.shape[1] for p in parts)
        padded = [p._pad_history(h) for p in parts]
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in padded]) for f in fields(cls)})

    def _pad_history(self, h: int) -> EncodedRequests:
        extra = h - self.hist_sid.shape[1]
        if extra == 0:
            return self

        def left(t: Tensor, value: float) -> Tensor:
            pad = t.new_full((t.shape[0], extra, *t.shape[2:]), value)
            return torch.cat([pad, t], 1)

        return EncodedRequests(
            self.user_feats,
            left(self.hist_sid, -1),
            left(self.hist_feedback, -1),
            left(self.hist_time, 0.0),
            left(self.hist_mask, False),
            self.now_time,
            self.live_sids,
            self.live_mask,
            self.live_stats,
        )


class GeneratorActor(nn.Module):
    """A :class:`OneLiveGenerator` with the feature builder that feeds it (see module doc)."""

    def __init__(self, model: OneLiveGenerator, features: FeatureBuilder) -> None:
        super().__init__()
        self.model = model
        self.features = features

    @classmethod
    def from_checkpoint(cls, path: str | Path, obs_dim: int | None = None) -> GeneratorActor:
        """A generator checkpoint whose ``extra["tokenizer"]`` names its SID tokenizer
        (as :mod:`agents.train.pretrain` writes them)."""
        from policies.tokenizer.semantic_ids import SIDTokenizer

        model, extra, _ = load_checkpoint(path)
        tok_path = extra.get("tokenizer")
        if not tok_path:
            raise ValueError(f"{path}: the checkpoint names no tokenizer (extra['tokenizer'])")
        tok = SIDTokenizer.load(named_path(path, tok_path))
        dim = int(obs_dim or tok.content_dim)
        return cls(model, FeatureBuilder(tok, dim, model.config.max_history))

    def frozen_copy(self) -> GeneratorActor:
        """A deep copy with gradients off (the reference policy)."""
        ref = GeneratorActor(copy.deepcopy(self.model), self.features)
        ref.requires_grad_(False)
        return ref.eval()

    @property
    def n_levels(self) -> int:
        return self.model.config.n_levels

    @torch.no_grad()
    def encode(self, obs: Mapping[str, np.ndarray]) -> EncodedRequests:
        """A (single or batched) observation -> generator inputs and live SIDs."""
        batch = as_batch(obs)
        g = self.features.batch_from_obs(batch)
        sids, mask = self.features.room_sids(batch)
        return EncodedRequests(
            g.user_feats,
            g.hist_sid,
            g.hist_feedback,
            g.hist_time,
            g.hist_mask,
            g.now_time,
            torch.from_numpy(sids),
            torch.from_numpy(mask),
            room_stat_features(batch, mask, self.model.config.room_embed_dim),
        )

    def slot_log_probs(self, enc: EncodedRequests) -> Tensor:
        """``(B, N)`` log pi of every slot (differentiable; -inf where not live).

        Only the first ``n`` slots (the highest live slot of the batch) are decoded."""
        mask = enc.live_mask
        b, n_slots = mask.shape
        n = int(mask.any(0).nonzero().max()) + 1 if bool(mask.any()) else 0
        out = torch.full((b, n_slots), NEG_INF)
        if n == 0:
            return out
        sids, live, stats = enc.live_sids[:, :n], mask[:, :n], enc.live_stats[:, :n]
        batch = enc.batch()
        logp = sequence_log_prob(self.model, batch, sids, sids, live, stats)  # (B, n)
        prior = live_log_prior(self.model, batch, stats, live)
        logp = logp + collision_log_share(sids, live, prior)
        logp = logp.masked_fill(~live, NEG_INF)
        return torch.cat([logp, out[:, n:]], 1) if n < n_slots else logp

    def hidden(self, enc: EncodedRequests) -> Tensor:
        """``(B, d)`` the main stack's final state at ``[BOS]`` (for a value head)."""
        _, state = self.model.decode_start(enc.batch())
        if state.h is not None:  # MTP: the BOS state of the main stack
            return self.model.ln_f(state.h[:, 0])
        x, valid = self.model._context(enc.batch())  # full-depth AR: run the stack once more
        return self.model.ln_f(self.model._main(x, valid)[0][:, -1])


def masked_log_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """Log-softmax over ``mask`` (B, N), -inf elsewhere (a stand-in policy's helper)."""
    return torch.log_softmax(logits.masked_fill(~mask, NEG_INF), -1).masked_fill(~mask, NEG_INF)


__all__ = [
    "EncodedRequests",
    "GeneratorActor",
    "masked_log_softmax",
]
