"""Paired per-seed differences of an evaluation table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.evaluate.paired import PairedArgs, main, merge_tables, paired_differences


def _table(gap: float, seeds: int = 8) -> pd.DataFrame:
    """Policy b has a large day-to-day spread; a = b + gap + small noise, seed by seed."""
    rng = np.random.default_rng(0)
    day = rng.normal(0.0, 2.0, seeds)
    rows = [
        {
            "policy": p,
            "seed": s,
            "breakdown": "all",
            "group": "all",
            "expected_return": day[s] + (gap + rng.normal(0, 0.01) if p == "a" else 0.0),
        }
        for s in range(seeds)
        for p in ("a", "b")
    ]
    rows.append(
        {
            "policy": "a",
            "seed": 0,
            "breakdown": "user_cohort",
            "group": "new",
            "expected_return": 99.0,
        }
    )  # cohort rows are not the seed's total
    return pd.DataFrame(rows)


def test_pairing_removes_the_day_to_day_spread() -> None:
    df = paired_differences(_table(0.3), [("a", "b")])
    r = df.iloc[0]
    assert r.n_seeds == 8 and r.a_ahead == 8
    assert 0.2 < r.lo < r.a_minus_b < r.hi < 0.4 and r.hi - r.lo < 0.1  # unpaired: spread 2
    back = paired_differences(_table(0.3), [("b", "a")]).iloc[0]
    assert back.a_minus_b == pytest.approx(-r.a_minus_b) and back.a_ahead == 0
    # each side's own interval carries the day-to-day spread: wide, overlapping
    assert r.a_lo < r.b_mean < r.a_hi and not r.apart
    assert r.a_mean - r.b_mean == pytest.approx(r.a_minus_b)


def test_intervals_apart_once_the_gap_beats_the_spread() -> None:
    r = paired_differences(_table(20.0), [("a", "b")]).iloc[0]
    assert r.apart and r.a_lo > r.b_hi


def test_tables_of_disjoint_seeds_merge_and_clashes_are_refused() -> None:
    t = _table(0.3, seeds=8)
    first, second = t[t["seed"] < 4], t[t["seed"] >= 2].replace({"policy": {"a": "a2"}})
    merged = merge_tables([first, second], rename={"a2": "a"})  # seeds 2, 3 given twice
    pd.testing.assert_frame_equal(
        merged.sort_values(["policy", "seed", "group"]).reset_index(drop=True),
        t.sort_values(["policy", "seed", "group"]).reset_index(drop=True),
    )
    clash = second.assign(expected_return=second["expected_return"] + 1.0)
    with pytest.raises(ValueError, match="disagree on policy 'a2'"):
        merge_tables([first.replace({"policy": {"a": "a2"}}), clash])


def test_bad_pairs_and_unknown_policies_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="A:B"):
        PairedArgs(table="t.csv", pairs=("ab",))
    with pytest.raises(ValueError, match="'c' is not in the table"):
        paired_differences(_table(0.3), [("a", "c")])
    path = tmp_path / "table.csv"
    _table(0.3).to_csv(path, index=False)
    out = main(["--table", str(path), "--pairs", "a:b", "--metrics", "expected_return"])
    assert len(out) == 1 and out.iloc[0].a_minus_b == pytest.approx(0.3, abs=0.05)
    other = tmp_path / "renamed.csv"
    _table(0.3).replace({"policy": {"a": "z"}}).to_csv(other, index=False)
    twice = main(
        [
            "--table",
            str(path),
            str(other),
            "--rename",
            "z=a",
            "--pairs",
            "a:b",
            "--metrics",
            "expected_return",
        ]
    )
    assert twice.iloc[0].n_seeds == 8  # the same rows given twice count once
