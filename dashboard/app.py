"""The LiveEnv dashboard: ``liveenv dashboard --run-dir DIR`` (or
``streamlit run dashboard/app.py -- --run-dir DIR``).

Pages: World, Policies, Reward weights, Stress tests, Playback. Without a run
directory that has results, it shows the bundled sample run (``dashboard/sample_run``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

if __package__ in (None, ""):  # `streamlit run dashboard/app.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.views import common, playback, policies, stress, weights, world

TITLE = "LiveEnv workbench"
PAGES = (
    (world.render, "World", "world"),
    (policies.render, "Policies", "policies"),
    (weights.render, "Reward weights", "weights"),
    (stress.render, "Stress tests", "stress"),
    (playback.render, "Playback", "playback"),
)


def _requested_run_dir(argv: list[str]) -> str | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--run-dir", default=None)
    return parser.parse_known_args(argv)[0].run_dir


def main() -> None:
    import torch

    torch.set_num_threads(1)  # small models, many tiny ops: one thread is fastest on a shared CPU
    st.set_page_config(page_title=TITLE, layout="wide")
    if common.RUN_KEY not in st.session_state:
        st.session_state[common.RUN_KEY] = _requested_run_dir(sys.argv[1:]) or ""
    with st.sidebar:
        st.title(TITLE)
        st.text_input(
            "run directory",
            key=common.RUN_KEY,
            help="a folder written by `liveenv demo` (empty: the sample run)",
        )
        st.caption(common.current_run().note)
    pages = [
        st.Page(fn, title=title, url_path=url, default=i == 0)
        for i, (fn, title, url) in enumerate(PAGES)
    ]
    st.navigation(pages).run()


main()
