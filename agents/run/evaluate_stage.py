"""Evaluation stages: every policy of a run, online in the run's world, per preset.

One stage per preset, ``evaluate-<preset>``, writes ``results/eval/<preset>/``
(``table.csv``/``.parquet``, ``summary.csv``, ``summary.md``, ``meta.json``)
and ``figures/<preset>/*.png`` through :func:`agents.evaluate.online.evaluate` and
:mod:`agents.evaluate.tables`. Its fingerprint holds the fingerprints of the model
stages that have finished and the size and time of every policy file, so a
model trained (or a policy saved into ``checkpoints/<name>/``) later re-runs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agents.run import cliargs
from agents.run import world as W
from agents.run.model_stages import available_policies, run_policies
from agents.run.rundir import RunDir, StageContext
from agents.run.stages import StageStatus, stage_fingerprint, world_of
from agents.run.world import WorldArgs
from liveenv.atomic import atomic_write_bytes
from liveenv.presets import PRESETS

MODEL_STAGES = ("cascade", "pretrain", "align")

__all__ = ["EvaluateArgs", "eval_presets", "load_eval", "run_evaluate"]


@dataclass
class EvaluateArgs:
    """Evaluate every policy of a run (baselines and trained models) in the simulator."""

    presets: tuple[str, ...] = field(
        default=(), metadata={"help": "world presets to evaluate on (empty: the run's world)"}
    )
    n_users: int = field(default=-1, metadata={"help": "users (-1: the run's world, 0: preset's)"})
    n_streamers: int = field(
        default=-1, metadata={"help": "streamers (-1: the run's world, 0: preset's)"}
    )
    seeds: tuple[int, ...] = field(
        default=(100, 101, 102),
        metadata={"help": "evaluation seeds (days unseen by the log, seed 0)"},
    )
    steps: int = field(default=600, metadata={"help": "requests per seed and policy"})
    start_hour: float = field(
        default=W.ONLINE_START_HOUR,
        metadata={"help": "hour of day episodes start (20: the evening peak)"},
    )
    policies: tuple[str, ...] = field(
        default=(), metadata={"help": "policy names (empty: every policy the run has)"}
    )
    expected: bool = field(
        default=True, metadata={"help": "also report the expected (noise-free) return"}
    )

    def __post_init__(self) -> None:
        self.presets, self.seeds = tuple(self.presets), tuple(self.seeds)
        self.policies = tuple(self.policies)
        bad = [p for p in self.presets if p not in PRESETS]
        if bad:
            raise ValueError(f"presets={bad} are unknown; allowed: {sorted(PRESETS)}")
        if not self.seeds:
            raise ValueError("seeds is empty: give at least one seed")
        if self.steps < 1:
            raise ValueError(f"steps={self.steps!r} is invalid: must be >= 1")
        if not 0 <= self.start_hour <= 24:
            raise ValueError(f"start_hour={self.start_hour!r} is invalid: must be in [0, 24]")
        if self.n_users < -1 or self.n_streamers < -1:
            raise ValueError("n_users and n_streamers must be >= -1 (-1: the run's world)")

    def world(self, run: RunDir) -> WorldArgs:
        base = world_of(run) or WorldArgs()
        return WorldArgs(
            preset=base.preset,
            n_users=base.n_users if self.n_users == -1 else self.n_users,
            n_streamers=base.n_streamers if self.n_streamers == -1 else self.n_streamers,
        )


def run_evaluate(
    run: RunDir, args: EvaluateArgs, force: bool = False, progress: bool = True
) -> list[StageStatus]:
    """One ``evaluate-<preset>`` stage per preset of ``args`` (default: the run's)."""
    world = args.world(run)
    presets = args.presets or (world.preset,)
    models = [s for s in MODEL_STAGES if run.record(s) is not None]
    statuses = []
    for preset in presets:
        name = f"evaluate-{preset}"
        spec = {
            "args": cliargs.to_dict(args),
            "preset": preset,
            "world": cliargs.to_dict(world),
            "policies": _policy_files(run),
        }
        fp = stage_fingerprint(run, spec, models)

        def work(ctx: StageContext, preset: str = preset) -> dict[str, Any]:
            return _evaluate_preset(run, ctx, args, world, preset, progress)

        outcome = run.run_stage(name, work, fp, force)
        statuses.append(StageStatus(name, "skipped" if outcome.skipped else "ran", outcome=outcome))
    return statuses


def _policy_files(run: RunDir) -> dict[str, list[int]]:
    """Size and modification time of every policy file of the run (a new or retrained
    policy makes the evaluation run again)."""
    out = {}
    for name, where in available_policies(run).items():
        if where != "baseline":
            st = Path(where).stat()
            out[name] = [st.st_size, st.st_mtime_ns]
    return out


def _evaluate_preset(
    run: RunDir,
    ctx: StageContext,
    args: EvaluateArgs,
    world: WorldArgs,
    preset: str,
    progress: bool,
) -> dict[str, Any]:
    from agents.evaluate.online import evaluate
    from agents.evaluate.tables import markdown_summary, save_figures, save_report

    config = world.config(preset, start_hour=args.start_hour)
    policies = run_policies(run, args.policies, slate_size=config.slate_size)
    result = evaluate(
        policies,
        preset,
        args.seeds,
        args.steps,
        config=config,
        progress=progress,
        expected=args.expected,
    )
    out = ctx.path(W.EVAL_DIR, preset, "x").parent
    save_report(result, out, figures=False)
    figures = save_figures(result, ctx.path(W.FIGURES, preset, "x").parent)
    meta = {
        "preset": preset,
        "world": world.overrides(preset),
        "seeds": list(args.seeds),
        "steps_per_seed": args.steps,
        "start_hour": args.start_hour,
        "policies": list(result.ranking()),
        "references": result.references,
        "wall_s": result.wall_s,
    }
    atomic_write_bytes(out / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())
    overall = result.overall()
    return {
        **meta,
        "figures": [f"{W.FIGURES}/{preset}/{p.name}" for p in figures],
        "summary_md": markdown_summary(result),
        "oracle_normalised": dict(
            zip(overall["policy"], overall["oracle_normalised_mean"].round(4), strict=True)
        ),
    }


def eval_presets(root: str | Path) -> list[str]:
    """Presets with evaluation results in the run directory ``root``."""
    folder = Path(root) / W.EVAL_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "summary.csv").is_file())


def load_eval(root: str | Path, preset: str) -> dict[str, Any]:
    """``summary`` and ``table`` (DataFrames), ``summary_md`` and ``meta`` of one preset."""
    folder = Path(root) / W.EVAL_DIR / preset
    if not (folder / "summary.csv").is_file():
        raise FileNotFoundError(f"{folder}: no evaluation results (summary.csv)")
    meta_path = folder / "meta.json"
    return {
        "summary": pd.read_csv(folder / "summary.csv"),
        "table": pd.read_csv(folder / "table.csv") if (folder / "table.csv").is_file() else None,
        "summary_md": (folder / "summary.md").read_text()
        if (folder / "summary.md").is_file()
        else "",
        "meta": json.loads(meta_path.read_text()) if meta_path.is_file() else {},
    }
