"""Paired differences between policies of one evaluation table, seed by seed.

    python -m agents.paired --table runs/compare/table.csv --pairs grpo:pretrained grpo:cascade

Every policy of an evaluation (:func:`agents.evaluate.evaluate`, written as
``table.csv`` by ``liveenv evaluate`` and :mod:`agents.align.compare`) plays the
same requests of the same seeds, so the per-seed difference ``A - B`` removes the
day-to-day spread that the per-policy intervals carry. The interval is the
Student-t one of :func:`agents.metrics.mean_ci` over those differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from agents import cliargs
from agents.metrics import mean_ci
from agents.report import markdown_table

__all__ = ["PairedArgs", "paired_differences"]


@dataclass
class PairedArgs:
    """Per-seed paired differences A - B of an evaluation table."""

    table: str = field(default="", metadata={"help": "evaluation table.csv (or .parquet)"})
    pairs: tuple[str, ...] = field(default=(), metadata={"help": "A:B policy pairs"})
    metrics: tuple[str, ...] = field(
        default=("expected_return", "weighted_return"), metadata={"help": "table columns"}
    )

    def __post_init__(self) -> None:
        if not self.table or not self.pairs:
            raise ValueError("PairedArgs: give the table and at least one A:B pair")
        for p in self.pairs:
            a, sep, b = p.partition(":")
            if not (sep and a and b):
                raise ValueError(f"PairedArgs.pairs: {p!r} is not of the form A:B")


def paired_differences(table: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                       metrics: Sequence[str] = ("expected_return",)) -> pd.DataFrame:  # fmt: skip
    """One row per (pair, metric): mean of A - B over the seeds both played, its 95 %
    interval, the number of seeds and how many of them A is ahead in."""
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
            d = (wide[a] - wide[b]).dropna().to_numpy()
            mean, lo, hi = mean_ci(d)
            out.append({"a": a, "b": b, "metric": metric, "a_minus_b": mean, "lo": lo,
                        "hi": hi, "n_seeds": len(d), "a_ahead": int((d > 0).sum())})  # fmt: skip
    return pd.DataFrame(out)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = cliargs.parse(PairedArgs, argv, prog="python -m agents.paired")
    read = pd.read_parquet if args.table.endswith(".parquet") else pd.read_csv
    pairs = [tuple(p.split(":", 1)) for p in args.pairs]
    df = paired_differences(read(args.table), pairs, args.metrics)  # type: ignore[arg-type]
    cells = [[r.a, r.b, r.metric, f"{r.a_minus_b:+.3f}", f"[{r.lo:+.3f}, {r.hi:+.3f}]",
              f"{r.a_ahead}/{r.n_seeds}"] for r in df.itertuples()]  # fmt: skip
    print(markdown_table(["A", "B", "metric", "A - B", "95 % CI", "seeds A ahead"], cells))
    return df


if __name__ == "__main__":
    main()
