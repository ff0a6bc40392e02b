"""The cascade recommender: two-tower retrieval, multi-task ranking, score fusion.

For each request of a batch:

1. retrieval: the two-tower scores every live room and keeps the ``top_n``;
2. ranking: the multi-task ranker predicts the expected feedback vector of
   each retrieved room (:meth:`MultiTaskRanker.expected_feedback`);
3. fusion: the score is ``reward_weights @ expected feedback``, the expected
   reward of the impression under the env's reward weights; the top
   ``slate_size`` rooms are shown.

With the optional cold-start module (:mod:`policies.cascade.coldstart`) the
ranker also reads the group taste of the user's demographic cluster; the
cluster memory is written online from the requests the policy answers and
returned at :meth:`CascadePolicy.reset` to its prior, the memory that the
training logs left (same platform, new days; see :mod:`policies.cascade.coldstart`).

Saved with :meth:`policies.base.Policy.save` as one ``.npz``: the configs of
every part as JSON, the weights as arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from liveenv.objectives import as_weight_vector
from policies.base import ScoringPolicy
from policies.cascade.coldstart import N_DEMOGRAPHIC, ClusterMemory, ColdStartConfig
from policies.cascade.features import PairFeatures, pair_features
from policies.cascade.ranker import MultiTaskRanker, RankerConfig
from policies.cascade.retrieval import TwoTower, TwoTowerConfig

_PARTS = ("tower.", "ranker.", "memory.")
_ROOM_KEYS = ("rooms", "room_followed", "room_streamer", "room_mask")


class CascadePolicy(ScoringPolicy):
    """Retrieval -> ranking -> weighted fusion (see the module doc).

    ``tower`` / ``ranker``: the configs (dicts or dataclasses) of the two
    models; ``coldstart``: the cluster memory's config, or None for the plain
    cascade; ``obs_dim``: the width of the observed embeddings; ``top_n``:
    rooms kept by retrieval (0: all live rooms); ``reward_weights``: the
    env's reward weights (None: the defaults).
    """

    default_name = "cascade"

    def __init__(
        self,
        tower: Mapping[str, Any] | TwoTowerConfig,
        ranker: Mapping[str, Any] | RankerConfig,
        obs_dim: int,
        top_n: int = 64,
        coldstart: Mapping[str, Any] | ColdStartConfig | None = None,
        reward_weights: Mapping[str, float] | Sequence[float] | None = None,
        name: str | None = None,
        slate_size: int = 1,
    ) -> None:
        super().__init__(name, slate_size)
        if int(top_n) != top_n or top_n < 0:
            raise ValueError(f"top_n={top_n!r} is invalid: must be an integer >= 0 (0: all rooms)")
        if 0 < top_n < slate_size:
            raise ValueError(f"top_n={top_n} is invalid: must be >= slate_size={slate_size} or 0")
        self.top_n, self.obs_dim = int(top_n), int(obs_dim)
        self.weights = as_weight_vector(reward_weights, "reward_weights")
        self.tower = TwoTower(_as(TwoTowerConfig, tower)).eval()
        self.ranker = MultiTaskRanker(_as(RankerConfig, ranker)).eval()
        self.memory: ClusterMemory | None = None
        if coldstart is not None:
            cs = _as(ColdStartConfig, coldstart)
            self.memory = ClusterMemory(cs, np.zeros((cs.n_clusters, N_DEMOGRAPHIC)), self.obs_dim)

    def set_reward_weights(self, weights: Mapping[str, float] | Sequence[float] | None) -> None:
        """Fuse with new reward weights (e.g. after ``env.reset(options={"reward_weights": ...})``);
        the models predict every objective, so no retraining is needed."""
        self.weights = as_weight_vector(weights, "reward_weights")

    # ----- acting -------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        if self.memory is not None:
            self.memory.reset()

    def features(self, batch: Mapping[str, np.ndarray], write: bool = True) -> PairFeatures:
        """The pair features of ``batch`` (reads, then writes, the cluster memory)."""
        group = None if self.memory is None else self.memory.read(batch["user"])
        pf = pair_features(batch, group)
        if self.memory is not None and write:
            self.memory.write(np.asarray(batch["user"]), pf.request.taste, pf.request.has_history)
        return pf

    @torch.no_grad()
    def retrieve(self, pf: PairFeatures) -> tuple[np.ndarray, np.ndarray]:
        """``(B, R)`` retrieval scores (-inf on empty slots) and ``(B, N)`` kept slots."""
        user = torch.from_numpy(pf.request.tower_input())
        score = self.tower(user, torch.from_numpy(pf.rooms), torch.from_numpy(pf.followed))
        score = score.numpy().astype(np.float64)
        score[~pf.mask] = -np.inf
        n = pf.mask.shape[1] if self.top_n == 0 else min(self.top_n, pf.mask.shape[1])
        keep = np.argsort(-score, axis=1, kind="stable")[:, :n]
        return score, keep

    @torch.no_grad()
    def predict_feedback(self, batch: Mapping[str, np.ndarray], write: bool = True) -> np.ndarray:
        """``(B, R, 6)`` expected feedback of every retrieved room (NaN elsewhere)."""
        mask = np.asarray(batch["room_mask"]).astype(bool)
        cols = np.flatnonzero(mask.any(axis=0))  # only slots live in some request
        sub = {k: np.asarray(v)[:, cols] if k in _ROOM_KEYS else v for k, v in batch.items()}
        pf = self.features(sub, write)
        score, keep = self.retrieve(pf)
        rc = self.ranker.config
        retrieval = np.nan_to_num(score, neginf=0.0) if rc.retrieval_feature else None
        x = pf.ranker_input(retrieval, rc.raw_embeddings)
        rows = np.arange(x.shape[0])[:, None]
        fb = self.ranker.expected_feedback(torch.from_numpy(x[rows, keep])).numpy()  # (B, N, 6)
        part = np.full((*pf.mask.shape, fb.shape[-1]), np.nan)
        part[rows, keep] = fb
        part[~pf.mask] = np.nan
        out = np.full((*mask.shape, fb.shape[-1]), np.nan)
        out[:, cols] = part
        return out

    def scores(self, batch: dict[str, np.ndarray], env: Any = None) -> np.ndarray:
        fb = self.predict_feedback(batch)
        return np.where(np.isnan(fb[..., 0]), -np.inf, np.nan_to_num(fb) @ self.weights)

    # ----- persistence -----------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "tower": asdict(self.tower.config),
            "ranker": {**asdict(self.ranker.config), "hidden": list(self.ranker.config.hidden)},
            "coldstart": None if self.memory is None else asdict(self.memory.config),
            "obs_dim": self.obs_dim,
            "top_n": self.top_n,
            "reward_weights": self.weights.tolist(),
        }

    def get_state(self) -> dict[str, np.ndarray]:
        state = {f"tower.{k}": v.numpy() for k, v in self.tower.state_dict().items()}
        state.update({f"ranker.{k}": v.numpy() for k, v in self.ranker.state_dict().items()})
        if self.memory is not None:
            state["memory.centroids"] = self.memory.centroids
            state["memory.prior_values"] = self.memory.prior_values
            state["memory.prior_counts"] = self.memory.prior_counts
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        unknown = sorted(k for k in state if not k.startswith(_PARTS))
        if unknown:
            raise ValueError(f"{self.name}: unknown state arrays {unknown}")
        for prefix, module in (("tower.", self.tower), ("ranker.", self.ranker)):
            sub = {
                k[len(prefix) :]: torch.as_tensor(np.asarray(v))
                for k, v in state.items()
                if k.startswith(prefix)
            }
            module.load_state_dict(sub)
        if self.memory is not None:
            if "memory.centroids" not in state:
                raise ValueError(f"{self.name}: the cold-start module needs 'memory.centroids'")
            cs = self.memory.config
            self.memory = ClusterMemory(cs, state["memory.centroids"], self.obs_dim)
            if "memory.prior_values" in state:  # older files: no prior, an empty memory
                self.memory.set_prior(state["memory.prior_values"], state["memory.prior_counts"])
                self.memory.reset()


def _as(cls: type, value: Any) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{cls.__name__}: expected a mapping or a {cls.__name__}, got {value!r}")
    return cls(**value)
