"""``liveenv demo``: the whole pipeline on a small default world, then ``report.md``.

Stages, each skipped when done (see :mod:`agents.run.rundir`): log -> tokenize ->
pretrain -> reward model -> align -> cascade -> evaluate on the run's preset ->
evaluate on the stress presets -> sweep -> report; ``--skip`` leaves stages out.

Budgets: ``demo`` fits in about ten minutes on two CPU cores; ``tiny`` is a
smoke-sized run (about a minute) for tests and for a first look.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agents.run import cliargs
from agents.run.evaluate_stage import EvaluateArgs, run_evaluate
from agents.run.model_stages import ALIGN, PRETRAIN, REWARD, run_cascade
from agents.run.run_report import describe_stage, write_report
from agents.run.rundir import RunDir
from agents.run.stages import (
    LogArgs,
    StageStatus,
    TokenizeStageArgs,
    Trainer,
    run_inputs,
    run_log,
    run_tokenize,
    train_stage,
)
from agents.run.world import WorldArgs

#: Per budget: the knobs of each stage (each a field of the stage's args; an unknown
#: knob is refused when the stage's args are built).
BUDGETS: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {
        "tokenize": {"epochs": 2},
        "pretrain": {"max_steps": 250, "batch_size": 256, "warmup_steps": 25,
                     "eval_every": 125, "checkpoint_every": 125, "log_every": 25},
        "reward": {"epochs": 3},
        "align": {"reward_source": "env", "iterations": 30, "requests_per_iter": 32, "group_size": 8,
                  "pool_requests": 1024, "pool_steps_per_seed": 512, "eval_requests": 128,
                  "log_every": 5, "checkpoint_every": 10},
        "cascade": {"tower_epochs": 3, "ranker_epochs": 4},
        "evaluate": {"seeds": (100, 101, 102), "steps": 400},
        "stress": {"seeds": (100, 101), "steps": 300},
        "sweep": {"grid": {"watch_time": "0.02;0.1;0.5"}, "seeds": (0,), "eval_seeds": (100,),
                  "eval_steps": 300, "workers": 2,
                  "align": {"reward_source": "env", "iterations": 15, "requests_per_iter": 32, "group_size": 8,
                            "pool_requests": 1024, "pool_steps_per_seed": 512,
                            "eval_requests": 128, "log_every": 5, "checkpoint_every": 5}},
    },
    "tiny": {
        "tokenize": {"epochs": 1, "codebook_sizes": (8, 8)},
        "pretrain": {"max_steps": 20, "batch_size": 64, "warmup_steps": 2, "eval_every": 10,
                     "checkpoint_every": 10, "log_every": 5, "d_model": 32, "n_layer": 1},
        "reward": {"epochs": 1},
        "align": {"reward_source": "env", "iterations": 4, "requests_per_iter": 8, "group_size": 4,
                  "pool_requests": 128, "pool_steps_per_seed": 64, "eval_requests": 16,
                  "log_every": 2, "checkpoint_every": 2},
        "cascade": {"tower_epochs": 1, "ranker_epochs": 1, "hidden": 32, "n_clusters": 4},
        "evaluate": {"seeds": (100,), "steps": 100},
        "stress": {"seeds": (100,), "steps": 60},
        "sweep": {"grid": {"gift": "0.005;0.08"}, "seeds": (0,), "eval_seeds": (100,),
                  "eval_steps": 60, "workers": 1,
                  "align": {"reward_source": "env", "iterations": 2, "requests_per_iter": 8, "group_size": 4,
                            "pool_requests": 128, "pool_steps_per_seed": 64,
                            "eval_requests": 16, "log_every": 1, "checkpoint_every": 2}},
    },
}  # fmt: skip

STAGES = (
    "log",
    "tokenize",
    "pretrain",
    "reward",
    "align",
    "cascade",
    "cascade_coldstart",
    "evaluate",
    "stress",
    "sweep",
)

__all__ = ["BUDGETS", "STAGES", "DemoArgs", "run_demo"]


@dataclass
class DemoArgs:
    """Run the whole pipeline on a small default world and write report.md."""

    world: WorldArgs = field(default_factory=WorldArgs, metadata={"flatten": True, "help": "world"})
    days: float = field(default=1.0, metadata={"help": "simulated days of logged traffic"})
    seed: int = field(default=0, metadata={"help": "seed of the log, the models and alignment"})
    start_hour: float | None = field(
        default=None, metadata={"help": "hour of day the log starts (none: the preset's)"}
    )
    budget: Literal["demo", "tiny"] = field(
        default="demo", metadata={"help": "demo: about 10 min on 2 cores; tiny: a smoke run"}
    )
    weights: str | None = field(
        default=None, metadata={"help": "alignment reward weights NAME=VALUE,... (none: env's)"}
    )
    coldstart: bool = field(
        default=True, metadata={"help": "also train the cascade with its cold-start memory"}
    )
    stress_presets: tuple[str, ...] = field(
        default=("cold_start", "short_lifecycle"),
        metadata={"help": "presets of the stress evaluation (empty: none)"},
    )
    skip: tuple[str, ...] = field(
        default=(), metadata={"help": f"stages to leave out, of {list(STAGES)}"}
    )

    def __post_init__(self) -> None:
        self.stress_presets, self.skip = tuple(self.stress_presets), tuple(self.skip)
        bad = [s for s in self.skip if s not in STAGES]
        if bad:
            raise ValueError(f"skip={bad} names unknown stages; allowed: {list(STAGES)}")
        LogArgs(world=self.world, days=self.days)  # validates days
        EvaluateArgs(presets=self.stress_presets)  # validates the presets
        if self.weights is not None:  # refused here, before any stage runs
            from agents.align.weights import parse_weights

            parse_weights(self.weights, "--weights")


def _make(cls: type, knobs: dict[str, Any], **fixed: Any) -> Any:
    """``cls(**knobs, **fixed)``: every knob must be a field of ``cls`` (a misspelt
    budget knob is refused, not dropped); ``fixed`` values ``cls`` lacks are left out."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise ValueError(
            f"budget knob(s) {unknown} are not fields of {cls.__name__}; allowed: {sorted(names)}"
        )
    return cls(**{k: v for k, v in {**knobs, **fixed}.items() if k in names})


def _trainer_args(trainer: Trainer, knobs: dict[str, Any], **fixed: Any) -> Any:
    args_cls, _ = trainer.load()
    return _make(args_cls, knobs, **fixed)


def _train(
    run: RunDir, trainer: Trainer, knobs: dict[str, Any], force: bool, **fixed: Any
) -> StageStatus:
    args = _trainer_args(trainer, knobs, **run_inputs(run, trainer), **fixed)
    return train_stage(run, trainer, args, force)


def demo_stages(
    args: DemoArgs, run: RunDir, force: bool, progress: bool
) -> list[tuple[str, Callable[[], Any]]]:
    """The stages of the demo, in order, as (name, thunk)."""
    b = BUDGETS[args.budget]
    common = {"seed": args.seed, "progress": progress, "threads": 1}
    overrides = args.world.online_overrides()  # alignment's request pool: the evening
    log_args = LogArgs(world=args.world, days=args.days, seed=args.seed, start_hour=args.start_hour)
    tok_args = _make(TokenizeStageArgs, b["tokenize"], seed=args.seed)
    eval_args = EvaluateArgs(**b["evaluate"])
    stress = (
        EvaluateArgs(presets=args.stress_presets, **b["stress"]) if args.stress_presets else None
    )
    stages = [
        ("log", lambda: run_log(run, log_args, force, progress)),
        ("tokenize", lambda: run_tokenize(run, tok_args, force, progress)),
        ("pretrain", lambda: _train(run, PRETRAIN, b["pretrain"], force, **common)),
        ("reward", lambda: _train(run, REWARD, b["reward"], force, **common)),
        (
            "align",
            lambda: _train(
                run,
                ALIGN,
                b["align"],
                force,
                **common,
                weights=args.weights,
                preset=args.world.preset,
                overrides=overrides,
            ),
        ),
        ("cascade", lambda: run_cascade(run, b["cascade"], force, seed=args.seed)),
        *(
            [("cascade_coldstart", lambda: run_cascade(run, b["cascade"], force, True, args.seed))]
            if args.coldstart
            else []
        ),
        ("evaluate", lambda: run_evaluate(run, eval_args, force, progress)),
        *([("stress", lambda: run_evaluate(run, stress, force, progress))] if stress else []),
        ("sweep", lambda: _sweep(run, b["sweep"], force, args, progress)),
    ]
    return [(name, _left_out(name) if name in args.skip else thunk) for name, thunk in stages]


def _sweep(
    run: RunDir, knobs: dict[str, Any], force: bool, args: DemoArgs, progress: bool
) -> StageStatus:
    from agents.run.sweep_stage import SWEEP, run_sweep

    sweep_args = _trainer_args(
        SWEEP,
        knobs,
        **run_inputs(run, SWEEP),
        preset=args.world.preset,
        overrides=args.world.online_overrides(),
        progress=progress,
    )
    return run_sweep(run, sweep_args, force)


def _left_out(name: str) -> Callable[[], StageStatus]:
    return lambda: StageStatus(name, "left_out", "left out with --skip")


def _print_status(i: int, n: int, st: StageStatus) -> None:
    head = f"[{i}/{n}] {st.name:<24}"
    if st.status == "left_out":
        print(f"{head} skipped: {st.reason}", flush=True)
        return
    verb = "done" if st.status == "ran" else "already done, kept"
    print(f"{head} {verb} ({st.wall_s:,.0f} s): {describe_stage(st.outcome.record)}", flush=True)


def run_demo(
    args: DemoArgs, run_dir: str | Path, force: bool = False, progress: bool = True
) -> tuple[Path, list[StageStatus]]:
    """Run (or resume) the demo in ``run_dir``; return the report path and the statuses."""
    run = RunDir(run_dir)
    start = time.perf_counter()
    statuses: list[StageStatus] = []
    with run.lock():
        run.clean_partials()
        recorded = {k: v for k, v in cliargs.to_dict(args).items() if k != "skip"}
        run.check_command("demo", recorded, force)
        stages = demo_stages(args, run, force, progress)
        log_args = cliargs.to_dict(
            LogArgs(args.world, args.days, "platform", args.seed, args.start_hour)
        )
        run.check_command("log", log_args, force)
        for i, (name, thunk) in enumerate(stages, 1):
            print(f"[{i}/{len(stages)}] {name} ...", flush=True)
            result = thunk()
            for st in result if isinstance(result, list) else [result]:
                statuses.append(st)
                _print_status(i, len(stages), st)
            if name == "log" and run.record("log") is not None:
                run.record_command("log", log_args, force)  # later stages read the world
        run.record_command("demo", recorded, force)
        report = write_report(
            run,
            statuses,
            "liveenv demo",
            time.perf_counter() - start,
            main_preset=args.world.preset,
        )
    return report, statuses
