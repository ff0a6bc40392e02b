"""The reward-weight sweep as a stage of a run: :func:`agents.align.sweep.sweep` over the
run's pretrained generator and reward model, in the run's world.

The sweep keeps its cells (each with a done-marker, resumable) in the stage's
checkpoint folder; when every cell is done its tables go to ``results/sweep/``
(``results.csv``, ``summary.csv``, ``summary.md``, ``steering.csv``) and the
Pareto plot to ``figures/sweep_pareto.png``. The aligned model of each cell is
kept in ``checkpoints/sweep/<cell>/``; ``results.csv`` names it relative to the
run directory (the checkpoint folder is deleted when the stage finishes).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from agents.run import world as W
from agents.run.rundir import RunDir, StageContext
from agents.run.stages import (
    StageStatus,
    Trainer,
    stage_fingerprint,
    with_run_inputs,
    world_of,
)


def _sweep_source() -> tuple[type, Any]:
    from agents.align.sweep import SweepArgs, sweep

    return SweepArgs, sweep


SWEEP = Trainer(
    stage="sweep",
    source=_sweep_source,
    output=W.SWEEP_DIR,
    paths={
        "generator": (f"{W.GENERATOR}/model.pt", "pretrain"),
        "reward_model": (f"{W.REWARD_MODEL}/reward_model.pt", "reward"),
    },
    ignore=("out", "progress", "workers", "ray_address"),
)
MODELS = "checkpoints/sweep"  # each cell's aligned model
TABLES = ("results.csv", "summary.csv", "summary.md", "steering.csv")

__all__ = ["SWEEP", "run_sweep"]


def run_sweep(run: RunDir, args: Any, force: bool = False) -> StageStatus:
    """Run (or resume) the sweep ``args`` (an ``agents.align.sweep.SweepArgs``) in ``run``."""
    _, fn = SWEEP.load()
    world = world_of(run)
    if world is not None and not args.overrides and args.preset == world.preset:
        args = dataclasses.replace(args, overrides=world.online_overrides())
    args, upstream = with_run_inputs(run, SWEEP, args)
    fp = stage_fingerprint(run, args, upstream, SWEEP.ignore)

    def work(ctx: StageContext) -> dict[str, Any]:
        ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        ctx.partial_output = MODELS
        paths = fn(dataclasses.replace(args, out=str(ctx.checkpoint_dir)))
        _keep_models(ctx)
        for name in TABLES:
            if name == "results.csv":
                continue
            if (ctx.checkpoint_dir / name).is_file():
                shutil.copy2(ctx.checkpoint_dir / name, ctx.path(W.SWEEP_DIR, name))
        if (ctx.checkpoint_dir / "pareto.png").is_file():
            shutil.copy2(ctx.checkpoint_dir / "pareto.png", ctx.path(W.FIGURES, "sweep_pareto.png"))
        cells = len(list((ctx.checkpoint_dir / "cells").glob("*/DONE")))
        return {"output": W.SWEEP_DIR, "cells": cells, "files": sorted(map(str, paths))}

    outcome = run.run_stage("sweep", work, fp, force)
    return StageStatus("sweep", "skipped" if outcome.skipped else "ran", outcome=outcome)


def _keep_models(ctx: StageContext) -> None:
    """Copy each cell's model into ``checkpoints/sweep/`` and write ``results.csv``
    with the ``model`` column relative to the run directory."""
    import pandas as pd

    source = ctx.checkpoint_dir / "results.csv"
    if not source.is_file():
        return
    table = pd.read_csv(source)
    if "model" in table:
        kept = []
        for model in table["model"].astype(str):
            path = Path(model)
            try:
                rel = path.resolve().relative_to(ctx.checkpoint_dir.resolve())
            except ValueError:  # not made by this sweep (the pretrained reference)
                kept.append(str(ctx.run.portable(model)).removeprefix("$RUN/"))
                continue
            target = f"{MODELS}/{rel.parent.as_posix()}/{path.name}"
            if path.is_file():
                shutil.copy2(path, ctx.path(*target.split("/")))
            kept.append(target)
        table["model"] = kept
    table.to_csv(ctx.path(W.SWEEP_DIR, "results.csv"), index=False)
