"""Stable-baselines3 wiring for the Dict observation of :mod:`liveenv`.

Extension points only (no fork of the algorithms):

* :class:`RoomScoringExtractor` scores every room slot with one shared MLP
  over (room features, followed flag, user features, time) and pools the
  room encodings of the live slots into a state vector for the critic;
* :class:`RoomScoringPolicy` is sb3-contrib's ``MaskableActorCriticPolicy``
  whose action logits are those per-slot scores (so the actor is
  permutation-equivariant over slots), with masks from ``env.action_masks()``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class RoomScoringExtractor(BaseFeaturesExtractor):
    """Features ``[score_1..score_R, pooled state (hidden)]`` of a LiveStreamEnv observation."""

    def __init__(self, observation_space: gym.spaces.Dict, hidden: int = 64) -> None:
        n_rooms, room_dim = observation_space["rooms"].shape
        ctx_dim = observation_space["user"].shape[0] + observation_space["time"].shape[0]
        super().__init__(observation_space, features_dim=n_rooms + hidden)
        self.n_rooms = n_rooms
        self.room_mlp = nn.Sequential(
            nn.Linear(room_dim + 1 + ctx_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.score = nn.Linear(hidden, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        rooms = obs["rooms"]  # (B, R, F)
        ctx = torch.cat([obs["user"], obs["time"]], dim=-1)  # (B, U+T)
        ctx = ctx[:, None, :].expand(-1, rooms.shape[1], -1)  # (B, R, U+T)
        h = self.room_mlp(
            torch.cat([rooms, obs["room_followed"][..., None], ctx], dim=-1)
        )  # (B, R, H)
        scores = self.score(h).squeeze(-1)  # (B, R)
        mask = obs["room_mask"][..., None]  # (B, R, 1)
        pooled = (h * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, H)
        return torch.cat([scores, pooled], dim=-1)


class _SlotLogits(nn.Module):
    """The actor head: the first ``n_rooms`` features are the slot logits."""

    def __init__(self, n_rooms: int) -> None:
        super().__init__()
        self.n_rooms = n_rooms

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return latent[:, : self.n_rooms]


class RoomScoringPolicy(MaskableActorCriticPolicy):
    """MaskablePPO policy whose actor scores room slots with a shared MLP."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", RoomScoringExtractor)
        kwargs.setdefault("net_arch", {"pi": [], "vf": [64]})
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self.action_net = _SlotLogits(int(self.action_space.n))
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
