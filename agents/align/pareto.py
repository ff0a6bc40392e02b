"""The results of a reward-weight sweep (:mod:`agents.align.sweep`): its tables, how
far each weight steers its objective, and the Pareto front.

* :func:`summarise`: mean and spread across seeds per weight vector;
* :func:`steering`: for each objective whose weight varies alone, the Spearman
  correlation of the weight with the objective's rate (:func:`rate_column`: the
  expected rate when every cell has it, else the realised one);
* :func:`pareto_mask` / :func:`pareto_figure`: the non-dominated weight vectors in
  two objectives' rates, and ``pareto.png``;
* :func:`write_outputs`: ``results.csv``, ``summary.csv``, ``summary.md``,
  ``steering.csv`` and ``pareto.png`` of a sweep folder.

The dashboard reads those files (``dashboard/data.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluate.episodes import EXPECTED_OBJECTIVES
from liveenv.objectives import OBJECTIVES

#: The label of the reference cell (the pretrained generator, not aligned).
REFERENCE = "pretrained"


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation across seeds per weight vector."""
    metrics = [
        *OBJECTIVES,
        *EXPECTED_OBJECTIVES,
        "weighted_return",
        "expected_return",
        "oracle_normalised",
        "expected_normalised",
        "kl_ref",
    ]
    metrics = [m for m in metrics if m in results]  # cells from before expected_* existed
    wcols = [f"w_{k}" for k in OBJECTIVES]
    g = results.groupby(["label", *wcols], sort=False)[metrics]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).add_suffix("_sd"))
    return out.reset_index().assign(n_seeds=g.size().to_numpy())


def rate_column(summary: pd.DataFrame, objective: str) -> str:
    """The column that measures ``objective``'s rate: the chosen rooms' expected feedback
    (``expected_<objective>``, free of the sampling noise of rare, heavy-tailed gifts)
    when every cell has it, else the realised feedback (cells from older runs)."""
    col = f"expected_{objective}"
    ok = f"{col}_mean" in summary and bool(summary[f"{col}_mean"].notna().all())
    return col if ok else objective


def steering(summary: pd.DataFrame) -> pd.DataFrame:
    """For every objective whose weight varies while all others stay fixed: the
    Spearman correlation of the weight with that objective's rate (expected, see
    :func:`rate_column`; the realised rates are listed beside)."""
    from scipy.stats import spearmanr

    rows = []
    cells = summary[summary["label"] != REFERENCE]
    wcols = [f"w_{k}" for k in OBJECTIVES]
    for k in OBJECTIVES:
        others = [c for c in wcols if c != f"w_{k}"]
        for _, g in cells.groupby(others, sort=False):
            if g[f"w_{k}"].nunique() < 3:
                continue
            g = g.sort_values(f"w_{k}")
            rate = g[f"{rate_column(summary, k)}_mean"]
            rho, p = spearmanr(g[f"w_{k}"], rate)
            rows.append(
                {
                    "objective": k,
                    "weights": ",".join(f"{v:g}" for v in g[f"w_{k}"]),
                    "rate": rate_column(summary, k),
                    "rates": ",".join(f"{v:.4g}" for v in rate),
                    "realised_rates": ",".join(f"{v:.4g}" for v in g[f"{k}_mean"]),
                    "spearman": float(rho),
                    "p_value": float(p),
                    "monotone": bool(np.all(np.diff(rate.to_numpy()) > 0)),
                    "max_kl_ref": float(g["kl_ref_mean"].max()),
                }
            )
    return pd.DataFrame(rows)


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """``(n,)`` True where no other point of ``points`` (n, d) is >= in every column
    and > in one: the Pareto front, every column maximised."""
    p = np.asarray(points, dtype=float)
    keep = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        dominated = np.all(p >= p[i], axis=1) & np.any(p > p[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def pareto_figure(summary: pd.DataFrame, x: str, y: str, path: Path) -> Path:
    """``y``'s rate against ``x``'s (see :func:`rate_column`) per weight vector, the
    non-dominated ones joined, the pretrained policy starred."""
    from matplotlib.figure import Figure

    from liveenv.atomic import atomic_write

    fig = Figure(figsize=(6.4, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    cells = summary[summary["label"] != REFERENCE].reset_index(drop=True)
    cx, cy = rate_column(summary, x), rate_column(summary, y)
    xs, ys = cells[f"{cx}_mean"].to_numpy(), cells[f"{cy}_mean"].to_numpy()
    ax.errorbar(
        xs,
        ys,
        xerr=cells[f"{cx}_sd"].fillna(0),
        yerr=cells[f"{cy}_sd"].fillna(0),
        fmt="o",
        ms=5,
        lw=0.8,
        capsize=2,
        label="aligned (mean, sd over seeds)",
    )
    front = pareto_mask(np.column_stack([xs, ys]))
    order = np.argsort(xs[front])
    ax.plot(xs[front][order], ys[front][order], "-", lw=1.2, alpha=0.7, label="Pareto front")
    for i, text in _point_labels(cells, xs, ys, (x, y)).items():
        right = len(xs) > 1 and xs[i] > np.median(xs)  # turned away from the nearer edge
        ax.annotate(
            text,
            (xs[i], ys[i]),
            fontsize=7,
            xytext=(-4 if right else 4, 4),
            textcoords="offset points",
            ha="right" if right else "left",
        )
    ref = summary[summary["label"] == REFERENCE]
    if len(ref):
        ax.plot(ref[f"{cx}_mean"], ref[f"{cy}_mean"], "*", ms=12, label="pretrained")
    ax.set_xlabel(f"{cx.replace('_', ' ')} per impression")
    ax.set_ylabel(f"{cy.replace('_', ' ')} per impression")
    ax.margins(0.15)  # room for the labels inside the axes
    # under the axes, never over the points or their labels
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.2, top=0.96)
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120))


def nearby_groups(xs: np.ndarray, ys: np.ndarray, tol: float = 0.04) -> list[list[int]]:
    """The points ``(xs, ys)`` in groups that would overlap on a plot: a point joins the
    first group whose first point is within ``tol`` of the axes' spans on both axes."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    span = (np.ptp(xs) if len(xs) else 0.0) or 1.0, (np.ptp(ys) if len(ys) else 0.0) or 1.0
    groups: list[list[int]] = []
    for i in range(len(xs)):
        for g in groups:
            j = g[0]
            if abs(xs[i] - xs[j]) <= tol * span[0] and abs(ys[i] - ys[j]) <= tol * span[1]:
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def _point_labels(
    cells: pd.DataFrame, xs: np.ndarray, ys: np.ndarray, shown: tuple[str, str]
) -> dict[int, str]:
    """One label per place on the plot (:func:`nearby_groups`), the weights of the cells
    there joined with ``;``, so labels never overlap one another."""
    out = {}
    for members in nearby_groups(xs, ys):
        names = [
            ", ".join(f"{k}={cells.loc[i, f'w_{k}']:g}" for k in OBJECTIVES if k in shown)
            for i in members
        ]
        out[members[0]] = "; ".join(names)
    return out


def write_outputs(
    out: Path, rows: list[dict[str, Any]], pareto_x: str, pareto_y: str
) -> dict[str, Path]:
    """Write the sweep's tables and figure into ``out`` from its cells' result rows:
    ``results.csv``, ``summary.csv``, ``summary.md``, ``pareto.png`` (``pareto_x``
    against ``pareto_y``) and, when some weight is swept alone, ``steering.csv``."""
    from agents.evaluate.tables import markdown_table, write_table
    from liveenv.config import atomic_write_text

    results = pd.DataFrame(rows).sort_values(["label", "seed"]).reset_index(drop=True)
    summary = summarise(results)
    steer = steering(summary)
    paths = {
        "results": write_table(results, out / "results.csv"),
        "summary": write_table(summary, out / "summary.csv"),
        "pareto": pareto_figure(summary, pareto_x, pareto_y, out / "pareto.png"),
    }
    head = ["weights", "seeds", *OBJECTIVES, "weighted return", "oracle-norm.", "KL to ref."]
    body = [
        [
            r["label"],
            str(r["n_seeds"]),
            *(f"{r[f'{k}_mean']:.4g}" for k in OBJECTIVES),
            f"{r['weighted_return_mean']:.3f}",
            f"{r['oracle_normalised_mean']:.3f}",
            f"{r['kl_ref_mean']:.3f}",
        ]
        for _, r in summary.iterrows()
    ]
    text = "# Reward-weight sweep\n\n" + markdown_table(head, body) + "\n"
    if len(steer):
        steer_rows = [
            [
                s.objective,
                s.weights,
                f"{s.rates} ({s.rate})",
                s.realised_rates,
                f"{s.spearman:.3f}",
                str(s.monotone),
                f"{s.max_kl_ref:.3f}",
            ]
            for s in steer.itertuples()
        ]
        text += (
            "\n## Steering\n\n"
            + markdown_table(
                [
                    "objective",
                    "weights",
                    "rates",
                    "realised rates",
                    "Spearman",
                    "monotone",
                    "max KL",
                ],
                steer_rows,
            )
            + "\n"
        )
        paths["steering"] = write_table(steer, out / "steering.csv")
    atomic_write_text(out / "summary.md", text)
    paths["markdown"] = out / "summary.md"
    return paths


__all__ = [
    "REFERENCE",
    "nearby_groups",
    "pareto_figure",
    "pareto_mask",
    "rate_column",
    "steering",
    "summarise",
    "write_outputs",
]
