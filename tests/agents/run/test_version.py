"""`liveenv --version`: the installed distribution's name and version."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

from agents.run.cli import main


def test_version_flag_prints_the_distribution_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"liveenv-workbench {version('liveenv-workbench')}"


def test_version_flag_from_the_command_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agents.run.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("liveenv-workbench ") and len(out.split()) == 2
