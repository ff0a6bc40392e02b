"""README's "Reinforcement learning with SB3" runs as written: every code block of the
section, at tiny sizes (each size it shrinks must still be in the README, so the two
cannot drift apart unseen). About 40 s on 2 cores: marked ``slow`` (``make test-slow``)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow
SECTION = "## Reinforcement learning with SB3"
#: README text -> tiny text, per block; every key must occur in its block
TINY = (
    {
        "LiveSB3VecEnv(4,": "LiveSB3VecEnv(2,",
        "horizon_hours=2.0": "horizon_hours=0.05",
        "horizon_hours=0.5": "horizon_hours=0.02",
        "n_steps=256, batch_size=256": "n_steps=32, batch_size=32, n_epochs=1",
        "total_timesteps=4096": "total_timesteps=64",
    },
    {
        "horizon_hours=2.0": "horizon_hours=0.05",
        "n_steps=256, batch_size=256": "n_steps=32, batch_size=32, n_epochs=1",
        "total_timesteps=2048": "total_timesteps=64",
    },
)
TINY_TRAINER = "--timesteps 64 --n-steps 32 --batch-size 32 --n-epochs 1 --eval-every 64 "
TINY_TRAINER += "--eval-steps 10 --eval-seeds 9001 --horizon-hours 0.05 --no-tensorboard"


def _blocks(language: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def _shrunk(code: str, sizes: dict[str, str]) -> str:
    for old, new in sizes.items():
        assert old in code, f"README block changed: {old!r} is gone; update TINY"
        code = code.replace(old, new)
    return code


@pytest.mark.parametrize("index", range(len(TINY)))
def test_the_readme_python_blocks_run(index: int, tmp_path: Path) -> None:
    blocks = _blocks("python")
    assert len(blocks) == len(TINY), "a block was added or removed: give it tiny sizes"
    script = tmp_path / "block.py"
    script.write_text(_shrunk(blocks[index], TINY[index]))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_readme_trainer_command_runs(tmp_path: Path) -> None:
    (command,) = [line for b in _blocks("bash") for line in b.splitlines() if line.strip()]
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "agents.train.sb3"]
    out = tmp_path / "sb3"
    argv = [sys.executable, *argv[1:], *shlex.split(TINY_TRAINER), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "policy.npz").is_file() and (out / "learning_curve.csv").is_file()
