"""What every page shares: the run on screen, cached loaders, the world to simulate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from agents.run.evaluate_stage import eval_presets, load_eval
from agents.run.rundir import RunDir
from agents.run.stages import world_of
from agents.run.world import WorldArgs
from dashboard.data import RunChoice, choose_run

RUN_KEY = "run_dir"
#: World size the pages simulate live when the run does not name one (fast enough to
#: answer a slider within seconds on one core).
LIVE_USERS, LIVE_STREAMERS = 3000, 300


def current_run() -> RunChoice:
    """The run the user asked for in the sidebar (or the sample run)."""
    return choose_run(st.session_state.get(RUN_KEY) or None)


def run_notice(run: RunChoice) -> None:
    if run.is_sample:
        st.info(
            f"{run.note}. Make your own with `liveenv demo`, then "
            f"`liveenv dashboard --run-dir runs/demo`."
        )


def _stamp(path: Path) -> float:
    """Modification time of a run's results (a cache key that changes with them)."""
    folder = path / "results"
    return max((p.stat().st_mtime for p in folder.rglob("*.csv")), default=0.0)


@st.cache_data(show_spinner=False)
def _load_eval(path: str, preset: str, stamp: float) -> dict[str, Any]:
    return load_eval(path, preset)


def results(run: RunChoice, preset: str) -> dict[str, Any]:
    """Evaluation results of one preset of ``run`` (cached until they change)."""
    return _load_eval(str(run.path), preset, _stamp(run.path))


def presets_of(run: RunChoice) -> list[str]:
    """Presets with results, the run's own world first."""
    found = eval_presets(run.path)
    main = world_of_run(run).preset
    return sorted(found, key=lambda p: (p != main, p))


def describe_world(meta: dict[str, Any]) -> str:
    """``seeds [0, 1], 400 requests per seed from 20:00, 5,000 users, 400 streamers``."""
    w = meta.get("world", {})
    size = ", ".join(
        f"{int(w[k]):,} {k.split('.')[0]}"
        for k in ("users.n_users", "streamers.n_streamers")
        if k in w
    )
    hour = meta.get("start_hour")
    start = f" from {int(hour):02d}:{int(60 * (hour % 1)):02d}" if hour is not None else ""
    return (
        f"seeds {meta.get('seeds')}, {meta.get('steps_per_seed')} requests per seed and "
        f"policy{start}" + (f"; world of {size}" if size else "")
    )


def world_of_run(run: RunChoice) -> WorldArgs:
    """The world the run trained in, else a small default world."""
    world = world_of(RunDir(run.path)) if (run.path / "config.json").is_file() else None
    return world or WorldArgs(n_users=LIVE_USERS, n_streamers=LIVE_STREAMERS)


def tokenizer_file(run: RunChoice) -> Path | None:
    for rel in ("checkpoints/tokenizer.pt", "checkpoints/generator/tokenizer.pt"):
        if (run.path / rel).is_file():
            return run.path / rel
    return None


def empty_results(run: RunChoice) -> bool:
    if presets_of(run):
        return False
    st.warning(
        f"{run.path} has no evaluation results: run `liveenv evaluate --run-dir {run.path}`."
    )
    return True


def number_frame(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Floats rounded for display."""
    return df.round(digits)
