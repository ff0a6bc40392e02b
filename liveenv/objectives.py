"""The objectives of one impression and the reward weights over them.

This module is the one place that names the objectives and validates reward
weights; the environment, the reward model, the cascade's score fusion and
alignment all read them from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Feedback of one impression, in this order, in these units:
#: click (0/1), watch time (minutes), like (0/1), comment (0/1),
#: follow (0/1), gift value (platform price units).
OBJECTIVES: tuple[str, ...] = ("click", "watch_time", "like", "comment", "follow", "gift")
N_OBJECTIVES = len(OBJECTIVES)

#: Default weights: a mix in which clicks, watch minutes, interactions and
#: gifts all matter and none dominates under the default world.
DEFAULT_WEIGHTS: dict[str, float] = {
    "click": 0.5,
    "watch_time": 0.1,
    "like": 1.0,
    "comment": 1.0,
    "follow": 3.0,
    "gift": 0.02,
}

WeightsLike = Mapping[str, float] | Sequence[float] | np.ndarray


def as_weight_vector(weights: WeightsLike | None, field: str = "reward_weights") -> np.ndarray:
    """Validate ``weights`` (a name -> value mapping or a sequence in
    :data:`OBJECTIVES` order) and return a float64 vector.

    A mapping may name a subset of the objectives; the others keep their
    default weight. Unknown names, a wrong length, or a negative or non-finite
    weight raise ``ValueError`` naming the field, the weight, its value and the
    allowed range ``[0, inf)``. Weights are non-negative so that every objective
    is something to gain, and a response with zero feedback (a masked action
    under ``masked_action="skip"``) earns the lowest reward there is.
    """
    if weights is None:
        return np.array([DEFAULT_WEIGHTS[k] for k in OBJECTIVES], dtype=np.float64)
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(OBJECTIVES))
        if unknown:
            raise ValueError(
                f"{field}: unknown objective name(s) {unknown}; allowed names are {list(OBJECTIVES)}"
            )
        merged = {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in weights.items()}}
        vec = np.array([merged[k] for k in OBJECTIVES], dtype=np.float64)
    else:
        vec = np.asarray(weights, dtype=np.float64).reshape(-1)
        if vec.shape[0] != N_OBJECTIVES:
            raise ValueError(
                f"{field}: got {vec.shape[0]} weights {vec.tolist()}; expected exactly "
                f"{N_OBJECTIVES}, one per objective in the order {list(OBJECTIVES)}"
            )
    bad = ~np.isfinite(vec) | (vec < 0)
    if bad.any():
        i = int(np.argmax(bad))
        what = "non-finite" if not np.isfinite(vec[i]) else "negative"
        raise ValueError(
            f"{field}[{OBJECTIVES[i]!r}]={float(vec[i])!r} is invalid ({what}): each weight "
            f"must be a finite number in [0, inf); got {vec.tolist()}"
        )
    return vec


def weights_from_reset_options(
    options: Mapping[str, object] | None, current: np.ndarray
) -> np.ndarray:
    """The reward weights after ``reset(options=...)``: ``options["reward_weights"]``
    when given, else ``current``. ``options`` must be ``None`` or a mapping; any
    other option is refused by name."""
    if options is None:
        return current
    if not isinstance(options, Mapping):
        raise TypeError(
            f"reset options={options!r} is invalid: must be None or a dict "
            "(allowed keys: ['reward_weights'])"
        )
    options = dict(options)
    weights = current
    if "reward_weights" in options:
        weights = as_weight_vector(options.pop("reward_weights"), "options.reward_weights")  # type: ignore[arg-type]
    if options:
        raise ValueError(
            f"reset options {sorted(options)} are unknown; allowed: ['reward_weights']"
        )
    return weights


def weights_dict(vec: np.ndarray) -> dict[str, float]:
    """The weight vector as a name -> value dict."""
    return {k: float(v) for k, v in zip(OBJECTIVES, vec, strict=True)}
