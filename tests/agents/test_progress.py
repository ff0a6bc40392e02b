"""agents.progress: a bar on a terminal, a line every so often in a log, nothing when off."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

from agents.progress import ENV_VAR, LineProgress, progress_bar

REPO = Path(__file__).resolve().parents[2]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(bar, steps: int, pause_s: float = 0.0) -> None:
    for i in range(steps):
        time.sleep(pause_s)
        bar.update(1)
        bar.set_postfix(loss=1.0 / (i + 1))  # a refresh that must not print out of turn
    bar.close()


def test_a_log_gets_whole_lines_at_most_one_per_interval_and_a_last_one() -> None:
    out = io.StringIO()
    bar = progress_bar(total=40, desc="pretrain", unit="step", every_s=0.1, file=out)
    assert isinstance(bar, LineProgress)
    _run(bar, 40, pause_s=0.01)
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and text.endswith("\n")
    assert 2 <= len(lines) <= 6  # about 0.4 s at one line per 0.1 s, plus the last line
    assert all(line.startswith("pretrain: ") for line in lines)
    assert lines[-1].startswith("pretrain: 100% 40/40")


def test_a_stage_shorter_than_the_interval_prints_nothing_in_a_log() -> None:
    out = io.StringIO()
    _run(progress_bar(total=5, desc="evaluate", every_s=60, file=out), 5)
    assert out.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar_and_disabled_means_silent() -> None:
    term = _Terminal()
    bar = progress_bar(total=3, desc="evaluate", file=term)
    assert not isinstance(bar, LineProgress)
    _run(bar, 3)
    assert "\r" in term.getvalue() and "evaluate: 100%" in term.getvalue()
    quiet = _Terminal()
    _run(progress_bar(total=3, desc="evaluate", enabled=False, file=quiet), 3)
    assert quiet.getvalue() == ""


def test_the_interval_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, "0.05")
    out = io.StringIO()
    _run(progress_bar(total=20, desc="sweep", file=out), 20, pause_s=0.01)
    assert len(out.getvalue().splitlines()) >= 2


def test_liveenv_evaluate_reports_progress_in_a_log(tmp_path: Path) -> None:
    """``liveenv evaluate --progress`` with stderr to a pipe: lines, not silence."""
    cmd = [sys.executable, "-m", "agents.run.cli", "evaluate", "--run-dir", str(tmp_path)]
    cmd += ["--progress", "--seeds", "100", "--steps", "150", "--policies", "popular"]
    cmd += ["--n-users", "1000", "--n-streamers", "100"]
    env = {**os.environ, "PYTHONPATH": str(REPO), ENV_VAR: "0.01"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("evaluate: ")]
    assert lines and lines[-1].startswith("evaluate: 100% 450/450"), done.stderr
