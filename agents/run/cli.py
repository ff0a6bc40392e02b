"""``liveenv``: the command line of the workbench.

Every command works in a run directory (--run-dir, default runs/demo; layout in
agents/run/rundir.py) and can resume: a finished stage is kept, an interrupted one
continues from its checkpoint or starts again. The options of each command come
from its typed config (liveenv <command> --help).

    liveenv demo                      the whole pipeline on a small default world
    liveenv log / tokenize / pretrain / reward / align / cascade / evaluate
                                      one stage each, reading the run's earlier stages
    liveenv export --kuailive         the run's log as KuaiLive's tables (or --minari)
    liveenv dashboard                 the Streamlit dashboard on a run directory

Errors in arguments or inputs (a missing log, a truncated checkpoint, a log of
another schema) end with ``liveenv <command>: error: ...`` and status 2;
``LIVEENV_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agents.run import cliargs
from agents.run.rundir import RunDir, RunDirError

DEFAULT_RUN_DIR = Path("runs/demo")


@dataclass
class RunOptions:
    """Where a command works and how."""

    run_dir: Path = field(default=DEFAULT_RUN_DIR, metadata={"help": "run directory"})
    force: bool = field(
        default=False, metadata={"help": "redo the command's stages even when they are done"}
    )
    progress: bool = field(default=True, metadata={"help": "progress bars (on a terminal)"})


@dataclass(frozen=True)
class Command:
    """One ``liveenv`` sub-command: its typed config and what runs it."""

    name: str
    help: str
    config: Callable[[], type]  # the Args dataclass (imported lazily: torch is slow to load)
    run: Callable[[Any, RunOptions], int]
    exclude: tuple[str, ...] = ()  # Args fields the run directory fills in
    #: Args field -> default on the command line (paths: empty means the run's own input)
    defaults: dict[str, Any] = field(default_factory=dict)
    #: (module, name) of the command's :class:`agents.run.stages.Trainer`: its input
    #: fields default to the run's own files (shown so in --help)
    trainer: tuple[str, str] | None = None
    #: set those inputs before the config validates them (a config that requires them)
    fill_inputs: bool = False
    #: the config class for these arguments when an option picks it (``align --method``)
    select: Callable[[Sequence[str]], type] | None = None


# ----- commands ---------------------------------------------------------------------
@dataclass
class SimulateArgs:
    """Run baseline policies in a world and print a summary table."""

    preset: str = field(default="default", metadata={"help": "world preset"})
    policy: tuple[str, ...] = field(
        default=("random", "popular"),
        metadata={"help": "baseline policies to run (the registry's non-privileged baselines)"},
    )
    hours: float = field(default=24.0, metadata={"help": "simulated hours"})
    seed: int = field(default=0, metadata={"help": "world and policy seed"})
    batch_size: int = field(default=1024, metadata={"help": "requests served per batch"})

    def __post_init__(self) -> None:
        from liveenv.presets import PRESETS

        if self.preset not in PRESETS:
            raise ValueError(f"preset={self.preset!r} is unknown; allowed: {sorted(PRESETS)}")
        if not self.hours > 0:
            raise ValueError(f"hours={self.hours!r} is invalid: must be a number > 0")
        from policies.registry import baseline_names

        if not self.policy:
            raise ValueError("policy is empty: name at least one baseline")
        allowed = baseline_names(privileged=False)
        unknown = [p for p in self.policy if p not in allowed]
        if unknown:
            raise ValueError(f"policy={unknown} is unknown; allowed: {list(allowed)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r} is invalid: must be >= 1")


def _simulate(args: SimulateArgs, opts: RunOptions) -> int:
    import pandas as pd

    from agents.evaluate.simulate import simulate, summary_table
    from agents.evaluate.tables import write_table
    from policies.registry import make_baseline

    def work(ctx: Any) -> dict[str, Any]:
        rows = [
            simulate(
                make_baseline(p),
                preset=args.preset,
                hours=args.hours,
                seed=args.seed,
                batch_size=args.batch_size,
            )
            for p in args.policy
        ]
        text = f"preset={args.preset} simulated {args.hours:g} h, seed {args.seed}\n\n"
        text += summary_table(rows) + "\n"
        ctx.path("results", "simulate.md").write_text(text)
        frame = pd.DataFrame([{**dataclasses.asdict(r), **r.rates} for r in rows])
        write_table(frame.drop(columns="rates"), ctx.path("results", "simulate.csv"))
        return {"table": text}

    outcome = _stage(opts, "simulate", args, work)
    print(outcome.record.summary["table"])
    return 0


def _log(args: Any, opts: RunOptions) -> int:
    from agents.run.stages import run_log

    return _report(opts, "log", args, lambda run: run_log(run, args, opts.force, opts.progress))


def _tokenize(args: Any, opts: RunOptions) -> int:
    from agents.run.stages import run_tokenize

    return _report(
        opts, "tokenize", args, lambda run: run_tokenize(run, args, opts.force, opts.progress)
    )


def _trainer_command(trainer_name: str) -> Callable[[Any, RunOptions], int]:
    def run_command(args: Any, opts: RunOptions) -> int:
        from agents.run import model_stages as models
        from agents.run.stages import train_stage, world_of

        trainer = getattr(models, trainer_name)
        changes = {"progress": opts.progress} if hasattr(args, "progress") else {}

        def go(run: RunDir) -> Any:
            world = world_of(run)
            if world and hasattr(args, "overrides") and not args.overrides:
                changes["overrides"] = world.online_overrides(getattr(args, "preset", None))
            return train_stage(run, trainer, dataclasses.replace(args, **changes), opts.force)

        return _report(opts, trainer.stage, args, go)

    return run_command


def _cascade(args: Any, opts: RunOptions) -> int:
    from agents.run.model_stages import run_cascade

    knobs = cliargs.to_dict(args)
    return _report(
        opts,
        "cascade_coldstart" if args.coldstart else "cascade",
        args,
        lambda run: run_cascade(run, knobs, opts.force, args.coldstart, args.seed),
    )


def _evaluate(args: Any, opts: RunOptions) -> int:
    from agents.run.evaluate_stage import run_evaluate

    code = _report(
        opts, "evaluate", args, lambda run: run_evaluate(run, args, opts.force, opts.progress)
    )
    for preset in args.presets or ():
        print(f"results: {opts.run_dir / 'results' / 'eval' / preset / 'summary.md'}")
    return code


@dataclass
class CalibrateArgs:
    """Simulate a world under a platform-like policy and set its figures beside KuaiLive's."""

    preset: str = field(default="default", metadata={"help": "world preset"})
    days: float = field(default=1.0, metadata={"help": "simulated days"})
    seed: int = field(default=0, metadata={"help": "world and policy seed"})
    start_hour: float | None = field(default=None, metadata={"help": "start hour (none: preset's)"})
    policy: Literal["platform", "random", "popular"] = field(
        default="platform", metadata={"help": "behaviour policy"}
    )

    def __post_init__(self) -> None:
        if not self.days > 0:
            raise ValueError(f"days={self.days!r} is invalid: must be > 0")


def _calibrate(args: CalibrateArgs, opts: RunOptions) -> int:
    import json

    from agents.evaluate.calibration import calibrate, format_calibration_table

    def work(ctx: Any) -> dict[str, Any]:
        figures = calibrate(
            args.preset, args.days, args.seed, args.start_hour, args.policy, progress=opts.progress
        )
        table = format_calibration_table(figures)
        ctx.path("results", "calibration.md").write_text(table + "\n")
        ctx.path("results", "calibration.json").write_text(json.dumps(figures, indent=2))
        return {"table": table}

    print(_stage(opts, "calibrate", args, work).record.summary["table"])
    return 0


@dataclass
class DashboardArgs:
    """Open the Streamlit dashboard on a run directory (the bundled sample run if it has none)."""

    port: int = field(default=8501, metadata={"help": "port to serve on"})
    address: str = field(default="127.0.0.1", metadata={"help": "address to serve on"})
    browser: bool = field(default=False, metadata={"help": "open a browser window"})


def _dashboard(args: DashboardArgs, opts: RunOptions) -> int:
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        raise RunDirError("streamlit is not installed: pip install -e '.[dashboard]'")
    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        f"--server.port={args.port}",
        f"--server.address={args.address}",
        f"--server.headless={'false' if args.browser else 'true'}",
        "--browser.gatherUsageStats=false",
        "--",
        "--run-dir",
        str(opts.run_dir),
    ]
    print(f"dashboard on http://{args.address}:{args.port} for {opts.run_dir} (Ctrl-C to stop)")
    return subprocess.call(cmd)


def _export(args: Any, opts: RunOptions) -> int:
    from agents.run.export_stage import run_export

    print("\n".join(run_export(args, opts.run_dir, opts.force)))
    return 0


def _demo(args: Any, opts: RunOptions) -> int:
    from agents.run.demo import run_demo

    start = time.perf_counter()
    report, _ = run_demo(args, opts.run_dir, opts.force, opts.progress)
    print(f"\ndemo finished in {time.perf_counter() - start:,.0f} s")
    print(f"report:    {report}")
    print(f"dashboard: liveenv dashboard --run-dir {opts.run_dir}")
    return 0


# ----- shared helpers ---------------------------------------------------------------
def _stage(opts: RunOptions, name: str, args: Any, work: Callable[[Any], dict[str, Any]]) -> Any:
    run = RunDir(opts.run_dir)
    with run.lock():
        run.clean_partials()
        run.check_command(name, cliargs.to_dict(args), opts.force)
        outcome = run.run_stage(name, work, cliargs.to_dict(args), opts.force)
        run.record_command(name, cliargs.to_dict(args), opts.force)
        return outcome


def _report(opts: RunOptions, name: str, args: Any, go: Callable[[RunDir], Any]) -> int:
    """Run a pipeline stage (or several) and print what each did."""
    from agents.run.run_report import describe_stage

    run = RunDir(opts.run_dir)
    with run.lock():
        run.clean_partials()
        run.check_command(name, cliargs.to_dict(args), opts.force)
        result = go(run)
        run.record_command(name, cliargs.to_dict(args), opts.force)
    code = 0
    for st in result if isinstance(result, list) else [result]:
        verb = "done" if st.status == "ran" else "already done, kept (--force redoes it)"
        print(f"{st.name}: {verb}: {describe_stage(st.outcome.record)}")
    print(f"run directory: {run.root}")
    return code


def _trained(name: str) -> Callable[[], type]:
    """The args class of trainer ``name`` (:mod:`agents.train.registry`)."""

    def load() -> type:
        from agents.run.stages import registered

        return registered(name)()[0]

    return load


def _aligner_args(argv: Sequence[str]) -> type:
    """``liveenv align``'s config: the args class of the aligner ``--method`` names."""
    from agents.align.registry import aligner_for

    method = "ecpo"
    for i, token in enumerate(argv):
        if token == "--method" and i + 1 < len(argv):
            method = argv[i + 1]
        elif token.startswith("--method="):
            method = token.split("=", 1)[1]
    try:
        return aligner_for(method).args
    except ValueError as e:
        raise SystemExit(f"liveenv align: error: argument --method: {e}") from None


def _own(module: str, name: str) -> Callable[[], type]:
    def load() -> type:
        import importlib

        return getattr(importlib.import_module(module), name)

    return load


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "simulate",
            "run baseline policies in a world and print a summary",
            _own("agents.run.cli", "SimulateArgs"),
            _simulate,
        ),
        Command(
            "log",
            "simulate a world under a behaviour policy and log every impression",
            _own("agents.run.stages", "LogArgs"),
            _log,
        ),
        Command(
            "calibrate",
            "compare the simulated world with KuaiLive's figures",
            _own("agents.run.cli", "CalibrateArgs"),
            _calibrate,
        ),
        Command(
            "tokenize",
            "fit the semantic-ID tokenizer on the run's log",
            _own("agents.run.stages", "TokenizeArgs"),
            _tokenize,
        ),
        Command(
            "pretrain",
            "pretrain the OneLive generator on the run's log",
            _trained("pretrain"),
            _trainer_command("PRETRAIN"),
            exclude=("out", "resume", "progress"),
            trainer=("agents.run.model_stages", "PRETRAIN"),
        ),
        Command(
            "reward",
            "train the multi-objective reward model on the run's log",
            _trained("reward"),
            _trainer_command("REWARD"),
            exclude=("out", "progress"),
            defaults={"log": ""},
            trainer=("agents.run.model_stages", "REWARD"),
        ),
        Command(
            "align",
            "align the pretrained generator to the reward weights (--method ecpo, grpo or dpo)",
            _trained("align"),
            _trainer_command("ALIGN"),
            exclude=("out", "resume", "progress"),
            trainer=("agents.run.model_stages", "ALIGN"),
            fill_inputs=True,
            select=_aligner_args,
        ),
        Command(
            "cascade",
            "train the cascade baseline (retrieval + ranker) on the run's log",
            _trained("cascade"),
            _cascade,
            exclude=("out", "logs", "threads", "name"),
        ),
        Command(
            "evaluate",
            "evaluate every policy of the run in the simulator",
            _own("agents.run.evaluate_stage", "EvaluateArgs"),
            _evaluate,
        ),
        Command(
            "sweep",
            "align and evaluate over a grid of reward weights (Pareto front)",
            _own("agents.align.sweep", "SweepArgs"),
            lambda a, o: _sweep(a, o),
            exclude=("out", "progress"),
            defaults={"generator": ""},
            trainer=("agents.run.sweep_stage", "SWEEP"),
        ),
        Command(
            "export",
            "the run's log as KuaiLive's tables (--kuailive) or a Minari dataset (--minari)",
            _own("agents.logs.export", "ExportArgs"),
            _export,
        ),
        Command(
            "dashboard",
            "open the Streamlit dashboard on a run directory",
            _own("agents.run.cli", "DashboardArgs"),
            _dashboard,
        ),
        Command(
            "demo",
            "the whole pipeline on a small default world, then report.md",
            _own("agents.run.demo", "DemoArgs"),
            _demo,
        ),
    )
}


def _sweep(args: Any, opts: RunOptions) -> int:
    import importlib.util

    from agents.run.sweep_stage import run_sweep

    if args.ray_address and importlib.util.find_spec("ray") is None:
        raise RunDirError("--ray-address needs Ray: pip install -e '.[ray]' (or pip install ray)")
    return _report(opts, "sweep", args, lambda run: run_sweep(run, args, opts.force))


# ----- parsing ----------------------------------------------------------------------
def version_line() -> str:
    """``liveenv-workbench <version>`` of the installed distribution."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"liveenv-workbench {version('liveenv-workbench')}"
    except PackageNotFoundError:  # run from a checkout that was never pip-installed
        return "liveenv-workbench (not installed)"


def top_parser() -> argparse.ArgumentParser:
    """``liveenv --help``: the commands, without importing any of them."""
    parser = argparse.ArgumentParser(
        prog="liveenv",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {c.name:<11} {c.help}" for c in COMMANDS.values())
        + "\n\n`liveenv <command> --help` lists the options of one command.",
    )
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("command", choices=list(COMMANDS), metavar="command")
    return parser


def command_parser(
    command: Command, argv: Sequence[str] = ()
) -> tuple[argparse.ArgumentParser, type]:
    """The parser of one command: its run options, then the fields of its config."""
    config = command.select(argv) if command.select else command.config()
    parser = argparse.ArgumentParser(
        prog=f"liveenv {command.name}",
        description=cliargs.class_summary(config) or command.help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cliargs.add_arguments(parser, RunOptions, group_title="run directory")
    cliargs.add_arguments(
        parser,
        config,
        exclude=command.exclude,
        defaults=command.defaults,
        group_title=f"{command.name} options",
    )
    inputs = _trainer(command).paths if command.trainer else {}
    for action in parser._actions:  # "(default: )" of an input path: say which file it is
        if action.dest in inputs and action.help:
            rel = inputs[action.dest][0]
            action.help = action.help.replace("(required) ", "").replace(
                "(default: )", f"(default: the run's {rel})"
            )
    return parser, config


def _trainer(command: Command) -> Any:
    import importlib

    module, name = command.trainer or ("", "")
    return getattr(importlib.import_module(module), name)


def parse(argv: Sequence[str]) -> tuple[Command, Any, RunOptions]:
    """The command, its config and the run options from ``argv`` (exits on bad input)."""
    argv = list(argv)
    if not argv or argv[0].startswith("-"):
        top_parser().parse_args(argv or ["--help"])
    top_parser().parse_args(argv[:1])  # refuses an unknown command with the list
    command = COMMANDS[argv[0]]
    parser, config = command_parser(command, argv[1:])
    ns = parser.parse_args(argv[1:])
    try:
        opts = cliargs.from_namespace(RunOptions, ns)
        _fill_run_inputs(command, ns, opts.run_dir)
        args = cliargs.from_namespace(config, ns, exclude=command.exclude)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    return command, args, opts


def _fill_run_inputs(command: Command, ns: argparse.Namespace, run_dir: Path) -> None:
    """Empty input paths of a trainer command: the run directory's own files (so that a
    config requiring them validates; a missing one is refused by the stage, naming it)."""
    if command.trainer is None or not command.fill_inputs:
        return
    from agents.run.stages import run_inputs

    for key, path in run_inputs(RunDir(run_dir), _trainer(command)).items():
        if hasattr(ns, key) and not getattr(ns, key):
            setattr(ns, key, path)


def main(argv: Sequence[str] | None = None) -> int:
    command, args, opts = parse(sys.argv[1:] if argv is None else argv)
    try:
        return int(command.run(args, opts))
    except KeyboardInterrupt:
        print(
            f"\nliveenv {command.name}: interrupted; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except (RunDirError, ValueError, FileNotFoundError) as e:
        if os.environ.get("LIVEENV_DEBUG"):
            raise
        print(f"liveenv {command.name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
