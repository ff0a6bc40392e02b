"""The behaviour policies of :mod:`agents.logs.behaviour` over a whole batch.

On the batched path (:class:`liveenv.batched.BatchedLiveEnv`) every request of a
batch shares one room table, whose first ``n_live`` slots are the live rooms.
Each policy here answers a batch observation with ``(B, K)`` slots and their
``(B, K)`` propensities, with the same law as the one-request policy of the
same name (the tests compare them row by row): ``random`` uniform without
replacement, ``popular`` the most-viewed rooms, ``platform`` position by
position from ``(1 - epsilon) softmax(score / T) + epsilon uniform``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.logs.behaviour import VIEWERS, PlatformPolicy, draw_positions
from agents.logs.schema import room_emb_dim

__all__ = ["BATCH_BEHAVIOURS", "BatchPlatform", "BatchPopular", "BatchRandom", "batch_behaviour"]


@dataclass
class BatchRandom:
    """Uniform over the live rooms (a slate: uniform without replacement)."""

    seed: int = 0
    name: str = "random"
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def __call__(
        self, obs: dict[str, np.ndarray], n_live: int, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        b = len(obs["user"])
        if k == 1:
            slots = self.rng.integers(0, n_live, size=(b, 1))
        else:
            slots = np.argsort(self.rng.random((b, n_live)), axis=1)[:, :k]
        return slots, np.broadcast_to(1.0 / (n_live - np.arange(k)), (b, k))


@dataclass
class BatchPopular:
    """The live rooms with the most viewers now (ties: lowest slot first)."""

    name: str = "popular"

    def __call__(
        self, obs: dict[str, np.ndarray], n_live: int, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        b, o = len(obs["user"]), room_emb_dim(obs)
        viewers = obs["rooms"][0, :n_live, 2 * o + VIEWERS]  # one table for the whole batch
        top = np.argsort(-viewers, kind="stable")[:k]
        return np.broadcast_to(top, (b, k)), np.ones((b, k))


@dataclass
class BatchPlatform(PlatformPolicy):
    """:class:`~agents.logs.behaviour.PlatformPolicy` for a batch."""

    def batch_probabilities(self, obs: dict[str, np.ndarray], n_live: int) -> np.ndarray:
        """``(B, n_live)`` probability of each live slot at the top position."""
        o = room_emb_dim(obs)
        rooms = obs["rooms"][0, :n_live]  # (n, d): the shared table
        score = rooms[:, 2 * o + VIEWERS][None] + self.follow_weight * obs["room_followed"][
            :, :n_live
        ].astype(np.float64)  # (B, n)
        mask = obs["history_mask"].astype(bool)  # (B, H)
        has = mask.any(axis=1)
        if has.any():
            counts = np.maximum(mask.sum(axis=1, keepdims=True), 1)
            taste = (obs["history_content"] * mask[..., None]).sum(axis=1) / counts  # (B, o)
            content = rooms[:, :o]
            norm = np.linalg.norm(taste, axis=1)[:, None] * np.linalg.norm(content, axis=1)[None]
            match = (taste @ content.T) / np.maximum(norm, 1e-9)
            score = score + self.taste_weight * np.where(has[:, None], match, 0.0)
        z = np.exp((score - score.max(axis=1, keepdims=True)) / self.temperature)
        return (1 - self.epsilon) * z / z.sum(axis=1, keepdims=True) + self.epsilon / n_live

    def __call__(
        self, obs: dict[str, np.ndarray], n_live: int, k: int
    ) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        return draw_positions(self.batch_probabilities(obs, n_live), k, self.rng)


BATCH_BEHAVIOURS: dict[str, type] = {
    "random": BatchRandom,
    "popular": BatchPopular,
    "platform": BatchPlatform,
}


def batch_behaviour(name: str, seed: int = 0) -> Any:
    """The batched behaviour policy ``name`` (one of :data:`BATCH_BEHAVIOURS`)."""
    if name not in BATCH_BEHAVIOURS:
        raise ValueError(
            f"policy={name!r} has no batched version; allowed: {list(BATCH_BEHAVIOURS)}"
        )
    cls = BATCH_BEHAVIOURS[name]
    return cls(seed=seed) if "seed" in cls.__dataclass_fields__ else cls()
