"""agents.evaluate.compare: settings are refused when bad; episodes resume only for the same settings."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from agents.evaluate.compare import CompareArgs, compare
from policies.baselines import PopularPolicy

TINY = {"users.n_users": 2000, "streamers.n_streamers": 150, "horizon_hours": 1, "start_hour": 20}


def _args(tmp_path, **kw) -> CompareArgs:
    path = tmp_path / "pop.json"
    if not path.exists():
        PopularPolicy().save(path)
    base = dict(
        policies={"pop": str(path)},
        baselines=(),
        overrides=TINY,
        seeds=(0,),
        steps=25,
        out=str(tmp_path / "cmp"),
        figures=False,
    )
    return CompareArgs(**{**base, **kw})


def test_bad_settings_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="--generators and/or --policies"):
        CompareArgs()
    with pytest.raises(ValueError, match="workers=0"):
        _args(tmp_path, workers=0)


def test_reruns_resume_and_other_settings_are_refused(tmp_path) -> None:
    first = compare(_args(tmp_path))
    episodes = tmp_path / "cmp" / "episodes"
    spec = json.loads((episodes / "spec.json").read_text())
    assert spec["steps"] == 25 and set(spec["sha256"]) == {str(tmp_path / "pop.json")}
    stored = sorted(p.name for p in episodes.glob("*.parquet"))
    assert len(stored) == 3  # pop, random, oracle on seed 0
    more = compare(_args(tmp_path, seeds=(0, 1)))  # plays seed 1 only
    assert len(list(episodes.glob("*.parquet"))) == 6
    pd.testing.assert_frame_equal(
        more.table[more.table["seed"] == 0].reset_index(drop=True),
        first.table.reset_index(drop=True),
    )
    with pytest.raises(ValueError, match=r"other settings \(steps: \[25\] there, \[30\] now\)"):
        compare(_args(tmp_path, steps=30))
    restarted = compare(_args(tmp_path, steps=30, resume=False))
    assert len(list(episodes.glob("*.parquet"))) == 3
    assert restarted.table["n_impressions"].max() == 30
