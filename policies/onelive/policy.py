"""The OneLive generator behind the policy interface.

For each request, the live rooms of the observation are tokenized with their *current*
content (dynamic SIDs; a static tokenizer gives one SID per streamer) into a live-SID
table, and constrained beam search generates SIDs that exist in that table only. A
generated SID is mapped back to the room-table slots that carry it.

Collisions (several live rooms share a full SID): the rooms of one SID are served in
order of most live viewers first (the room table's ``log_viewers``), then lowest slot;
in a slate the next SID's rooms follow. When the beams hold fewer rooms than the slate
needs, the remaining live rooms follow by the same popularity order.

A generator trained with the live prior (``OneLiveConfig.live_prior_weight`` > 0, the
pretraining default, and optionally ``room_prior``) reads the room table's statistics inside its
constrained softmax (:mod:`policies.onelive.decoding`), in greedy decoding, scoring and
sampling alike; rooms sharing a SID then split its mass by ``exp(prior)``.

``popularity_weight`` w (default 0: the pure generator) adds a live-popularity prior
after generation: the rooms of the generated SIDs are ranked by
``log p(SID) + w * log_viewers`` (generate, then re-rank; the generator itself never
sees the room statistics). It applies to the offline ``scores`` and to sampling too.

``temperature > 0`` samples instead (exploration, GRPO groups): the room distribution
is ``q(room) ∝ (p(SID of room) / n_rooms_with_that_SID * exp(w * log_viewers))
** (1 / temperature)`` over the live rooms, with ``p`` the constrained generator probability, and the slate is drawn
without replacement (Gumbel top-k); ``propensities`` are then exact (the probability of
each slot at its position given the slots above it). Greedy decoding gives none.

Saved as one ``.npz`` policy file (:meth:`Policy.save`): the model config in the JSON
part, the weights and the tokenizer file as arrays.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from policies.base import Obs, Policy, PolicyOutput, as_batch
from policies.checkpoint import named_path
from policies.onelive.checkpoint import load_checkpoint
from policies.onelive.config import GeneratorBatch, OneLiveConfig
from policies.onelive.decoding import (
    NEG_INF,
    beam_search,
    collision_log_share,
    live_log_prior,
    sequence_log_prob,
)
from policies.onelive.features import FeatureBuilder, room_log_viewers, room_stat_features
from policies.onelive.hybrid_sids import HybridTokenizer, load_tokenizer
from policies.onelive.model import OneLiveGenerator
from policies.tokenizer.semantic_ids import SIDTokenizer

__all__ = ["GeneratorPolicy"]

_MODEL_PREFIX = "model."


class GeneratorPolicy(Policy):
    """Generator + tokenizer + live-SID table = a recommender (see the module doc).

    Build with :meth:`from_files` (a generator checkpoint and a tokenizer file) or
    :meth:`from_parts`; ``Policy.load`` rebuilds a saved one. ``beam_size`` beams are
    kept per level (>= the slate size); ``temperature`` 0 decodes greedily.
    """

    default_name = "onelive"

    def __init__(
        self,
        model_config: Mapping[str, Any] | None = None,
        beam_size: int = 32,
        temperature: float = 0.0,
        name: str | None = None,
        slate_size: int = 1,
        seed: int | None = None,
        popularity_weight: float = 0.0,
    ) -> None:
        super().__init__(name, slate_size)
        if int(beam_size) != beam_size or beam_size < self.slate_size:
            raise ValueError(
                f"beam_size={beam_size!r} is invalid: must be an integer >= slate_size="
                f"{self.slate_size}"
            )
        if not (isinstance(temperature, (int, float)) and np.isfinite(temperature)) or (
            temperature < 0
        ):
            raise ValueError(f"temperature={temperature!r} is invalid: must be a float >= 0")
        if not (isinstance(popularity_weight, (int, float)) and np.isfinite(popularity_weight)):
            raise ValueError(f"popularity_weight={popularity_weight!r} is invalid: a finite float")
        self.beam_size, self.temperature = int(beam_size), float(temperature)
        self.popularity_weight = float(popularity_weight)
        self.model: OneLiveGenerator | None = None
        if model_config is not None:
            self.model = OneLiveGenerator(OneLiveConfig.from_dict(dict(model_config))).eval()
        self.tokenizer: SIDTokenizer | HybridTokenizer | None = None
        self.features: FeatureBuilder | None = None
        self.rng = torch.Generator().manual_seed(0 if seed is None else int(seed))

    # ----- construction ------------------------------------------------------
    @classmethod
    def from_parts(
        cls, model: OneLiveGenerator, tokenizer: SIDTokenizer | HybridTokenizer, **kwargs: Any
    ) -> GeneratorPolicy:
        policy = cls(None, **kwargs)
        policy._attach(model.eval(), tokenizer)
        return policy

    @classmethod
    def from_files(
        cls,
        checkpoint: str | os.PathLike[str],
        tokenizer: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> GeneratorPolicy:
        """A policy from a generator checkpoint and its tokenizer file (default: the
        tokenizer path the checkpoint's ``extra`` names, as ``agents.train.pretrain`` writes)."""
        model, extra, _ = load_checkpoint(checkpoint)
        path = tokenizer if tokenizer is not None else extra.get("tokenizer")
        if not path:
            raise ValueError(f"{checkpoint} names no tokenizer; pass tokenizer=")
        path = Path(path) if tokenizer is not None else named_path(checkpoint, path)
        return cls.from_parts(model, load_tokenizer(path), **kwargs)

    def _attach(self, model: OneLiveGenerator, tokenizer: SIDTokenizer | HybridTokenizer) -> None:
        cfg = model.config
        if tuple(tokenizer.vocab_sizes) != tuple(cfg.vocab_sizes):
            raise ValueError(
                f"tokenizer vocab_sizes {tokenizer.vocab_sizes} != model vocab_sizes "
                f"{cfg.vocab_sizes}"
            )
        self.model, self.tokenizer = model, tokenizer
        self.features = FeatureBuilder(tokenizer, tokenizer.content_dim, cfg.max_history)

    def _ready(self) -> tuple[OneLiveGenerator, FeatureBuilder]:
        if self.model is None or self.features is None:
            raise RuntimeError(f"{self.name}: no model/tokenizer yet (use from_files or load)")
        return self.model, self.features

    def reset(self, seed: int | None = None) -> None:
        """New episode: forget the streamer cache (ids may mean other streamers now)."""
        if seed is not None:
            self.rng = torch.Generator().manual_seed(int(seed))
        if self.features is not None:
            self.features.cache.clear()

    # ----- inputs ------------------------------------------------------------
    def prepare(self, obs: Obs) -> tuple[GeneratorBatch, Tensor, Tensor, dict[str, np.ndarray]]:
        """(model batch, live SIDs (B, R, L) long with 0 on empty slots, live mask (B, R),
        the batched observation)."""
        _, feats = self._ready()
        batch = as_batch(obs)
        feats.cache.update_from_obs(batch)
        gb = feats.batch_from_obs(batch, update_cache=False)
        sids, mask = feats.room_sids(batch)
        live = torch.as_tensor(np.where(mask[..., None], sids, 0), dtype=torch.long)
        return gb, live, torch.as_tensor(mask), batch

    def log_probs_of_slots(self, obs: Obs, split_collisions: bool = False) -> Tensor:
        """``(B, max_rooms)`` constrained log p of each live slot's current SID, -inf on
        empty slots. Differentiable (the model's current train/eval mode is kept).

        ``split_collisions``: subtract log(rooms sharing the SID), giving a proper
        log-distribution over the live slots (for actors over slots, e.g. MaskablePPO)."""
        model, _ = self._ready()
        gb, live, mask, batch = self.prepare(obs)
        stats = room_stat_features(batch, mask.numpy(), model.config.room_embed_dim)
        sids = live.masked_fill(~mask[..., None], -1)
        logp = sequence_log_prob(model, gb, sids, live, mask, stats)  # (B, R)
        if split_collisions:
            logp = logp + collision_log_share(live, mask, live_log_prior(model, gb, stats, mask))
        return logp.masked_fill(~mask, NEG_INF)

    @torch.no_grad()
    def scores(self, obs: Obs) -> np.ndarray:
        """``(B, max_rooms)`` float64 ranking scores that order the live slots as greedy
        decoding with exhaustive beams does: by log p(SID) (+ the popularity prior),
        rooms of one SID by most live viewers, then lowest slot (offline ranking);
        -inf on empty slots."""
        logp = self.log_probs_of_slots(obs).double().numpy()
        viewers = room_log_viewers(as_batch(obs)).double().numpy()
        fused = logp + self.popularity_weight * viewers
        out = np.full(logp.shape, -np.inf)
        slot = np.arange(logp.shape[1])
        for b in range(len(logp)):
            live = np.flatnonzero(np.isfinite(logp[b]))
            order = live[np.lexsort((slot[live], -viewers[b, live], -fused[b, live]))]
            out[b, order] = -np.arange(len(order), dtype=np.float64)
        return out

    # ----- acting -------------------------------------------------------------
    def act(self, obs: Obs, env: Any = None) -> PolicyOutput:
        if self.temperature > 0:
            return self._sample(obs)
        model, _ = self._ready()
        gb, live, mask, batch = self.prepare(obs)
        n_live = mask.sum(1)
        if int(n_live.min()) < self.slate_size:
            row = int(torch.argmin(n_live))
            raise ValueError(
                f"row {row} has {int(n_live[row])} live room(s); a slate needs {self.slate_size}"
            )
        res = beam_search(
            model,
            gb,
            live,
            mask,
            self.beam_size,
            self.beam_size,
            live_stats=room_stat_features(batch, mask.numpy(), model.config.room_embed_dim),
        )
        viewers = room_log_viewers(batch).numpy()
        slots = np.stack(
            [
                _slots_of_beams(
                    res.sids[b].numpy(),
                    live[b].numpy(),
                    mask[b].numpy(),
                    viewers[b],
                    self.slate_size,
                    res.scores[b].numpy(),
                    self.popularity_weight,
                )
                for b in range(gb.batch_size)
            ]
        )
        return self._format(slots)

    @torch.no_grad()
    def _sample(self, obs: Obs) -> PolicyOutput:
        logp = self.log_probs_of_slots(obs, split_collisions=True).double()  # (B, R)
        if self.popularity_weight:
            logp = logp + self.popularity_weight * room_log_viewers(as_batch(obs)).double()
        q = torch.log_softmax(logp / self.temperature, dim=1)  # -inf stays -inf
        gumbel = -torch.log(
            -torch.log(
                torch.rand(q.shape, generator=self.rng, dtype=q.dtype).clamp(1e-300, 1 - 1e-16)
            )
        )
        k = self.slate_size
        n_live = torch.isfinite(q).sum(1)
        if int(n_live.min()) < k:
            raise ValueError(f"a request has {int(n_live.min())} live room(s); a slate needs {k}")
        slots = (q + gumbel).topk(k, dim=1).indices  # (B, K) sampled without replacement
        p = q.exp().gather(1, slots)  # (B, K)
        before = torch.cumsum(p, 1) - p  # mass of the slots above
        prop = p / (1.0 - before).clamp_min(1e-300)
        return self._format(slots.numpy().astype(np.int64), prop.numpy())

    # ----- persistence -------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        model, _ = self._ready()
        return {
            **super().get_config(),
            "model_config": model.config.to_dict(),
            "beam_size": self.beam_size,
            "temperature": self.temperature,
            "popularity_weight": self.popularity_weight,
        }

    def get_state(self) -> dict[str, np.ndarray]:
        model, _ = self._ready()
        state = {_MODEL_PREFIX + k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        with tempfile.TemporaryDirectory() as tmp:
            path = self.tokenizer.save(Path(tmp) / "tokenizer.pt")  # type: ignore[union-attr]
            state["tokenizer_file"] = np.frombuffer(path.read_bytes(), dtype=np.uint8).copy()
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        if self.model is None or "tokenizer_file" not in state:
            raise ValueError(f"{self.name}: the state needs a model_config and a tokenizer_file")
        weights = {
            k[len(_MODEL_PREFIX) :]: torch.as_tensor(np.array(v))
            for k, v in state.items()
            if k.startswith(_MODEL_PREFIX)
        }
        self.model.load_state_dict(weights)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tokenizer.pt"
            path.write_bytes(np.asarray(state["tokenizer_file"], dtype=np.uint8).tobytes())
            tokenizer = load_tokenizer(path)
        self._attach(self.model.eval(), tokenizer)


def _slots_of_beams(
    beam_sids: np.ndarray,
    live: np.ndarray,
    mask: np.ndarray,
    viewers: np.ndarray,
    k: int,
    beam_scores: np.ndarray | None = None,
    popularity_weight: float = 0.0,
) -> np.ndarray:
    """The ``k`` slots served from the beams: rooms of the beams' SIDs by
    ``beam score + popularity_weight * viewers`` (beam order when no scores are given),
    collisions by most viewers, then lowest slot; then the other live slots by most
    viewers, then lowest slot."""
    slot = np.arange(len(mask))
    score = np.full(len(mask), -np.inf)
    ok = beam_sids[:, 0] >= 0
    sids = beam_sids[ok]
    rank = -np.arange(len(sids), dtype=np.float64) if beam_scores is None else beam_scores[ok]
    hit = (live[:, None, :] == sids[None, :, :]).all(-1) & mask[:, None]  # (R, n_beams)
    has = hit.any(1)
    score[has] = rank[hit[has].argmax(1)] + popularity_weight * viewers[has]
    order = np.lexsort((slot, -viewers, -score, ~mask))
    return order[:k].astype(np.int64)
