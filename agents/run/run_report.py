"""``report.md`` of a run: what each stage made, the results tables and figures."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.evaluate.tables import markdown_table
from agents.run import world as W
from agents.run.evaluate_stage import eval_presets, load_eval
from agents.run.markers import StageRecord
from agents.run.rundir import RunDir
from agents.run.stages import StageStatus
from liveenv.atomic import atomic_write_bytes

FIGURE_TITLES = {
    "weighted_return": "Weighted return per impression (95 % CI over seeds)",
    "by_user_cohort": "By user cohort",
    "by_streamer_cohort": "By streamer cohort",
    "by_phase": "By lifecycle phase of the room",
}

__all__ = ["describe_stage", "note_changes", "write_report"]
_NOTE = re.compile(r"<!-- liveenv changed: (\[.*?\]) -->\n.*?<!-- /liveenv changed -->\n\n", re.S)


def _n(x: Any, digits: int = 0) -> str:
    try:
        return f"{float(x):,.{digits}f}"
    except (TypeError, ValueError):
        return str(x)


def describe_stage(record: StageRecord) -> str:
    """One line on what a finished stage made."""
    s, name = record.summary, record.name
    if name == "log":
        w = s.get("world", {})
        return (
            f"{_n(s.get('rows'))} impressions, {_n(s.get('days'), 1)} simulated day(s) of "
            f"`{w.get('preset', '?')}` ({_n(w.get('n_users'))} users, "
            f"{_n(w.get('n_streamers'))} streamers) under the `{s.get('policy')}` policy"
        )
    if name == "tokenize":
        return (
            f"{s.get('mode')} SIDs, codebooks {s.get('vocab_sizes')}; "
            f"{_n(s.get('distinct_sids'))} distinct SIDs for {_n(s.get('distinct_rooms'))} "
            f"rooms in the log, utilisation per level {s.get('codebook_utilisation')}, "
            f"{_n(100 * float(s.get('collision_rate', 0)), 1)} % of rooms share a SID with "
            f"another room live at the same time"
        )
    if name == "pretrain":
        return (
            f"generator of {_n(s.get('n_params'))} parameters, {_n(s.get('steps'))} steps on "
            f"{_n(s.get('n_train'))} examples ({_n(s.get('tokens_per_s'))} tokens/s); "
            f"validation loss {_n(s.get('final_valid_loss'), 3)}"
        )
    if name == "reward":
        ece = ", ".join(f"{k} {v}" for k, v in s.get("relative_ece", {}).items())
        return f"reward model; relative calibration error per tower: {ece or 'n/a'}"
    if name.partition("-")[0] == "align":
        first, last = s.get("first", {}), s.get("last", {})
        return (
            f"{_n(s.get('iterations'))} iterations to {_weights(s.get('weights'))}; expected "
            f"return of the greedy policy on held-out requests "
            f"{_n(first.get('env_greedy_return'), 3)} -> {_n(last.get('env_greedy_return'), 3)}, "
            f"KL to the pretrained {_n(last.get('kl_ref'), 4)}"
            + (f"; model in `{s.get('output')}`" if name != "align" else "")
        )
    if name.startswith("cascade"):
        return (
            f"{name.replace('_', ' + ')} trained on {_n(s.get('rows'))} exposures; "
            f"ranker validation loss {s.get('ranker_val')}"
        )
    if name == "sweep":
        return (
            f"{_n(s.get('cells'))} cells (weight vectors x seeds, plus the pretrained "
            f"reference) aligned and evaluated; tables in `{s.get('output')}`"
        )
    if name.startswith("evaluate-"):
        norm = s.get("oracle_normalised", {})
        ranked = sorted(((v, k) for k, v in norm.items() if isinstance(v, float)), reverse=True)
        best = ", ".join(f"{k} {v:.2f}" for v, k in ranked)
        return (
            f"{len(s.get('policies', []))} policies x seeds {s.get('seeds')} x "
            f"{s.get('steps_per_seed')} requests; oracle-normalised: {best}"
        )
    scalars = {
        k: v
        for k, v in s.items()
        if isinstance(v, int | float | str) and k not in ("output", "result", "summary_md")
    }
    shown = ", ".join(
        f"{k} {_n(v, 3) if isinstance(v, float) else v}" for k, v in list(scalars.items())[:6]
    )
    return f"`{s.get('output', '')}`" + (f": {shown}" if shown else "")


def _weights(weights: Any) -> str:
    """``the default reward weights`` or ``reward weights gift=0.2 (others default)``."""
    from agents.evaluate.tables import weights_text
    from liveenv.objectives import DEFAULT_WEIGHTS

    if not isinstance(weights, dict):
        return "the run's reward weights"
    diff = {k: v for k, v in weights.items() if DEFAULT_WEIGHTS.get(k) != v}
    return (
        f"reward weights {weights_text(diff)} (others default)"
        if diff
        else ("the default reward weights")
    )


def note_changes(run: RunDir, redone: Sequence[str], command: str) -> None:
    """Say at the top of ``report.md`` (when there is one) that ``redone`` stages were
    made again after it was written, and which stages are stale since."""
    if not redone or not run.report_path.is_file():
        return
    text = run.report_path.read_text()
    match = _NOTE.search(text)
    before: list[str] = json.loads(match.group(1)) if match else []
    text = _NOTE.sub("", text, count=1)
    names = sorted({*before, *redone})
    stale = run.stale()
    lines = [
        f"> **This report is out of date**: made again after it was written (last by "
        f"`{command}`): {', '.join(f'`{n}`' for n in names)}; its tables and figures "
        f"may describe what they replaced."
    ]
    if stale:
        lines.append(
            "> Stale (made from an older version of a stage they depend on): "
            + ", ".join(f"`{s}`" for s in sorted(stale))
            + "; redo them (`liveenv demo --force`, or their commands) to bring the run up."
        )
    note = f"<!-- liveenv changed: {json.dumps(names)} -->\n" + ">\n".join(
        line + "\n" for line in lines
    )
    note += "<!-- /liveenv changed -->\n\n"
    head, _, rest = text.partition("\n\n")
    atomic_write_bytes(run.report_path, f"{head}\n\n{note}{rest}".encode())


def _pipeline_table(run: RunDir, statuses: Sequence[StageStatus]) -> str:
    now = {s.name: s for s in statuses}
    stale = run.stale()
    rows = []
    for record in run.records():
        st = now.get(record.name)
        status = "done (this run)" if st and st.status == "ran" else "done (earlier, kept)"
        if record.name in stale:
            status = f"**stale**: made from an older {', '.join(stale[record.name])}"
        rows.append([record.name, status, f"{record.wall_s:,.0f} s", describe_stage(record)])
    for st in statuses:
        if st.status == "left_out" and run.record(st.name) is None:
            rows.append([st.name, "skipped", "-", st.reason])
    return markdown_table(["stage", "status", "wall time", "what it made"], rows)


def _figures(preset: str, root: Path) -> list[str]:
    out = []
    for stem, title in FIGURE_TITLES.items():
        rel = f"{W.FIGURES}/{preset}/{stem}.png"
        if (root / rel).is_file():
            out.append(f"![{title}]({rel})")
    return out


def _results(run: RunDir, main: str | None) -> list[str]:
    presets = eval_presets(run.root)
    if not presets:
        return ["No evaluation results yet (`liveenv evaluate`)."]
    main = main if main in presets else presets[0]
    parts = [
        f"## Results on `{main}`",
        load_eval(run.root, main)["summary_md"].strip(),
        *_figures(main, run.root),
    ]
    others = [p for p in presets if p != main]
    if others:
        parts.append("## Stress tests: other presets")
        parts.append(
            "Policies trained on the run's world, evaluated on worlds with more "
            "newcomers (`cold_start`) or shorter broadcasts (`short_lifecycle`)."
        )
    for preset in others:
        parts += [
            f"### `{preset}`",
            load_eval(run.root, preset)["summary_md"].strip(),
            *_figures(preset, run.root)[1:3],
        ]
    return parts


def write_report(
    run: RunDir,
    statuses: Sequence[StageStatus],
    command: str,
    wall_s: float,
    main_preset: str | None = None,
) -> Path:
    """Write ``report.md`` of ``run`` (atomically) and return its path."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    parts = [
        f"# LiveEnv run `{run.root.name}`",
        f"Written by `{command}` on {stamp}, {os.cpu_count()} CPU core(s); this invocation "
        f"took {wall_s:,.0f} s. Stages that were already done were kept (delete "
        f"`stages/<name>.json` or pass `--force` to redo them).",
        "## Pipeline",
        _pipeline_table(run, statuses),
        *_results(run, main_preset),
        "## Look at it",
        "```bash\nliveenv dashboard --run-dir .\n```\n\nrun in this run directory, opens the "
        "Streamlit dashboard on it (World, Policies, Reward weights, Stress tests, Playback).",
    ]
    text = "\n\n".join(parts) + "\n"
    return atomic_write_bytes(run.report_path, text.encode())
