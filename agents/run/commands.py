"""The commands of ``liveenv`` that are not stages of the pipeline: ``simulate``,
``calibrate`` (each one stage of its own, writing into ``results/``) and
``dashboard``, plus the runners of ``export`` and ``demo``. Their configs and
implementations; :mod:`agents.run.cli` wires them.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agents.run import cliargs
from agents.run.rundir import RunDir, RunDirError
from agents.run.world import MAX_DAYS

if TYPE_CHECKING:
    from agents.run.cli import RunOptions

__all__ = ["CalibrateArgs", "DashboardArgs", "SimulateArgs", "calibrate", "dashboard", "simulate"]


def _stage(opts: RunOptions, name: str, args: Any, work: Callable[[Any], dict[str, Any]]) -> Any:
    """Run ``work`` as the one stage ``name`` of a command, in the run directory."""
    run = RunDir(opts.run_dir)
    with run.lock():
        run.clean_partials()
        run.check_command(name, cliargs.to_dict(args), opts.force)
        outcome = run.run_stage(name, work, cliargs.to_dict(args), opts.force)
        run.record_command(name, cliargs.to_dict(args), opts.force)
        return outcome


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
        if not 0 < self.hours <= 24 * MAX_DAYS:
            raise ValueError(f"hours={self.hours!r} is invalid: must be in (0, {24 * MAX_DAYS}]")
        from policies.registry import baseline_names

        if not self.policy:
            raise ValueError("policy is empty: name at least one baseline")
        allowed = baseline_names(privileged=False)
        unknown = [p for p in self.policy if p not in allowed]
        if unknown:
            raise ValueError(f"policy={unknown} is unknown; allowed: {list(allowed)}")
        if not 1 <= self.batch_size <= 1 << 20:
            raise ValueError(
                f"batch_size={self.batch_size!r} is invalid: must be in [1, {1 << 20}]"
            )


def simulate(args: SimulateArgs, opts: RunOptions) -> int:
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
        if not 0 < self.days <= MAX_DAYS:
            raise ValueError(f"days={self.days!r} is invalid: must be in (0, {MAX_DAYS}]")
        if self.start_hour is not None and not 0 <= self.start_hour < 24:
            raise ValueError(f"start_hour={self.start_hour!r} is invalid: must be in [0, 24)")


def calibrate(args: CalibrateArgs, opts: RunOptions) -> int:
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

    port: int = field(default=8501, metadata={"help": "port to serve on (1-65535)"})
    address: str = field(default="127.0.0.1", metadata={"help": "address to serve on"})
    browser: bool = field(default=False, metadata={"help": "open a browser window"})

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port={self.port!r} is invalid: must be in [1, 65535]")
        if not self.address.strip():
            raise ValueError("address is empty: give a host name or IP address")


def dashboard(args: DashboardArgs, opts: RunOptions) -> int:
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
    return serve(cmd)


def serve(cmd: list[str]) -> int:
    """Run ``cmd`` (the Streamlit server) until it exits, passing SIGTERM, SIGINT and SIGHUP
    on to it, so that stopping ``liveenv dashboard`` stops the server too. Its exit code
    (128 + the signal's number when a signal stopped it, as a shell reports it)."""
    import signal

    child = subprocess.Popen(cmd)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    caught = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in caught}
    try:
        code = child.wait()
    finally:
        if child.poll() is None:  # this process is going down some other way
            child.kill()
            child.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - code if code < 0 else code


def export(args: Any, opts: RunOptions) -> int:
    from agents.run.export_stage import run_export

    print("\n".join(run_export(args, opts.run_dir, opts.force)))
    return 0


def demo(args: Any, opts: RunOptions) -> int:
    import time

    from agents.run.demo import run_demo

    start = time.perf_counter()
    report, _ = run_demo(args, opts.run_dir, opts.force, opts.progress)
    print(f"\ndemo finished in {time.perf_counter() - start:,.0f} s")
    print(f"report:    {report}")
    print(f"dashboard: liveenv dashboard --run-dir {opts.run_dir}")
    return 0
