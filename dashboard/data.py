"""Everything the dashboard reads or computes, as plain functions (no Streamlit).

* the run directory to show: the one given, else the bundled ``sample_run``;
* evaluation results of a run: overall tables, breakdowns across presets;
* reward weights: results re-scored under other weights, the Pareto front of
  a sweep and the swept policy nearest to a weight vector;
* playback: one user's requests under a policy, step by step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluate.tables import GROUP_ORDER, NONNEGATIVE, clip_low
from agents.run import world as W
from agents.run.evaluate_stage import eval_presets, load_eval
from liveenv.objectives import DEFAULT_WEIGHTS, OBJECTIVES, as_weight_vector

SAMPLE_RUN = Path(__file__).resolve().parent / "sample_run"
#: sweep columns read as plain names (``gift`` for ``gift_mean``)
RENAMED = (*OBJECTIVES, "weighted_return", "oracle_normalised", "kl_ref")
ENV_VAR = "LIVEENV_RUN_DIR"
BREAKDOWN_LABELS = {
    "user_cohort": "user cohort",
    "streamer_cohort": "streamer cohort",
    "phase": "lifecycle phase",
    "hour": "hour of day",
}

__all__ = [
    "RunChoice",
    "best_contender",
    "breakdown_table",
    "choose_run",
    "intervals",
    "nearest_swept",
    "overall_table",
    "playback",
    "rescore",
    "stress_table",
    "sweep_table",
]


@dataclass(frozen=True)
class RunChoice:
    """The run directory on screen and why."""

    path: Path
    is_sample: bool
    note: str


def has_results(path: str | Path) -> bool:
    return bool(eval_presets(path))


def choose_run(requested: str | Path | None = None) -> RunChoice:
    """``requested`` (else ``$LIVEENV_RUN_DIR``) when it holds results, else the sample."""
    wanted = requested or os.environ.get(ENV_VAR)
    if wanted and has_results(wanted):
        return RunChoice(Path(wanted), False, f"run directory {wanted}")
    why = f"{wanted} has no evaluation results yet" if wanted else "no run directory given"
    return RunChoice(SAMPLE_RUN, True, f"{why}: showing the bundled sample run")


def run_meta(path: str | Path) -> dict[str, Any]:
    """``config.json`` of a run (empty when it has none)."""
    cfg = Path(path) / "config.json"
    return json.loads(cfg.read_text()) if cfg.is_file() else {}


# ----- results ------------------------------------------------------------------------
def overall_table(summary: pd.DataFrame, policies: list[str] | None = None) -> pd.DataFrame:
    """One row per policy: weighted return (with CI), oracle-normalised, objective rates."""
    s = summary[summary["breakdown"] == "all"].copy()
    if policies:
        s = s[s["policy"].isin(policies)]
    cols = {
        "weighted_return_mean": "weighted return",
        "weighted_return_lo": "lo",
        "weighted_return_hi": "hi",
        "oracle_normalised_mean": "oracle-normalised",
        **{f"{m}_mean": m for m in OBJECTIVES},
        "gini_mean": "gini",
        "coverage_mean": "coverage",
        "n_impressions": "impressions",
    }
    if "weighted_return_lo" in s:
        s["weighted_return_lo"] = clip_low("weighted_return", s["weighted_return_lo"])
    out = s[["policy", *[c for c in cols if c in s]]].rename(columns=cols)
    return out.sort_values("weighted return", ascending=False).reset_index(drop=True)


def ranking(summary: pd.DataFrame) -> list[str]:
    """The policies in the order of :func:`overall_table` (best weighted return first)."""
    return overall_table(summary)["policy"].tolist()


def intervals(
    summary: pd.DataFrame,
    metric: str,
    breakdown: str = "all",
    policies: list[str] | None = None,
) -> pd.DataFrame:
    """``policy``, ``group``, ``mean``, ``lo``, ``hi`` of ``metric`` for one breakdown
    (``all``: one row per policy), the low end clipped at 0 where ``metric`` cannot be
    negative (see :data:`agents.evaluate.tables.NONNEGATIVE`)."""
    s = summary[summary["breakdown"] == breakdown]
    if policies:
        s = s[s["policy"].isin(policies)]
    out = pd.DataFrame(
        {
            "policy": s["policy"].to_numpy(),
            "group": s["group"].astype(str).to_numpy(),
            "mean": s[f"{metric}_mean"].to_numpy(dtype=float),
        }
    )
    if f"{metric}_lo" in s:
        out["lo"] = clip_low(metric, s[f"{metric}_lo"].to_numpy(dtype=float))
        out["hi"] = s[f"{metric}_hi"].to_numpy(dtype=float)
    return out


def clipped_note(metric: str) -> str:
    """What a page says under an interval of ``metric``."""
    if metric in NONNEGATIVE:
        return f"Intervals: 95 % across seeds; {metric} cannot be negative, so they start at 0."
    return "Intervals: 95 % across seeds."


def interval_note(frame: pd.DataFrame, metric: str) -> str:
    """What the intervals of ``frame`` (from :func:`intervals`) are."""
    if "lo" not in frame or frame["lo"].isna().all():
        return "One evaluation seed: no intervals (evaluate on more seeds to get them)."
    return clipped_note(metric)


def group_order(breakdown: str, groups: list[str]) -> list[str]:
    """Groups in their natural order: cohorts and phases as defined, hours numerically."""
    if breakdown == "hour":
        return sorted(groups, key=int)
    known = list(GROUP_ORDER.get(breakdown, ()))
    return sorted(groups, key=lambda g: (known.index(g) if g in known else len(known), g))


def breakdown_table(
    summary: pd.DataFrame,
    breakdown: str,
    metric: str = "weighted_return",
    policies: list[str] | None = None,
) -> pd.DataFrame:
    """``metric`` per group (rows) and policy (columns) for one breakdown."""
    s = summary[summary["breakdown"] == breakdown]
    if policies:
        s = s[s["policy"].isin(policies)]
    table = s.pivot_table(index="group", columns="policy", values=f"{metric}_mean")
    table.index = table.index.astype(str)
    table = table.reindex(group_order(breakdown, table.index.tolist()))
    order = [p for p in ranking(summary) if p in table.columns]
    return table[order + [c for c in table.columns if c not in order]]


def stress_table(
    root: str | Path,
    breakdown: str,
    metric: str = "weighted_return",
    presets: list[str] | None = None,
) -> pd.DataFrame:
    """Long table (preset, policy, group, mean, lo, hi) of one breakdown across presets
    (``lo`` clipped at 0 where ``metric`` cannot be negative)."""
    frames = []
    for preset in presets or eval_presets(root):
        s = load_eval(root, preset)["summary"]
        frames.append(intervals(s, metric, breakdown).assign(preset=preset))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out[["preset", "policy", "group", "mean", *[c for c in ("lo", "hi") if c in out]]]


def cold_start_gap(root: str | Path, metric: str = "weighted_return") -> pd.DataFrame:
    """Per preset and policy: ``metric`` for new users as a share of all users."""
    t = stress_table(root, "user_cohort", metric)
    if t.empty:
        return t
    new = t[t["group"] == "new"].set_index(["preset", "policy"])["mean"]
    frames = [load_eval(root, p)["summary"].assign(preset=p) for p in t["preset"].unique()]
    allrows = pd.concat(frames)
    allrows = allrows[allrows["breakdown"] == "all"].set_index(["preset", "policy"])
    ratio = (new / allrows[f"{metric}_mean"]).rename("new users / all users")
    return ratio.reset_index().pivot(index="policy", columns="preset", values=ratio.name)


# ----- reward weights ------------------------------------------------------------------
def privileged_policies() -> set[str]:
    """Policies that read the world's hidden state (the oracle): references, not
    recommenders, so never "the best policy"."""
    from policies.registry import baseline_names

    return set(baseline_names()) - set(baseline_names(privileged=False))


def best_contender(scored: pd.DataFrame) -> pd.Series:
    """The first row of ``scored`` (ranked) whose policy is not privileged."""
    mine = scored[~scored["policy"].isin(privileged_policies())]
    return (mine if len(mine) else scored).iloc[0]


def rescore(summary: pd.DataFrame, weights: dict[str, float] | np.ndarray) -> pd.DataFrame:
    """Each policy's weighted return per impression under ``weights``, from its objective
    rates (linear in the rates, so exact for the evaluated traffic)."""
    w = as_weight_vector(weights)
    s = summary[summary["breakdown"] == "all"]
    rates = s[[f"{m}_mean" for m in OBJECTIVES]].to_numpy(dtype=float)
    out = pd.DataFrame({"policy": s["policy"].to_numpy(), "weighted return": rates @ w})
    return out.sort_values("weighted return", ascending=False).reset_index(drop=True)


def sweep_table(root: str | Path) -> pd.DataFrame | None:
    """The sweep of a run, one row per weight vector (means over seeds): ``label``,
    ``w_<objective>`` weights and ``<objective>`` rates; None when the run has none."""
    folder = Path(root) / W.SWEEP_DIR
    if (folder / "summary.csv").is_file():
        df = pd.read_csv(folder / "summary.csv")
        df = df.rename(columns={f"{m}_mean": m for m in RENAMED})
    elif (folder / "results.csv").is_file():
        from agents.align.pareto import summarise

        df = summarise(pd.read_csv(folder / "results.csv"))
        df = df.rename(columns={f"{m}_mean": m for m in RENAMED})
    else:
        return None
    missing = [c for c in (*[f"w_{m}" for m in OBJECTIVES], *OBJECTIVES) if c not in df]
    if missing:
        raise ValueError(f"{folder}: the sweep table lacks columns {missing}")
    return df


def sweep_rate(sweep: pd.DataFrame, objective: str) -> tuple[pd.Series, str]:
    """``objective``'s rate per row of :func:`sweep_table` and its name, from the column
    ``figures/sweep_pareto.png`` plots (:func:`agents.align.pareto.rate_column`: the
    expected rate when every cell has it, else the realised one)."""
    from agents.align.pareto import rate_column

    col = rate_column(sweep, objective)
    values = sweep[f"{col}_mean"] if col != objective else sweep[objective]
    return values.astype(float), col.replace("_", " ")


def pareto_points(sweep: pd.DataFrame, x: str, y: str, nearest: int | None) -> pd.DataFrame:
    """The sweep as points of the Pareto plot: ``x``, ``y`` (the rates of
    :func:`sweep_rate`), ``name`` (the weights that vary), ``role`` (pretrained, swept or
    nearest to the user's weights), ``front`` (not dominated) and ``label``: a number per
    cell, the numbers of cells that coincide on the plot joined, so none overlaps."""
    from agents.align.pareto import REFERENCE, nearby_groups, pareto_mask

    xs, ys = sweep_rate(sweep, x)[0].to_numpy(), sweep_rate(sweep, y)[0].to_numpy()
    labels = sweep["label"].astype(str) if "label" in sweep else pd.Series([""] * len(sweep))
    points = pd.DataFrame(
        {
            "number": range(1, len(sweep) + 1),
            "name": short_labels(sweep),
            "x": xs,
            "y": ys,
            "role": np.where(labels.to_numpy() == REFERENCE, "pretrained", "swept"),
        },
        index=sweep.index,
    )
    if nearest is not None:
        points.loc[nearest, "role"] = "nearest to your weights"
    points["front"] = pareto_mask(np.column_stack([xs, ys]))
    # cells that would overlap on the plot share one place and one label
    points["label"] = ""
    for members in nearby_groups(xs, ys):
        first = points.index[members[0]]
        points.loc[first, "label"] = ",".join(str(k + 1) for k in members)
    points["side"] = np.where(xs > np.median(xs), "right", "left") if len(xs) else []
    return points


def short_labels(sweep: pd.DataFrame) -> list[str]:
    """A label per swept weight vector naming only the weights that vary in the sweep."""
    cols = [f"w_{m}" for m in OBJECTIVES]
    varying = [c for c in cols if sweep[c].nunique() > 1] or cols[:1]
    names = sweep["label"].astype(str) if "label" in sweep else pd.Series([""] * len(sweep))
    return [
        name if name == "pretrained" else ", ".join(f"{c[2:]}={row[c]:g}" for c in varying)
        for name, (_, row) in zip(names, sweep.iterrows(), strict=True)
    ]


def nearest_swept(sweep: pd.DataFrame, weights: dict[str, float]) -> int:
    """Row of ``sweep`` whose weight vector is closest to ``weights`` (each objective
    scaled by its default weight, so every axis counts alike), among the aligned cells
    (the pretrained reference was aligned to nothing)."""
    from agents.align.pareto import REFERENCE

    if "label" in sweep and (sweep["label"] != REFERENCE).any():
        sweep = sweep[sweep["label"] != REFERENCE]
    scale = np.array([DEFAULT_WEIGHTS[m] for m in OBJECTIVES])
    target = as_weight_vector(weights) / scale
    grid = sweep[[f"w_{m}" for m in OBJECTIVES]].to_numpy(dtype=float) / scale
    return int(sweep.index[np.argmin(np.abs(grid - target).sum(axis=1))])


def front_from_results(summary: pd.DataFrame) -> pd.DataFrame:
    """Without a sweep: the run's policies as points (objective rates), for the same plot."""
    s = summary[summary["breakdown"] == "all"]
    out = s[["policy", *[f"{m}_mean" for m in OBJECTIVES]]].rename(
        columns={f"{m}_mean": m for m in OBJECTIVES}
    )
    return out.reset_index(drop=True)


# ----- playback --------------------------------------------------------------------------
def playback(policy: Any, config: Any, seed: int = 0, steps: int = 1500) -> pd.DataFrame:
    """Serve ``steps`` requests with ``policy`` and record each one: who asked, what was
    recommended (room, streamer, phase, viewers, followed, its rank by the true expected
    utility), what the user did, the reward vector and the weighted reward."""
    from liveenv.env import LiveStreamEnv
    from liveenv.world import ROOM_STAT_COLUMNS

    env = LiveStreamEnv(config)
    obs, info = env.reset(seed=seed)
    policy.reset(seed)
    o, rows = config.obs_dim, []
    viewers_col = 2 * o + ROOM_STAT_COLUMNS.index("log_viewers")
    for step in range(steps):
        slot = int(
            np.atleast_1d(policy.act(obs, env=env if policy.requires_env else None).action(0))[0]
        )
        util = env.oracle_utilities()
        rank = int((util > util[slot]).sum()) + 1
        before = {
            "step": step,
            "user_id": info["user_id"],
            "user_cohort": info["user_cohort"],
            "hour": round(info["hour"], 2),
            "live_rooms": info["n_live"],
            "slot": slot,
            "streamer": int(obs["room_streamer"][slot]),
            "viewers": float(np.expm1(obs["rooms"][slot, viewers_col]).round()),
            "followed": bool(obs["room_followed"][slot]),
            "oracle_rank": rank,
            "history_len": int(obs["history_mask"].sum()),
        }
        obs, reward, _, truncated, info = env.step(slot)
        fb = np.asarray(info["feedback"], dtype=float)
        rows.append(
            {
                **before,
                "phase": info.get("phase", ""),
                "streamer_cohort": info.get("streamer_cohort", ""),
                **dict(zip(OBJECTIVES, fb.tolist(), strict=True)),
                "reward": reward,
            }
        )
        if truncated:
            break
    return pd.DataFrame(rows)


def busiest_users(frame: pd.DataFrame, n: int = 10) -> list[int]:
    """Users with the most requests in a playback frame (the longest sessions)."""
    counts = frame["user_id"].value_counts()
    return counts.head(n).index.astype(int).tolist()
