"""Offline HR@K / MRR@K for the click and long-view targets, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from agents.evaluate.offline import offline_metrics

# 4 logged requests over 3 candidate slots
SCORES = np.array(
    [
        [0.1, 0.8, 0.3],  # logged slot 1: rank 0
        [0.9, 0.2, 0.2],  # logged slot 2: 0.9 higher, tie with slot 1 ahead -> rank 2
        [0.5, 0.5, -np.inf],  # logged slot 1: tie with slot 0 ahead -> rank 1 (not clicked)
        [0.3, 0.1, 0.2],  # logged slot 0: rank 0
    ]
)
LOG = pd.DataFrame(
    {"slot": [1, 2, 1, 0], "click": [1, 1, 0, 1], "watch_ms": [120_000, 5_000, 0, 60_000]}
)


def by(frame: pd.DataFrame, target: str, k: int) -> pd.Series:
    return frame[(frame["target"] == target) & (frame["k"] == k)].iloc[0]


def test_click_and_long_view_hand_computed() -> None:
    out = offline_metrics(SCORES, LOG, k=(1, 2, 3), long_view_s=60.0)
    assert len(out) == 6 and list(out.columns) == ["target", "k", "n_targets", "hr", "mrr"]
    # click targets: rows 0, 1, 3 with ranks 0, 2, 0
    assert by(out, "click", 1)["n_targets"] == 3
    assert by(out, "click", 1)["hr"] == pytest.approx(2 / 3)
    assert by(out, "click", 3)["hr"] == pytest.approx(1.0)
    assert by(out, "click", 2)["mrr"] == pytest.approx(2 / 3)
    assert by(out, "click", 3)["mrr"] == pytest.approx((1 + 1 / 3 + 1) / 3)
    # long views (>= 60 s): rows 0 and 3, both rank 0
    assert by(out, "long_view", 1)["n_targets"] == 2
    assert by(out, "long_view", 1)["hr"] == 1.0 and by(out, "long_view", 1)["mrr"] == 1.0


def test_threshold_units_and_columns() -> None:
    in_s = LOG.drop(columns="watch_ms").assign(watch_s=LOG["watch_ms"] / 1000)
    out = offline_metrics(SCORES, in_s, k=(1,), long_view_s=100.0)
    assert by(out, "long_view", 1)["n_targets"] == 1
    none = offline_metrics(SCORES, LOG, k=(1,), long_view_s=1e6)
    assert by(none, "long_view", 1)["n_targets"] == 0
    assert math.isnan(by(none, "long_view", 1)["hr"])
    renamed = LOG.rename(columns={"slot": "pos", "watch_ms": "dwell_ms"})
    same = offline_metrics(SCORES, renamed, k=(1,), slot_col="pos", watch_col="dwell_ms")
    assert by(same, "click", 1)["hr"] == pytest.approx(2 / 3)


def test_offline_errors() -> None:
    with pytest.raises(ValueError, match="len\\(log_df\\)"):
        offline_metrics(SCORES[:2], LOG)
    with pytest.raises(KeyError, match="watch"):
        offline_metrics(SCORES, LOG.drop(columns="watch_ms"))
    with pytest.raises(ValueError, match="long_view_s"):
        offline_metrics(SCORES, LOG, long_view_s=-1.0)
