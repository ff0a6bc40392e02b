"""``liveenv export``: a run's log in other formats, under ``exports/`` of the run.

* ``--kuailive``: ``exports/kuailive/<table>.csv``, the log in KuaiLive's tables and
  column names (:mod:`agents.logs.export`);
* ``--minari``: ``exports/minari/<dataset_id>/``, a Minari dataset of episodes
  simulated in the log's world under its behaviour policy
  (:mod:`agents.logs.minari_export`); read it with
  ``MINARI_DATASETS_PATH=<run>/exports/minari`` and ``minari.load_dataset(id)``.

Each is a stage of the run (``export_kuailive``, ``export_minari``) whose
fingerprint holds its arguments and the log's: it is kept while both are the same
and redone when either changes (an export is derived data, so a run directory
does not hold one configuration per export as it does per training command).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from agents.logs.export import ExportArgs
from agents.run import world as W
from agents.run.rundir import RunDir, RunDirError, StageContext
from agents.run.stages import check_log, stage_fingerprint

__all__ = ["EXPORTS", "run_export"]

EXPORTS = "exports"


def run_export(args: ExportArgs, run_dir: str | Path, force: bool = False) -> list[str]:
    """Run the exports ``args`` asks for in ``run_dir``; return one line about each."""
    from agents.logs.minari_export import minari_available

    if args.minari and not minari_available():
        raise RunDirError("--minari needs Minari: pip install -e '.[minari]'")
    run = RunDir(run_dir)
    log = Path(args.log) if args.log else run.root / W.LOG_DIR
    upstream = () if args.log else ("log",)
    lines = []
    with run.lock():
        run.clean_partials()
        if args.kuailive:
            fp = stage_fingerprint(run, {"log": str(log)}, upstream)
            outcome = run.run_stage("export_kuailive", lambda ctx: _kuailive(ctx, log), fp, force)
            rows = ", ".join(f"{k} {v}" for k, v in outcome.record.summary["rows"].items())
            lines.append(f"export_kuailive: {EXPORTS}/kuailive/*.csv ({rows} rows)")
        if args.minari:
            knobs = {k: getattr(args, k) for k in _MINARI_KNOBS}
            fp = stage_fingerprint(run, {"log": str(log), **knobs}, upstream)
            outcome = run.run_stage("export_minari", lambda ctx: _minari(ctx, log, args), fp, force)
            s = outcome.record.summary
            lines.append(
                f"export_minari: {s['path']} ({s['episodes']} episodes, {s['steps']} steps, "
                f"{s['bytes_per_step']:,.0f} bytes per step, {s['data_format']}); read it with "
                f"MINARI_DATASETS_PATH={run.root / EXPORTS / 'minari'} and "
                f"minari.load_dataset({s['dataset_id']!r})"
            )
    return lines


_MINARI_KNOBS = ("episodes", "hours", "seed", "policy", "dataset_id", "minari_format")


def _kuailive(ctx: StageContext, log: Path) -> dict[str, Any]:
    from agents.logs.export import write_kuailive

    check_log(log)
    return {"rows": write_kuailive(log, ctx.path(EXPORTS, "kuailive"))}


def _minari(ctx: StageContext, log: Path, args: ExportArgs) -> dict[str, Any]:
    from agents.logs.minari_export import export_minari

    check_log(log)
    staged = ctx.path(EXPORTS, "minari")
    summary = export_minari(
        log,
        staged,
        dataset_id=args.dataset_id,
        episodes=args.episodes,
        hours=args.hours,
        seed=args.seed,
        policy=args.policy,
        data_format=args.minari_format,
    )
    final = ctx.final(EXPORTS, "minari", summary["dataset_id"])
    shutil.rmtree(final, ignore_errors=True)  # files are merged in: drop an older export's
    rel = Path(summary["path"]).relative_to(ctx.stage_dir)
    return {**summary, "path": rel.as_posix()}
