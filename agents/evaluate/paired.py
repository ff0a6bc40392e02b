"""Paired differences between policies of evaluation tables, seed by seed.

    python -m agents.evaluate.paired --table runs/compare/table.csv --pairs grpo:pretrained grpo:cascade
    python -m agents.evaluate.paired --table runs/cmp_a/table.csv runs/cmp_b/table.csv \
        --rename grpo_v2=grpo --pairs grpo:cascade


Every policy of an evaluation (:func:`agents.evaluate.online.evaluate`, written as
``table.csv`` by ``liveenv evaluate`` and :mod:`agents.evaluate.compare`) plays the
same requests of the same seeds, so the per-seed difference ``A - B`` removes the
day-to-day spread that the per-policy intervals carry. The interval is the
Student-t one of :func:`agents.evaluate.metrics.mean_ci` over those differences. Beside
it each side's own interval across the same seeds is reported, and whether the
two intervals are apart.

Several tables (e.g. runs over disjoint seed ranges, the evaluation being
deterministic per seed) are merged by :func:`merge_tables`: a row given twice
must agree, else the merge is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from agents.evaluate.metrics import mean_ci
from agents.evaluate.tables import markdown_table
from agents.run import cliargs

__all__ = ["PairedArgs", "merge_tables", "paired_differences"]
KEYS = ["policy", "seed", "breakdown", "group"]


@dataclass
class PairedArgs:
    """Per-seed paired differences A - B of an evaluation table."""

    table: tuple[str, ...] = field(
        default=(), metadata={"help": "evaluation table.csv (or .parquet) files, merged"}
    )
    pairs: tuple[str, ...] = field(default=(), metadata={"help": "A:B policy pairs"})
    rename: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "OLD=NEW policy names, applied to every table before merging"},
    )
    metrics: tuple[str, ...] = field(
        default=("expected_return", "weighted_return"), metadata={"help": "table columns"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.table, str):
            self.table = (self.table,)
        if not self.table or not self.pairs:
            raise ValueError("PairedArgs: give the table and at least one A:B pair")
        for p in self.pairs:
            a, sep, b = p.partition(":")
            if not (sep and a and b):
                raise ValueError(f"PairedArgs.pairs: {p!r} is not of the form A:B")


def merge_tables(
    tables: Sequence[pd.DataFrame], rename: dict[str, str] | None = None
) -> pd.DataFrame:
    """Concatenate evaluation tables (after renaming policies); a (policy, seed,
    breakdown, group) row present in several must agree on every metric."""
    frames = [t.assign(policy=t["policy"].replace(rename or {})) for t in tables]
    both = pd.concat(frames, ignore_index=True)
    keys = [k for k in KEYS if k in both]
    distinct = both.round(9).drop_duplicates()  # rows given twice that agree collapse
    bad = distinct[distinct.duplicated(keys, keep=False)]
    if len(bad):
        first = bad.iloc[0]
        raise ValueError(
            f"tables disagree on policy {first['policy']!r} seed {first['seed']}: the same "
            "row with different values (rename one of the policies)"
        )
    return both.drop_duplicates(keys, keep="first").reset_index(drop=True)


def paired_differences(
    table: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    metrics: Sequence[str] = ("expected_return",),
) -> pd.DataFrame:
    """One row per (pair, metric): mean of A - B over the seeds both played, its 95 %
    interval, the number of seeds and how many of them A is ahead in; ``a_mean`` /
    ``a_lo`` / ``a_hi`` (and ``b_...``) are each side's own interval across those
    seeds, and ``apart`` says whether the two do not overlap."""
    rows = table[table["breakdown"] == "all"] if "breakdown" in table else table
    known = set(rows["policy"])
    out = []
    for a, b in pairs:
        for name in (a, b):
            if name not in known:
                raise ValueError(f"policy {name!r} is not in the table; it has {sorted(known)}")
        for metric in metrics:
            if metric not in rows:
                raise ValueError(f"metric {metric!r} is not a column of the table")
            wide = rows.pivot_table(index="seed", columns="policy", values=metric)
            both = wide[[a, b]].dropna()
            d = (both[a] - both[b]).to_numpy()
            mean, lo, hi = mean_ci(d)
            row = {
                "a": a,
                "b": b,
                "metric": metric,
                "a_minus_b": mean,
                "lo": lo,
                "hi": hi,
                "n_seeds": len(d),
                "a_ahead": int((d > 0).sum()),
            }
            for side, name in (("a", a), ("b", b)):
                row[f"{side}_mean"], row[f"{side}_lo"], row[f"{side}_hi"] = mean_ci(both[name])
            row["apart"] = bool(row["a_lo"] > row["b_hi"] or row["b_lo"] > row["a_hi"])
            out.append(row)
    return pd.DataFrame(out)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = cliargs.parse(PairedArgs, argv, prog="python -m agents.evaluate.paired")
    tables = [(pd.read_parquet if t.endswith(".parquet") else pd.read_csv)(t) for t in args.table]
    pairs = [tuple(p.split(":", 1)) for p in args.pairs]
    table = merge_tables(tables, args.rename)
    df = paired_differences(table, pairs, args.metrics)  # type: ignore[arg-type]
    cells = [
        [
            r.a,
            r.b,
            r.metric,
            f"{r.a_minus_b:+.3f}",
            f"[{r.lo:+.3f}, {r.hi:+.3f}]",
            f"{r.a_ahead}/{r.n_seeds}",
            _ci(r.a_mean, r.a_lo, r.a_hi),
            _ci(r.b_mean, r.b_lo, r.b_hi),
            "yes" if r.apart else "no",
        ]
        for r in df.itertuples()
    ]
    head = [
        "A",
        "B",
        "metric",
        "A - B",
        "95 % CI",
        "seeds A ahead",
        "A [95 % CI]",
        "B [95 % CI]",
        "intervals apart",
    ]
    print(markdown_table(head, cells))
    return df


def _ci(mean: float, lo: float, hi: float) -> str:
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


if __name__ == "__main__":
    main()
