"""Paired per-seed differences of an evaluation table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.paired import PairedArgs, main, paired_differences


def _table(gap: float, seeds: int = 8) -> pd.DataFrame:
    """Policy b has a large day-to-day spread; a = b + gap + small noise, seed by seed."""
    rng = np.random.default_rng(0)
    day = rng.normal(0.0, 2.0, seeds)
    rows = [{"policy": p, "seed": s, "breakdown": "all", "group": "all",
             "expected_return": day[s] + (gap + rng.normal(0, 0.01) if p == "a" else 0.0)}
            for s in range(seeds) for p in ("a", "b")]  # fmt: skip
    rows.append({"policy": "a", "seed": 0, "breakdown": "user_cohort", "group": "new",
                 "expected_return": 99.0})  # cohort rows are not the seed's total  # fmt: skip
    return pd.DataFrame(rows)


def test_pairing_removes_the_day_to_day_spread() -> None:
    df = paired_differences(_table(0.3), [("a", "b")])
    r = df.iloc[0]
    assert r.n_seeds == 8 and r.a_ahead == 8
    assert 0.2 < r.lo < r.a_minus_b < r.hi < 0.4 and r.hi - r.lo < 0.1  # unpaired: spread 2
    back = paired_differences(_table(0.3), [("b", "a")]).iloc[0]
    assert back.a_minus_b == pytest.approx(-r.a_minus_b) and back.a_ahead == 0


def test_bad_pairs_and_unknown_policies_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="A:B"):
        PairedArgs(table="t.csv", pairs=("ab",))
    with pytest.raises(ValueError, match="'c' is not in the table"):
        paired_differences(_table(0.3), [("a", "c")])
    path = tmp_path / "table.csv"
    _table(0.3).to_csv(path, index=False)
    out = main(["--table", str(path), "--pairs", "a:b", "--metrics", "expected_return"])
    assert len(out) == 1 and out.iloc[0].a_minus_b == pytest.approx(0.3, abs=0.05)
