"""Simple behaviour policies for generating logs, with their propensities.

A behaviour policy here is any callable ``policy(obs, env) -> action`` or
``-> (action, propensity)``, or an object with such an ``act(obs, env)``
method. The propensity of a row is the probability that the policy chose
that room at that slate position given the rooms above it (for a single
room, the probability of the action); the product over a request's rows is
the probability of the whole slate. Policies that give none record NaN.

The proper decision makers live in ``policies/``; these three only make logs:

* ``random``: uniform over the live rooms (propensity ``1 / (n_live - pos)``);
* ``popular``: the rooms with the most live viewers now (propensity 1);
* ``platform``: a stand-in for a production recommender, see :class:`PlatformPolicy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.logs.schema import room_emb_dim
from liveenv.world import ROOM_STAT_COLUMNS
from policies.registry import baseline_names, make_baseline

Action = int | np.ndarray
PolicyFn = Callable[[dict[str, np.ndarray], Any], Action | tuple[Action, Any]]
VIEWERS = ROOM_STAT_COLUMNS.index("log_viewers")


def followed(obs: dict[str, np.ndarray]) -> np.ndarray:
    """``(max_rooms,)`` 1 where the user follows the slot's streamer."""
    if "room_followed" in obs:
        return np.asarray(obs["room_followed"], dtype=np.float32)
    return obs["rooms"][:, -1]  # older layouts kept it as the last room column


def _dims(obs: dict[str, np.ndarray], env: Any) -> tuple[np.ndarray, int, int]:
    live = np.flatnonzero(obs["room_mask"])
    return live, int(env.unwrapped.config.slate_size), room_emb_dim(obs)


def draw_positions(
    p: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` columns per row of ``p`` (B, n) without replacement, position by
    position (one uniform per row and position), and the probability of each given
    the ones above it: the slates of :class:`PlatformPolicy`, one request or a batch."""
    p = p.copy()
    b = len(p)
    slots, props = np.empty((b, k), np.int64), np.empty((b, k))
    rows = np.arange(b)
    for pos in range(k):
        total = p.sum(axis=1)
        u = rng.random(b) * total
        i = np.minimum((np.cumsum(p, axis=1) <= u[:, None]).sum(axis=1), p.shape[1] - 1)
        slots[:, pos], props[:, pos] = i, p[rows, i] / total
        p[rows, i] = 0.0
    return slots, props


def _as_action(slots: np.ndarray, k: int) -> Action:
    return int(slots[0]) if k == 1 else slots.astype(np.int64)


@dataclass
class RandomPolicy:
    """Uniform over the live rooms (a slate: uniform without replacement)."""

    seed: int = 0
    name: str = "random"
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, obs: dict[str, np.ndarray], env: Any) -> tuple[Action, np.ndarray]:
        live, k, _ = _dims(obs, env)
        slots = self.rng.choice(live, size=k, replace=False)
        return _as_action(slots, k), 1.0 / (len(live) - np.arange(k))


@dataclass
class PopularPolicy:
    """The live rooms with the most viewers now (ties: lowest slot first)."""

    name: str = "popular"

    def __call__(self, obs: dict[str, np.ndarray], env: Any) -> tuple[Action, np.ndarray]:
        live, k, o = _dims(obs, env)
        viewers = obs["rooms"][live, 2 * o + VIEWERS]
        slots = live[np.argsort(-viewers, kind="stable")[:k]]
        return _as_action(slots, k), np.ones(k)


@dataclass
class PlatformPolicy:
    """A stand-in for a production recommender, from the observation only.

    Score of a live room: ``log_viewers + follow_weight * followed +
    taste_weight * cos(mean of the user's history content, room content)``,
    i.e. popularity, the social graph and a content-based match, the three
    signals a platform's ranker leans on. Rooms are drawn from
    ``(1 - epsilon) softmax(score / temperature) + epsilon uniform`` (position
    by position for a slate), so every live room has a known, positive
    propensity, which off-policy estimators need.
    """

    temperature: float = 1.0
    follow_weight: float = 2.0
    taste_weight: float = 2.0
    epsilon: float = 0.1
    seed: int = 0
    name: str = "platform"
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        if self.temperature <= 0 or not 0 <= self.epsilon <= 1:
            raise ValueError(
                f"PlatformPolicy: temperature={self.temperature} must be > 0 and "
                f"epsilon={self.epsilon} in [0, 1]"
            )
        self.rng = np.random.default_rng(self.seed)

    def probabilities(self, obs: dict[str, np.ndarray], env: Any) -> tuple[np.ndarray, np.ndarray]:
        """The live slots and the probability of choosing each (top position)."""
        live, _, o = _dims(obs, env)
        rooms = obs["rooms"][live]
        score = rooms[:, 2 * o + VIEWERS] + self.follow_weight * followed(obs)[live]
        mask = obs["history_mask"].astype(bool)
        if mask.any():
            taste = obs["history_content"][mask].mean(axis=0)
            norm = np.linalg.norm(taste) * np.linalg.norm(rooms[:, :o], axis=1)
            score = score + self.taste_weight * (rooms[:, :o] @ taste) / np.maximum(norm, 1e-9)
        z = np.exp((score - score.max()) / self.temperature)
        p = (1 - self.epsilon) * z / z.sum() + self.epsilon / len(live)
        return live, p

    def __call__(self, obs: dict[str, np.ndarray], env: Any) -> tuple[Action, np.ndarray]:
        live, p = self.probabilities(obs, env)
        k = int(env.unwrapped.config.slate_size)
        slots, props = draw_positions(p[None], k, self.rng)
        return _as_action(live[slots[0]], k), props[0]


#: behaviour policies that log their propensities (for off-policy estimates); any
#: other baseline of :mod:`policies.registry` is accepted by name too
BUILTIN: dict[str, type] = {
    "random": RandomPolicy,
    "popular": PopularPolicy,
    "platform": PlatformPolicy,
}


def resolve_policy(policy: str | PolicyFn | Any, seed: int = 0) -> tuple[PolicyFn, str]:
    """A callable ``(obs, env) -> action | (action, propensity)`` and its name.

    ``policy``: a built-in name, a callable ``(obs, env)``, or an object with
    ``act(obs, env)`` such as a :class:`policies.base.Policy` (reset with
    ``seed``; given ``env`` only when its ``requires_env`` is true, as the
    evaluation harness does; its ``PolicyOutput`` is unpacked by
    :func:`split_action`)."""
    if isinstance(policy, str):
        if policy in BUILTIN:
            cls = BUILTIN[policy]
            fn = cls(seed=seed) if "seed" in cls.__dataclass_fields__ else cls()
            return fn, fn.name
        if policy not in baseline_names():
            raise ValueError(
                f"policy={policy!r} is unknown; allowed: "
                f"{sorted({*BUILTIN, *baseline_names()})} or a callable"
            )
        policy = make_baseline(policy)  # any registered baseline, through its act()
    act = getattr(policy, "act", None)
    if callable(act):
        if callable(getattr(policy, "reset", None)):
            policy.reset(seed)
        privileged = bool(getattr(policy, "requires_env", True))

        def fn(obs: dict[str, np.ndarray], env: Any) -> Any:
            return act(obs, env if privileged else None)

    elif callable(policy):
        fn = policy
    else:
        raise ValueError(f"policy={policy!r} is neither a name, a callable nor has act(obs, env)")
    name = getattr(policy, "name", None) or getattr(policy, "__name__", type(policy).__name__)
    return fn, str(name)


def split_action(out: Any) -> tuple[Action, Any]:
    """``(action, propensity)`` from a policy's output: an action, a pair
    ``(action, propensity)``, or a ``PolicyOutput`` of one request (propensity
    None where the policy gives none). A slate action must be an array or a
    list, not a tuple."""
    if hasattr(out, "slots") and callable(getattr(out, "action", None)):
        prop = getattr(out, "propensities", None)
        return out.action(0), None if prop is None else np.asarray(prop)[0]
    if isinstance(out, tuple) and len(out) == 2:
        return out[0], out[1]
    return out, None
