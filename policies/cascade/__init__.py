"""The cascade baseline: two-tower retrieval, a multi-task ranker, weighted score
fusion, and an optional user cold-start cluster memory.

Training lives in ``agents/train/cascade.py``; this package holds the models,
the features (shared by serving and training) and the policy.
"""

from __future__ import annotations

from policies.cascade.coldstart import ClusterMemory, ColdStartConfig
from policies.cascade.features import index_log, obs_from_log, pair_features
from policies.cascade.policy import CascadePolicy
from policies.cascade.ranker import MultiTaskRanker, RankerConfig
from policies.cascade.retrieval import TwoTower, TwoTowerConfig

__all__ = [
    "CascadePolicy",
    "ClusterMemory",
    "ColdStartConfig",
    "MultiTaskRanker",
    "RankerConfig",
    "TwoTower",
    "TwoTowerConfig",
    "index_log",
    "obs_from_log",
    "pair_features",
]
