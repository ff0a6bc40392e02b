"""Baseline recommenders: random, most popular, most engaging, and the oracle.

All of them read the room table of the observation (see
:data:`liveenv.world.ROOM_STAT_COLUMNS` for its statistics columns) and only
ever choose slots whose ``room_mask`` is 1. For a slate of ``K`` they return
the top ``K`` distinct slots, best first; ties go to the lower slot index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from liveenv.config import ResponseConfig
from liveenv.objectives import OBJECTIVES, as_weight_vector
from liveenv.world import ROOM_STAT_COLUMNS
from policies.base import Obs, Policy, PolicyOutput, ScoringPolicy, as_batch, masked_top_k

_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def room_stat(rooms: np.ndarray, column: str) -> np.ndarray:
    """The named statistics column of a room table ``(..., R, 2o + 7)`` -> ``(..., R)``."""
    if column not in ROOM_STAT_COLUMNS:
        raise ValueError(f"column={column!r} is unknown; allowed: {list(ROOM_STAT_COLUMNS)}")
    offset = rooms.shape[-1] - len(ROOM_STAT_COLUMNS)
    return rooms[..., offset + ROOM_STAT_COLUMNS.index(column)]


def mean_gift_price(response: ResponseConfig | None = None) -> float:
    """Expected price of one gift under ``response`` (the default world if None)."""
    r = response or ResponseConfig()
    return float(np.dot(r.gift_prices, r.gift_price_probs))


class RandomPolicy(Policy):
    """Uniformly random live room(s), without repeats in a slate.

    Propensity of position ``j`` (0-based): ``1 / (n_live - j)``, the chance of
    that room given the rooms above it; their product is the slate's chance.

    ``rng`` is a ``np.random.Generator`` (or a seed for one); :meth:`reset`
    with a seed replaces it. The generator's state is saved with the policy,
    so a loaded policy continues the same stream.
    """

    default_name = "random"

    def __init__(
        self,
        rng: np.random.Generator | int | None = None,
        name: str | None = None,
        slate_size: int = 1,
        rng_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, slate_size)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        if rng_state is not None:  # restore a saved stream exactly
            kind = str(rng_state.get("bit_generator", "PCG64"))
            if kind not in _BIT_GENERATORS:
                raise ValueError(f"rng_state: bit_generator {kind!r} not in {_BIT_GENERATORS}")
            bit_gen = getattr(np.random, kind)()
            bit_gen.state = rng_state
            self.rng = np.random.Generator(bit_gen)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, obs: Obs, env: Any = None) -> PolicyOutput:
        batch = as_batch(obs)
        mask = batch["room_mask"]
        # the top K of i.i.d. uniform keys over live slots: a uniform ordered K-subset
        slots = masked_top_k(self.rng.random(mask.shape), mask, self.slate_size)
        n_live = mask.astype(bool).sum(axis=1, keepdims=True)
        prop = 1.0 / (n_live - np.arange(self.slate_size)[None, :])  # given the rooms above
        return self._format(slots, prop)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rng_state": self.rng.bit_generator.state}


class PopularPolicy(ScoringPolicy):
    """The room(s) with the most live viewers now (``log_viewers``)."""

    default_name = "popular"

    def scores(self, batch: dict[str, np.ndarray], env: Any = None) -> np.ndarray:
        return room_stat(batch["rooms"], "log_viewers")


class EngagingPolicy(ScoringPolicy):
    """The room(s) with the highest recent interaction rates, weighted as the reward.

    Score = ``w_like * like_rate + w_comment * comment_rate + w_gift *
    gift_value * gift_rate`` where the ``w`` come from ``reward_weights``
    (:func:`liveenv.objectives.as_weight_vector`; ``None``: the defaults) and
    ``gift_value`` turns a gift rate into value (default: the mean gift price
    of the default world), since the gift weight is per price unit.
    """

    default_name = "engaging"

    def __init__(
        self,
        reward_weights: Mapping[str, float] | Sequence[float] | None = None,
        gift_value: float | None = None,
        name: str | None = None,
        slate_size: int = 1,
    ) -> None:
        super().__init__(name, slate_size)
        self.weights = as_weight_vector(reward_weights, "reward_weights")
        self.gift_value = mean_gift_price() if gift_value is None else float(gift_value)
        if not np.isfinite(self.gift_value) or self.gift_value < 0:
            raise ValueError(f"gift_value={gift_value!r} is invalid: must be a finite number >= 0")

    def scores(self, batch: dict[str, np.ndarray], env: Any = None) -> np.ndarray:
        w = dict(zip(OBJECTIVES, self.weights.tolist(), strict=True))
        rooms = batch["rooms"].astype(np.float64)
        return (
            w["like"] * room_stat(rooms, "like_rate")
            + w["comment"] * room_stat(rooms, "comment_rate")
            + w["gift"] * self.gift_value * room_stat(rooms, "gift_rate")
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "reward_weights": self.weights.tolist(),
            "gift_value": self.gift_value,
        }


class OraclePolicy(ScoringPolicy):
    """Greedy on the environment's true expected utility of each slot.

    Privileged (``requires_env``): it reads ``env.unwrapped.oracle_utilities()``
    for the environment's *current* request, so it takes one observation (or a
    batch of one) and the env. The upper bound of evaluation; never a teacher.
    For a slate it takes the top ``K`` utilities (greedy, not slate-optimal).
    """

    requires_env = True
    default_name = "oracle"

    def scores(self, batch: dict[str, np.ndarray], env: Any = None) -> np.ndarray:
        if env is None:
            raise ValueError(f"{self.name}: the oracle needs env= (it is privileged)")
        if batch["room_mask"].shape[0] != 1:
            raise ValueError(
                f"{self.name}: the oracle answers the env's current request only; "
                f"got a batch of {batch['room_mask'].shape[0]}"
            )
        return np.asarray(env.unwrapped.oracle_utilities(), dtype=np.float64)[None]
