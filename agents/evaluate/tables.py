"""Writers for evaluation results: CSV/Parquet tables, Markdown, figures."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from liveenv.atomic import atomic_write
from liveenv.config import atomic_write_text
from liveenv.objectives import OBJECTIVES
from liveenv.rooms import PHASES
from liveenv.world import STREAMER_COHORTS, USER_COHORTS

if TYPE_CHECKING:
    from agents.evaluate.online import EvalResult

BREAKDOWN_FIGURES = ("user_cohort", "streamer_cohort", "phase", "hour")
GROUP_ORDER = {"user_cohort": USER_COHORTS, "streamer_cohort": STREAMER_COHORTS, "phase": PHASES}
#: Quantities that cannot be negative (feedback is non-negative and so are the reward
#: weights): their intervals are shown clipped at 0. The normalised scores and paired
#: differences can be negative and are shown as computed.
NONNEGATIVE = frozenset(
    {
        "weighted_return",
        "expected_return",
        *OBJECTIVES,
        *(f"expected_{m}" for m in OBJECTIVES),
        "gini",
        "coverage",
    }
)
CLIPPED_NOTE = "intervals of quantities that cannot be negative are clipped at 0"


def clip_low(metric: str, low: np.ndarray | float) -> np.ndarray | float:
    """The lower end of an interval of ``metric`` as shown: clipped at 0 when the
    quantity cannot be negative (a Student-t interval over few seeds can reach below)."""
    return np.maximum(low, 0.0) if metric in NONNEGATIVE else low


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV or Parquet (by suffix), atomically."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise ValueError(f"{path}: table suffix must be .csv or .parquet")
    if path.suffix == ".csv":
        return atomic_write(path, lambda fh: df.to_csv(fh, index=False, encoding="utf-8"))
    return atomic_write(path, lambda fh: df.to_parquet(fh, index=False))


def _fmt(x: float, digits: int = 3) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _with_ci(row: pd.Series, metric: str, digits: int = 3) -> str:
    mean, lo, hi = row[f"{metric}_mean"], row[f"{metric}_lo"], row[f"{metric}_hi"]
    lo = lo if math.isnan(lo) else float(clip_low(metric, lo))
    if math.isnan(lo):
        return _fmt(mean, digits)
    return f"{_fmt(mean, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_summary(result: EvalResult) -> str:
    """The overall table (means with 95 % CIs across seeds) and the cohort table."""
    overall = result.overall()
    expected = "expected_return_mean" in overall
    header = ["policy", "weighted return / imp. [95 % CI]", "oracle-normalised"]
    header += ["expected return / imp.", "expected-normalised"] if expected else []
    header += [*OBJECTIVES, "gini", "coverage"]
    rows = []
    for _, r in overall.iterrows():
        row = [r["policy"], _with_ci(r, "weighted_return"), _with_ci(r, "oracle_normalised")]
        if expected:
            row += [_with_ci(r, "expected_return"), _with_ci(r, "expected_normalised")]
        row += [_fmt(r[f"{m}_mean"]) for m in (*OBJECTIVES, "gini", "coverage")]
        rows.append(row)
    cfg = result.config
    title = (
        f"**{cfg.preset}** preset, seeds {list(result.seeds)}, "
        f"{result.steps_per_seed or 'full-episode'} steps per seed, "
        f"{len(result.impressions)} impressions, wall time {result.wall_s:.1f} s; "
        f"every policy scored under the world's reward weights {weights_text(cfg.reward_weights)}"
    )
    note = f"95 % intervals across seeds; {CLIPPED_NOTE}."
    return "\n\n".join([title, markdown_table(header, rows), note, _cohort_table(result)]) + "\n"


def weights_text(weights: Mapping[str, float]) -> str:
    """``click=0.5, watch_time=0.1, ...``: reward weights as a reader sees them (in
    the objectives' order)."""
    order = {name: i for i, name in enumerate(OBJECTIVES)}
    ranked = sorted(weights.items(), key=lambda kv: order.get(kv[0], len(order)))
    return ", ".join(f"{k}={v:g}" for k, v in ranked)


def _cohort_table(result: EvalResult) -> str:
    """Weighted return per impression by user and streamer cohort."""
    s = result.summary
    groups = s[s["breakdown"].isin(["user_cohort", "streamer_cohort"])]
    cols = [
        (b, g)
        for b in ("user_cohort", "streamer_cohort")
        for g in _ordered(b, groups.loc[groups["breakdown"] == b, "group"].unique().tolist())
    ]
    header = ["policy", *[f"{b.split('_')[0]}: {g}" for b, g in cols]]
    rows = []
    for policy in result.ranking():
        mine = groups[groups["policy"] == policy].set_index(["breakdown", "group"])
        rows.append(
            [policy]
            + [_fmt(mine.loc[c, "weighted_return_mean"]) if c in mine.index else "-" for c in cols]
        )
    return "Weighted return per impression by cohort:\n\n" + markdown_table(header, rows)


def _bar(
    ax,
    labels: list[str],
    mean: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    offset: float = 0.0,
    width: float = 0.8,
    label: str | None = None,
    metric: str = "",
) -> None:
    lo = clip_low(metric, lo)
    err = np.maximum(np.vstack([mean - lo, hi - mean]), 0.0)
    err = np.where(np.isnan(err), 0.0, err)
    x = np.arange(len(labels)) + offset
    ax.bar(x, mean, width, yerr=err, capsize=3, label=label)


def figure_overall(result: EvalResult, metric: str = "weighted_return") -> Figure:
    """Bar chart of one metric per policy with 95 % CIs."""
    o = result.overall()
    fig = Figure(figsize=(max(4.0, 1.2 * len(o)), 3.5), layout="constrained")
    ax = fig.add_subplot()
    cols = (o[f"{metric}_{s}"].to_numpy(dtype=float) for s in ("mean", "lo", "hi"))
    _bar(ax, o["policy"].tolist(), *cols, metric=metric)
    ax.set_xticks(np.arange(len(o)), o["policy"].tolist(), rotation=20, ha="right")
    ax.set_ylabel(f"{metric} per impression")
    ax.set_title(f"{result.config.preset}: {metric} ({_ci_text(metric, len(result.seeds))})")
    if metric in NONNEGATIVE:
        ax.set_ylim(bottom=0)
    return fig


def _ci_text(metric: str, n_seeds: int) -> str:
    clipped = ", clipped at 0" if metric in NONNEGATIVE else ""
    return f"95 % CI over {n_seeds} seeds{clipped}"


def _ordered(breakdown: str, groups: list[str]) -> list[str]:
    """Groups in their natural order: cohorts and phases as defined, hours numerically."""
    if breakdown == "hour":
        return sorted(groups, key=int)
    known = GROUP_ORDER.get(breakdown, ())
    return sorted(groups, key=lambda g: (known.index(g) if g in known else len(known), g))


def figure_breakdown(result: EvalResult, breakdown: str, metric: str = "weighted_return") -> Figure:
    """Grouped bars (or lines, for ``hour``) of a metric per group and policy."""
    s = result.summary[result.summary["breakdown"] == breakdown]
    groups = _ordered(breakdown, s["group"].unique().tolist())
    policies = result.ranking()
    fig = Figure(
        figsize=(max(5.0, 0.4 * len(groups) * len(policies) / 2) + 1.8, 3.5), layout="constrained"
    )
    ax = fig.add_subplot()
    width = 0.8 / max(len(policies), 1)
    for i, p in enumerate(policies):
        mine = s[s["policy"] == p].set_index("group").reindex(groups)
        cols = [mine[f"{metric}_{k}"].to_numpy(dtype=float) for k in ("mean", "lo", "hi")]
        if breakdown == "hour":
            ax.plot([int(g) for g in groups], cols[0], marker="o", label=p)
        else:
            _bar(
                ax,
                groups,
                *cols,
                offset=(i - (len(policies) - 1) / 2) * width,
                width=width,
                label=p,
                metric=metric,
            )
    if breakdown != "hour":
        ax.set_xticks(np.arange(len(groups)), groups)
    if metric in NONNEGATIVE:
        ax.set_ylim(bottom=0)
    ax.set_xlabel(breakdown.replace("_", " "))
    how = "means" if breakdown == "hour" else _ci_text(metric, len(result.seeds))
    ax.set_title(f"{result.config.preset}: {metric} by {breakdown} ({how})", fontsize="medium")
    ax.set_ylabel(f"{metric} per impression")
    # beside the axes, never over the bars
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def save_figures(result: EvalResult, outdir: str | Path) -> list[Path]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    figs = {"weighted_return": figure_overall(result)}
    figs |= {f"by_{b}": figure_breakdown(result, b) for b in BREAKDOWN_FIGURES}
    paths = []
    for name, fig in figs.items():
        path = outdir / f"{name}.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths


def save_report(result: EvalResult, outdir: str | Path, figures: bool = True) -> dict[str, Path]:
    """Tables (CSV + Parquet), ``summary.md`` and figures under ``outdir``."""
    outdir = Path(outdir)
    out = {
        "table_csv": write_table(result.table, outdir / "table.csv"),
        "table_parquet": write_table(result.table, outdir / "table.parquet"),
        "summary_csv": write_table(result.summary, outdir / "summary.csv"),
    }
    md = outdir / "summary.md"
    atomic_write_text(md, markdown_summary(result))
    out["summary_md"] = md
    if figures:
        out |= {p.stem: p for p in save_figures(result, outdir)}
    return out
