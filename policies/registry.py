"""The policy registry: every policy the workbench knows by name.

The command line, the demo, the evaluation, the sweeps, the dashboard and the
behaviour policies of the logs all read this one table. A *baseline* is built
from its class by name and needs no training; a *learned* policy is the
``policy.npz`` file (:meth:`policies.base.Policy.save`) that its training stage
leaves in ``checkpoints/<folder>/`` of a run directory.

Adding a policy is one new file (its :class:`~policies.base.Policy` subclass)
and one line here, for example::

    PolicyEntry("recent", "the room whose streamer the user watched last", RecentPolicy),
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policies.base import Policy
from policies.baselines import EngagingPolicy, OraclePolicy, PopularPolicy, RandomPolicy

__all__ = [
    "POLICIES",
    "PolicyEntry",
    "baseline_names",
    "describe",
    "learned_folders",
    "make_baseline",
]


@dataclass(frozen=True)
class PolicyEntry:
    """One registered policy."""

    name: str
    about: str  # what the name means, in a line (reports and the dashboard show it)
    baseline: type[Policy] | None = None  # built by name, no training
    folder: str | None = None  # learned: checkpoints/<folder>/policy.npz of a run
    privileged: bool = False  # reads the environment's hidden state (not a recommender)

    def __post_init__(self) -> None:
        if (self.baseline is None) == (self.folder is None):
            raise ValueError(f"policy {self.name!r}: give a baseline class or a folder, not both")


POLICIES: dict[str, PolicyEntry] = {e.name: e for e in (
    PolicyEntry("random", "a live room drawn uniformly at random (the floor)", RandomPolicy),
    PolicyEntry("popular", "the live room with the most viewers now", PopularPolicy),
    PolicyEntry("engaging", "the live room with the highest like, comment and gift rates, "
                "weighted as the reward", EngagingPolicy),
    PolicyEntry("oracle", "the room of highest true expected reward (privileged upper bound)",
                OraclePolicy, privileged=True),
    PolicyEntry("cascade", "two-tower retrieval + multi-task ranker trained on the log",
                folder="cascade"),
    PolicyEntry("cascade_coldstart", "the cascade plus the cold-start user-cluster memory",
                folder="cascade_coldstart"),
    PolicyEntry("pretrained", "the OneLive generator after pretraining on the log",
                folder="generator"),
    PolicyEntry("aligned", "the pretrained generator aligned to the run's reward weights",
                folder="aligned"),
)}  # fmt: skip


def baseline_names(privileged: bool = True) -> tuple[str, ...]:
    """The baselines, in registry order (without the privileged ones if asked)."""
    return tuple(
        n
        for n, e in POLICIES.items()
        if e.baseline is not None and (privileged or not e.privileged)
    )


def learned_folders() -> dict[str, str]:
    """Learned policy name -> its folder under ``checkpoints/``."""
    return {n: e.folder for n, e in POLICIES.items() if e.folder is not None}


def make_baseline(kind: str, **kwargs: Any) -> Policy:
    """A baseline by name (see :data:`POLICIES`)."""
    entry = POLICIES.get(kind)
    if entry is None or entry.baseline is None:
        raise ValueError(f"baseline {kind!r} is unknown; allowed: {list(baseline_names())}")
    return entry.baseline(**kwargs)


def describe(name: str) -> str:
    """What a policy name means ('' for a name the registry does not know)."""
    entry = POLICIES.get(name)
    return entry.about if entry else ""
