"""Two-tower retrieval: a user tower and a room tower scored by a dot product.

User tower input: the request side of :mod:`policies.cascade.features` (user
features, time, history summary, the clicked-content taste and the newest
clicked content). Room tower input: the observed room row (30-s content,
pooled streamer embedding, live statistics). Both end in unit vectors; the
score of a room is ``e_u . e_r / temperature + b_r + follow_bonus * followed``:
``b_r`` a learned room bias from the room tower (a prior over rooms, which a
dot product of unit vectors cannot express), the follow bonus learned too
(the follow feed is the retrieval channel every platform has), optionally
plus a content-affinity term (see :class:`TwoTowerConfig`). Everything but
the follow bonus is one dot product of a user vector and a room vector.

Training (``agents/train/cascade.py``): in-batch softmax over logged clicks,
row ``i`` of a batch the positive of request ``i`` and the other clicked rooms
its negatives, with the logQ correction (subtract the log of each room's share
of the clicks: without it, frequent rooms are over-penalised as negatives and
the retrieval learns to avoid popular, good rooms).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class TwoTowerConfig:
    """user_dim / room_dim: input widths; hidden: MLP width; embed_dim: output
    width; temperature: softmax temperature of the dot product; affinity_dim /
    taste_offset: when ``affinity_dim > 0``, columns ``taste_offset ..
    taste_offset + affinity_dim`` of the user input (the clicked-content taste)
    and the first ``affinity_dim`` columns of the room input (the 30-s content)
    are appended, unit length, to the two embeddings, the user's scaled by a
    learned weight: a content-affinity term ``a * cos(taste, content)`` that
    keeps its meaning in every world (the raw embeddings do not)."""

    user_dim: int
    room_dim: int
    hidden: int = 128
    embed_dim: int = 32
    temperature: float = 0.1
    affinity_dim: int = 0
    taste_offset: int = 0

    def __post_init__(self) -> None:
        for name in ("user_dim", "room_dim", "hidden", "embed_dim"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(
                    f"TwoTowerConfig.{name}={value!r} is invalid: must be an integer >= 1"
                )
        if not 0 < self.temperature <= 10:
            raise ValueError(
                f"TwoTowerConfig.temperature={self.temperature!r} is invalid: must be in (0, 10]"
            )
        if self.affinity_dim < 0 or self.affinity_dim > self.room_dim:
            raise ValueError(
                f"TwoTowerConfig.affinity_dim={self.affinity_dim!r} is invalid: must be in "
                f"[0, room_dim={self.room_dim}]"
            )
        if not 0 <= self.taste_offset <= self.user_dim - self.affinity_dim:
            raise ValueError(
                f"TwoTowerConfig.taste_offset={self.taste_offset!r} is invalid: must be in "
                f"[0, user_dim - affinity_dim = {self.user_dim - self.affinity_dim}]"
            )


class Standardize(nn.Module):
    """``(x - mean) / std`` with statistics fit on training data (buffers, saved)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).float()
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-3))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def init_weights(module: nn.Module) -> None:
    """The cascade's one weight init: linear layers ~ N(0, 1/fan_in), zero bias."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=(1.0 / module.in_features) ** 0.5)
        nn.init.zeros_(module.bias)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear + GELU layers (no activation after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class TwoTower(nn.Module):
    def __init__(self, config: TwoTowerConfig) -> None:
        super().__init__()
        c = self.config = config
        self.user_norm, self.room_norm = Standardize(c.user_dim), Standardize(c.room_dim)
        self.user_tower = mlp([c.user_dim, c.hidden, c.hidden, c.embed_dim])
        self.room_tower = mlp([c.room_dim, c.hidden, c.hidden, c.embed_dim + 1])  # + room bias
        self.follow_bonus = nn.Parameter(torch.zeros(()))
        self.affinity = nn.Parameter(torch.ones(()))
        self.apply(init_weights)

    def user_embed(self, user: Tensor) -> Tensor:
        """``(B, E + 1 [+ a])`` user vector: unit embedding / temperature, 1 (for the
        room bias), and the weighted unit taste for the affinity term."""
        c = self.config
        e = F.normalize(self.user_tower(self.user_norm(user)), dim=-1) / c.temperature  # (B, E)
        parts = [e, torch.ones_like(e[:, :1])]
        if c.affinity_dim:
            taste = F.normalize(user[:, c.taste_offset : c.taste_offset + c.affinity_dim], dim=-1)
            parts.append(self.affinity * taste)  # (B, a)
        return torch.cat(parts, dim=-1)

    def room_embed(self, rooms: Tensor) -> Tensor:
        """``(..., E + 1 [+ a])`` room vector: unit embedding, the room's bias (a
        learned prior: popularity and quality), and the unit 30-s content."""
        c = self.config
        out = self.room_tower(self.room_norm(rooms))  # (..., E + 1)
        parts = [F.normalize(out[..., : c.embed_dim], dim=-1), out[..., c.embed_dim :]]
        if c.affinity_dim:
            parts.append(F.normalize(rooms[..., : c.affinity_dim], dim=-1))
        return torch.cat(parts, dim=-1)

    def in_batch_logits(self, user: Tensor, rooms: Tensor, followed: Tensor) -> Tensor:
        """``(B, B)`` logits of request ``i`` (row) against the clicked room of ``j``;
        ``followed[i, j]``: user ``i`` followed the streamer of room ``j`` at the time."""
        eu, er = self.user_embed(user), self.room_embed(rooms)  # (B, E'), (B, E')
        return eu @ er.T + self.follow_bonus * followed  # (B, B)

    def forward(self, user: Tensor, rooms: Tensor, followed: Tensor) -> Tensor:
        """``(B, R)`` retrieval scores of every slot: user ``(B, Du)``, rooms ``(B, R, Dr)``."""
        eu, er = self.user_embed(user), self.room_embed(rooms)  # (B, E'), (B, R, E')
        return torch.einsum("be,bre->br", eu, er) + self.follow_bonus * followed
