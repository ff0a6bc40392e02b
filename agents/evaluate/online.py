"""Online evaluation of policies in the simulator.

Every policy plays the same seeds (common random numbers: the same world and
the same first request for every policy at a given seed). The result is a tidy
table with one row per policy x seed x group, where a group is the whole run
(``breakdown == "all"``) or one value of a breakdown: ``user_cohort`` (new /
light / heavy, of the served user), ``streamer_cohort`` (new / established, of
the clicked room, else the first room of the slate), lifecycle ``phase`` of
that room, or ``hour`` of day of the request.

Metrics per row: ``n_impressions``, the per-impression rate of each objective
(``click`` ... ``gift``, in the units of :data:`liveenv.objectives.OBJECTIVES`),
``weighted_return`` (mean reward per impression under the env's weights) and
``oracle_normalised`` ``(R - R_random) / (R_oracle - R_random)`` computed per
seed and group against the random and oracle policies of the same run (they
are added when missing, see :func:`evaluate`); with ``expected=True`` also
``expected_return`` (the true expected reward of the chosen room: the same
quantity without the sampling noise of rare, heavy-tailed gifts), its
``expected_normalised`` score and ``expected_click`` ... ``expected_gift``, the
chosen room's expected feedback per objective. Rows of the whole run also carry
``gini`` and ``coverage`` of streamer exposure: counts of impressions (every
slot of a slate) per streamer over every streamer that was live at some request
of the run, zeros included. The summary averages rows across seeds with 95 %
Student-t intervals. The episodes themselves (one row per impression, in this
process or spawned ones, resumable) are played by :mod:`agents.evaluate.episodes`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluate.episodes import (
    BREAKDOWNS,
    EXPECTED_OBJECTIVES,
    EpisodeStore,
    play_episodes,
    play_episodes_parallel,
)
from agents.evaluate.metrics import coverage, gini, mean_ci, oracle_normalised_score
from agents.evaluate.offline import offline_metrics
from agents.progress import progress_bar
from liveenv.config import EnvConfig
from liveenv.objectives import OBJECTIVES
from liveenv.presets import make_config
from policies.base import Policy
from policies.baselines import OraclePolicy, RandomPolicy

METRICS = ("weighted_return", *OBJECTIVES, "expected_return", *EXPECTED_OBJECTIVES)
SUMMARY_METRICS = (*METRICS, "oracle_normalised", "expected_normalised", "gini", "coverage")
DEFAULT_STEPS = 2000

__all__ = ["EvalResult", "evaluate", "offline_metrics", "summarise"]


@dataclass
class EvalResult:
    """Everything one evaluation produced (see the module doc for the columns)."""

    table: pd.DataFrame  # one row per policy x seed x (breakdown, group)
    summary: pd.DataFrame  # one row per policy x (breakdown, group): mean/lo/hi per metric
    impressions: pd.DataFrame  # one row per impression
    config: EnvConfig
    seeds: tuple[int, ...]
    steps_per_seed: int | None
    wall_s: float
    references: dict[str, str] = field(default_factory=dict)  # "random"/"oracle" -> policy

    def overall(self) -> pd.DataFrame:
        """Summary rows of the whole run, best weighted return first."""
        rows = self.summary[self.summary["breakdown"] == "all"]
        return rows.sort_values("weighted_return_mean", ascending=False).reset_index(drop=True)

    def ranking(self) -> list[str]:
        return self.overall()["policy"].tolist()

    def save(self, outdir: str | Path, figures: bool = True) -> dict[str, Path]:
        """Write the tables (CSV, Parquet), a Markdown summary and figures."""
        from agents.evaluate.tables import save_report

        return save_report(self, outdir, figures=figures)


def _with_references(
    policies: Mapping[str, Policy], slate_size: int, add: bool
) -> tuple[dict[str, Policy], dict[str, str]]:
    out, refs = dict(policies), {}
    for kind, cls in (("random", RandomPolicy), ("oracle", OraclePolicy)):
        name = next((n for n, p in out.items() if type(p) is cls), None)
        if name is None and add:
            name = kind if kind not in out else f"{kind}_reference"
            out[name] = cls(name=name, slate_size=slate_size)
        if name is not None:
            refs[kind] = name
    return out, refs


def _check(policies: Mapping[str, Policy], cfg: EnvConfig) -> None:
    for name, p in policies.items():
        if p.slate_size != cfg.slate_size:
            raise ValueError(
                f"policy {name!r} has slate_size={p.slate_size}; the env's is {cfg.slate_size}"
            )


def _aggregate(imp: pd.DataFrame) -> pd.DataFrame:
    metrics = [m for m in METRICS if m in imp]
    parts = []
    for breakdown in ("all", *BREAKDOWNS):
        keys = ["policy", "seed"] + ([] if breakdown == "all" else [breakdown])
        g = imp.groupby(keys, sort=True)
        part = g[metrics].mean()
        part.insert(0, "n_impressions", g.size())
        part = part.reset_index()
        part["group"] = "all" if breakdown == "all" else part.pop(breakdown).astype(str)
        part["breakdown"] = breakdown
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    front = ["policy", "seed", "breakdown", "group", "n_impressions"]
    return table[front + metrics]


def _normalise(
    table: pd.DataFrame, refs: Mapping[str, str], metric: str, column: str
) -> pd.DataFrame:
    """Add ``column``: ``metric`` normalised by the references of the same seed and group."""
    keys = ["seed", "breakdown", "group"]
    if "random" not in refs or "oracle" not in refs:
        return table.assign(**{column: np.nan})
    out = table
    for kind in ("random", "oracle"):
        ref = table.loc[table["policy"] == refs[kind], [*keys, metric]]
        out = out.merge(ref.rename(columns={metric: f"_{kind}"}), on=keys, how="left")
    out[column] = oracle_normalised_score(
        out[metric].to_numpy(), out["_random"].to_numpy(), out["_oracle"].to_numpy()
    )
    return out.drop(columns=["_random", "_oracle"])


def summarise(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean and ``level`` t-interval across seeds of every metric, per group."""
    rows = []
    for (policy, breakdown, group), g in table.groupby(
        ["policy", "breakdown", "group"], sort=False
    ):
        row: dict[str, Any] = {
            "policy": policy,
            "breakdown": breakdown,
            "group": group,
            "n_seeds": g["seed"].nunique(),
            "n_impressions": int(g["n_impressions"].sum()),
        }
        for m in SUMMARY_METRICS:
            if m in g:
                row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = mean_ci(g[m], level)
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate(
    policies: Mapping[str, Policy],
    preset: str = "default",
    seeds: Iterable[int] = (0, 1, 2),
    steps_per_seed: int | None = DEFAULT_STEPS,
    overrides: Mapping[str, Any] | None = None,
    config: EnvConfig | None = None,
    add_references: bool = True,
    progress: bool = True,
    expected: bool = False,
    workers: int = 1,
    episode_dir: str | Path | None = None,
) -> EvalResult:
    """Run every policy on every seed of one world and tabulate the outcome.

    ``config`` (else ``make_config(preset, **overrides)``) defines the world;
    ``steps_per_seed`` caps each episode (``None``: play to the horizon).
    ``add_references``: add a :class:`RandomPolicy` named ``random`` and an
    :class:`OraclePolicy` named ``oracle`` when no policy of that class is in
    ``policies`` (they anchor ``oracle_normalised``; without them it is NaN).
    ``expected``: also report ``expected_return`` (the true expected reward of
    the chosen room, a low-variance twin of ``weighted_return`` that costs one
    oracle call per step) and its ``expected_normalised`` score.
    ``workers``: play the (policy, seed) episodes in that many spawned processes
    (policies are pickled to them); every episode depends only on its seed, so
    the tables equal a one-process run's. The processes are spawned, so a script
    that calls this must guard its entry point (``if __name__ == "__main__":``).
    ``episode_dir``: keep every finished episode there
    (:class:`agents.evaluate.episodes.EpisodeStore`) and reuse the ones already there,
    so an interrupted evaluation resumes; the caller vouches that the policies and the
    world are the ones that wrote them.
    """
    if int(workers) < 1:
        raise ValueError(f"workers={workers!r}: must be an integer >= 1")
    if not policies and not add_references:
        raise ValueError("policies is empty: nothing to evaluate")
    cfg = (
        config.replace(**(overrides or {})) if config else make_config(preset, **(overrides or {}))
    )
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    runs, refs = _with_references(policies, cfg.slate_size, add_references)
    _check(runs, cfg)
    total = None if steps_per_seed is None else len(runs) * len(seeds) * steps_per_seed
    t0 = time.perf_counter()
    tasks = [(name, seed) for name in runs for seed in seeds]
    store = EpisodeStore(episode_dir) if episode_dir is not None else None
    done = store.load(tasks) if store else {}
    todo = [t for t in tasks if t not in done]
    parallel = int(workers) > 1 and len(todo) > 1
    with progress_bar(
        total=total,
        enabled=progress,
        desc="evaluate",
        unit="step",
        mininterval=1.0,
    ) as bar:  # a bar on a terminal, a line a minute in a log
        bar.update(sum(len(f) for f, _ in done.values()))
        episodes = (
            play_episodes_parallel(runs, cfg, todo, steps_per_seed, expected, int(workers))
            if parallel
            else play_episodes(runs, cfg, todo, steps_per_seed, expected, bar)
        )
        for (name, seed), (frame, counts) in episodes:
            done[name, seed] = frame, counts
            if store:
                store.save(name, seed, frame, counts)
            if parallel:  # the one-process path advances the bar step by step
                bar.update(len(frame))
    frames, exposure = [], []
    for name, seed in tasks:  # the one-process order, however the episodes finished
        frame, counts = done[name, seed]
        frames.append(frame.assign(policy=name, seed=seed))
        exposure.append(
            {
                "policy": name,
                "seed": seed,
                "breakdown": "all",
                "gini": gini(counts),
                "coverage": coverage(counts),
            }
        )
    impressions = pd.concat(frames, ignore_index=True)
    table = _normalise(_aggregate(impressions), refs, "weighted_return", "oracle_normalised")
    if expected:
        table = _normalise(table, refs, "expected_return", "expected_normalised")
    table = table.merge(pd.DataFrame(exposure), on=["policy", "seed", "breakdown"], how="left")
    return EvalResult(
        table=table,
        summary=summarise(table),
        impressions=impressions,
        config=cfg,
        seeds=seeds,
        steps_per_seed=steps_per_seed,
        wall_s=time.perf_counter() - t0,
        references=refs,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m agents.evaluate.online --preset default --seeds 0 1 2 --steps 2000 --out DIR``"""
    import argparse
    import json

    from agents.evaluate.tables import markdown_summary
    from policies.registry import baseline_names, make_baseline

    ap = argparse.ArgumentParser(description="Evaluate the baselines in the simulator.")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="per seed; 0: full episode")
    ap.add_argument(
        "--policies", nargs="+", default=list(baseline_names()), choices=list(baseline_names())
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="config overrides, e.g. users.n_users=2000 (values parsed as JSON)",
    )
    ap.add_argument("--out", default=None, help="folder for tables, summary.md and figures")
    ap.add_argument("--expected", action="store_true", help="also report expected returns")
    ap.add_argument("--workers", type=int, default=1, help="parallel episode processes")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    slate = make_config(args.preset, **overrides).slate_size
    policies = {k: make_baseline(k, slate_size=slate) for k in args.policies}
    result = evaluate(
        policies,
        args.preset,
        args.seeds,
        args.steps or None,
        overrides,
        expected=args.expected,
        workers=args.workers,
    )
    print(markdown_summary(result))
    if args.out:
        print(f"wrote {len(result.save(args.out))} files to {args.out}")


if __name__ == "__main__":
    main()
