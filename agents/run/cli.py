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
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.run import cliargs, commands
from agents.run.rundir import RunDir, RunDirError

DEFAULT_RUN_DIR = Path("runs/demo")


@dataclass
class RunOptions:
    """Where a command works and how."""

    run_dir: Path = field(default=DEFAULT_RUN_DIR, metadata={"help": "run directory"})
    force: bool = field(
        default=False, metadata={"help": "redo the command's stages even when they are done"}
    )
    progress: bool = field(
        default=True, metadata={"help": "show progress: a bar on a terminal, else a line a minute"}
    )


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


# ----- commands (simulate, calibrate, dashboard: agents/run/commands.py) --------------
def _log(args: Any, opts: RunOptions) -> int:
    from agents.run.stages import run_log

    return _report(
        opts, "log", args, lambda run: run_log(run, args, opts.force, opts.progress), reads=False
    )


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

        return _report(opts, trainer.stage, args, go, keyed=trainer.label is not None)

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

    return _report(  # its arguments are checked and recorded per preset by run_evaluate
        opts,
        "evaluate",
        args,
        lambda run: run_evaluate(run, args, opts.force, opts.progress),
        keyed=True,
    )


# ----- shared helpers ---------------------------------------------------------------
def _report(
    opts: RunOptions,
    name: str,
    args: Any,
    go: Callable[[RunDir], Any],
    reads: bool = True,
    keyed: bool = False,
) -> int:
    """Run a pipeline stage (or several) of command ``name`` and print what each did.
    ``reads``: the run directory must exist already; ``keyed``: results made with other
    arguments go beside the run's own and ``go`` records the arguments of each (else
    the run keeps one set of arguments per command)."""
    from agents.run.run_report import describe_stage, note_changes

    run = RunDir(opts.run_dir)
    if reads:
        run.require()
    with run.lock():
        run.clean_partials()
        if not keyed:
            run.check_command(name, cliargs.to_dict(args), opts.force)
        result = go(run)
        statuses = result if isinstance(result, list) else [result]
        if not keyed:
            run.record_command(name, cliargs.to_dict(args), opts.force)
        note_changes(run, [st.name for st in statuses if st.status == "ran"], f"liveenv {name}")
    for st in statuses:
        verb = "done" if st.status == "ran" else "already done, kept (--force redoes it)"
        print(f"{st.name}: {verb}: {describe_stage(st.outcome.record)}")
        _print_where(run, st)
    for stage, why in run.stale().items():
        print(f"{stage}: stale (made from an older {', '.join(why)}); rerun it to bring it up")
    print(f"run directory: {run.root}")
    return 0


def _print_where(run: RunDir, st: Any) -> None:
    """Where an evaluation's results or a keyed model are (and how to evaluate it)."""
    if st.name.startswith("evaluate-"):
        folder = st.summary.get("folder", f"results/eval/{st.name.removeprefix('evaluate-')}")
        print(f"results: {run.root / folder / 'summary.md'}")
    elif "-" in st.name and "output" in st.summary:
        output = str(st.summary["output"])
        print(
            f"model: {run.root / output} (beside the run's own; `liveenv evaluate --run-dir "
            f"{run.root}` evaluates it as policy `{Path(output).name}`)"
        )


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
            _own("agents.run.commands", "SimulateArgs"),
            commands.simulate,
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
            _own("agents.run.commands", "CalibrateArgs"),
            commands.calibrate,
        ),
        Command(
            "tokenize",
            "fit the semantic-ID tokenizer on the run's log",
            _own("agents.run.stages", "TokenizeStageArgs"),
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
            commands.export,
        ),
        Command(
            "dashboard",
            "open the Streamlit dashboard on a run directory",
            _own("agents.run.commands", "DashboardArgs"),
            commands.dashboard,
        ),
        Command(
            "demo",
            "the whole pipeline on a small default world, then report.md",
            _own("agents.run.demo", "DemoArgs"),
            commands.demo,
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
        RunDir(opts.run_dir)  # a run directory below a file: refused here
        _fill_run_inputs(command, ns, opts.run_dir)
        args = cliargs.from_namespace(config, ns, exclude=command.exclude)
    except (ValueError, TypeError) as e:
        parser.error(as_typed(str(e), parser))
    return command, args, opts


def as_typed(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with the config fields it names (``days=inf``, ``Args.lr=...``,
    ``seeds is empty``) written as the options the user typed (``--days inf``)."""
    flags: dict[str, str] = {}
    for action in parser._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if long and action.dest != "help":
            flags[action.dest] = long[0]
            flags.setdefault(action.dest.rsplit(".", 1)[-1], long[0])

    def option(match: re.Match[str]) -> str:
        name, tail = match.group(1), match.group(2)
        flag = flags.get(name)
        if flag is None:
            return match.group(0)
        return f"{flag} " if tail == "=" else f"{flag}{tail}"

    return re.sub(r"(?<![\w.-])(?:[A-Z]\w*\.)?([a-z][\w.]*)(=| is | are )", option, message)


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
    except (RunDirError, ValueError, FileNotFoundError, PermissionError, MemoryError) as e:
        if os.environ.get("LIVEENV_DEBUG"):
            raise
        what = "out of memory" if isinstance(e, MemoryError) else e
        print(f"liveenv {command.name}: error: {what}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
