"""Stable-baselines3 wiring for the Dict observation of :mod:`liveenv`.

Extension points only (no fork of the algorithms):

* :class:`RoomScoringExtractor` scores every room slot with one shared MLP
  over (room features, followed flag, user features, time, the user's taste
  from the clicked history and its match with the room) and pools the
  room encodings of the live slots into a state vector for the critic; its
  output is ``[slot scores (R, zero on empty slots), room_mask (R), pooled (hidden)]``;
* the actor head (:class:`_SlotLogits`) turns the slot scores into logits and
  gives empty slots a logit of :data:`MASKED_LOGIT`, so the actor is
  permutation-equivariant over slots and never picks an empty slot, with or
  without sb3-contrib's action masks;
* :class:`RoomScoringPolicy` is sb3-contrib's ``MaskableActorCriticPolicy``
  with that extractor and head (masks also come from ``env.action_masks()``);
  :class:`RoomScoringActorCriticPolicy` is the same for plain PPO, which has
  no action masks: the masking inside the network (the observation carries
  ``room_mask``) is what keeps it on live rooms;
* :class:`SB3Policy` wraps a trained model as a :class:`policies.base.Policy`
  for :func:`agents.evaluate.online.evaluate`; it saves the model's zip inside the
  policy file.
"""

from __future__ import annotations

import io
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from policies.base import Obs, Policy, PolicyOutput, as_batch
from policies.onelive.features import scaled_room_stats

#: Logit of an empty slot: exp(-1e4) is exactly 0 in float32, and no NaN appears.
MASKED_LOGIT = -1e4
ALGORITHMS: dict[str, type] = {"MaskablePPO": MaskablePPO, "PPO": PPO}


class RoomScoringExtractor(BaseFeaturesExtractor):
    """Features ``[scores (R), room_mask (R), pooled state (hidden)]`` of an observation.

    Per slot, one MLP reads the room row (statistics on a log scale: raw rates
    are ~100 times smaller than ``log_viewers`` and an MLP on raw values
    follows the viewers alone), the followed flag, the user features, the
    time, the user's taste (watch-weighted mean of the clicked content in
    ``history_content``) and the cosine of that taste with the room's content.
    """

    def __init__(self, observation_space: gym.spaces.Dict, hidden: int = 64) -> None:
        n_rooms, room_dim = observation_space["rooms"].shape
        self.obs_dim = observation_space["history_content"].shape[-1]
        ctx_dim = observation_space["user"].shape[0] + observation_space["time"].shape[0]
        super().__init__(observation_space, features_dim=2 * n_rooms + hidden)
        self.n_rooms = n_rooms
        self.room_mlp = nn.Sequential(
            nn.Linear(room_dim + 2 + ctx_dim + self.obs_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.score = nn.Linear(hidden, 1)

    def _rooms(self, rooms: torch.Tensor) -> torch.Tensor:
        """Room rows with the statistics on a log scale (see the class doc)."""
        o = self.obs_dim
        return torch.cat([rooms[..., : 2 * o], scaled_room_stats(rooms[..., 2 * o :])], -1)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        rooms = self._rooms(obs["rooms"])  # (B, R, F)
        hist = obs["history_content"] * obs["history_mask"][..., None]  # (B, H, o)
        weight = 0.2 + torch.log1p(obs["history_feedback"][..., 1].clamp_min(0.0))  # (B, H)
        taste = F.normalize((hist * weight[..., None]).sum(1), dim=-1)  # (B, o)
        content = F.normalize(rooms[..., : self.obs_dim], dim=-1)  # (B, R, o)
        match = torch.einsum("bo,bro->br", taste, content)[..., None]  # (B, R, 1)
        ctx = torch.cat([obs["user"], obs["time"], taste], dim=-1)  # (B, U+T+o)
        ctx = ctx[:, None, :].expand(-1, rooms.shape[1], -1)  # (B, R, U+T+o)
        h = self.room_mlp(
            torch.cat([rooms, obs["room_followed"][..., None], match, ctx], dim=-1)
        )  # (B, R, H)
        mask = obs["room_mask"].float()  # (B, R)
        scores = self.score(h).squeeze(-1) * mask  # (B, R)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)  # (B, H)
        return torch.cat([scores, mask, pooled], dim=-1)


class _SlotLogits(nn.Module):
    """The actor head: slot scores as logits, :data:`MASKED_LOGIT` on empty slots."""

    def __init__(self, n_rooms: int) -> None:
        super().__init__()
        self.n_rooms = n_rooms

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        r = self.n_rooms
        scores, mask = latent[:, :r], latent[:, r : 2 * r]  # (B, R), (B, R)
        return torch.where(mask > 0.5, scores, torch.full_like(scores, MASKED_LOGIT))


def _room_scoring_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("features_extractor_class", RoomScoringExtractor)
    kwargs.setdefault("net_arch", {"pi": [], "vf": [64]})
    return kwargs


class RoomScoringPolicy(MaskableActorCriticPolicy):
    """MaskablePPO policy whose actor scores room slots with a shared MLP."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_room_scoring_kwargs(kwargs))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self.action_net = _SlotLogits(int(self.action_space.n))
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )


class RoomScoringActorCriticPolicy(ActorCriticPolicy):
    """Plain-PPO policy with the same slot-scoring actor; empty slots masked in the network."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_room_scoring_kwargs(kwargs))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self.action_net = _SlotLogits(int(self.action_space.n))
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )


class SB3Policy(Policy):
    """A trained SB3 ``MaskablePPO`` or ``PPO`` model as a :class:`Policy`.

    Acts greedily (``deterministic=True``) on one observation or a batch;
    MaskablePPO gets the batch's ``room_mask`` as its action masks. One room
    per request (the SB3 agents here are trained with ``slate_size = 1``).
    """

    default_name = "sb3"

    def __init__(
        self,
        model: Any = None,
        name: str | None = None,
        slate_size: int = 1,
        algo: str | None = None,
    ) -> None:
        super().__init__(name, slate_size)
        if slate_size != 1:
            raise ValueError(f"slate_size={slate_size} is invalid: SB3Policy recommends one room")
        algo = algo or (type(model).__name__ if model is not None else "MaskablePPO")
        if algo not in ALGORITHMS:
            raise ValueError(f"algo={algo!r} is unknown; allowed: {sorted(ALGORITHMS)}")
        self.algo, self.model = algo, model

    def act(self, obs: Obs, env: Any = None) -> PolicyOutput:
        if self.model is None:
            raise ValueError(f"{self.name}: no model loaded")
        batch = as_batch(obs)
        kwargs = (
            {"action_masks": batch["room_mask"].astype(bool)} if self.algo == "MaskablePPO" else {}
        )
        with torch.no_grad():
            action, _ = self.model.predict(batch, deterministic=True, **kwargs)
        return PolicyOutput(np.asarray(action, dtype=np.int64).reshape(-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "algo": self.algo}

    def get_state(self) -> dict[str, np.ndarray]:
        if self.model is None:
            return {}
        buf = io.BytesIO()
        self.model.save(buf)
        return {"sb3_zip": np.frombuffer(buf.getvalue(), dtype=np.uint8)}

    def set_state(self, state: Any) -> None:
        if set(state) - {"sb3_zip"}:
            raise ValueError(
                f"{self.name}: unknown state arrays {sorted(set(state) - {'sb3_zip'})}"
            )
        if "sb3_zip" in state:
            raw = np.asarray(state["sb3_zip"], dtype=np.uint8).tobytes()
            self.model = ALGORITHMS[self.algo].load(io.BytesIO(raw), device="cpu")
