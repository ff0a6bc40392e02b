"""Run directories: stages run once, resume after a crash, refuse changed outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.run.markers import fingerprint_of
from agents.run.rundir import RunDir, RunDirError, StageContext


def _writer(calls: list[str], text: str = "hello") -> object:
    def work(ctx: StageContext) -> dict[str, object]:
        calls.append(ctx.name)
        ctx.path("results", "table.csv").write_text(text)
        ctx.path("logs", "train", "part-00000.parquet").write_bytes(b"x" * 10)
        return {"rows": 10}

    return work


def test_a_finished_stage_is_skipped_and_its_outputs_recorded(tmp_path: Path) -> None:
    run, calls = RunDir(tmp_path / "run"), []
    first = run.run_stage("log", _writer(calls), {"days": 1})
    again = run.run_stage("log", _writer(calls), {"days": 1})
    assert calls == ["log"] and not first.skipped and again.skipped
    assert (run.root / "results" / "table.csv").read_text() == "hello"
    record = run.record("log")
    assert record.summary == {"rows": 10} and record.fingerprint == fingerprint_of({"days": 1})
    assert set(record.outputs) == {"results/table.csv", "logs/train/part-00000.parquet"}
    assert not list(run.root.glob(".stage-*"))  # staging folder gone


def test_other_arguments_run_the_stage_again(tmp_path: Path) -> None:
    run, calls = RunDir(tmp_path), []
    run.run_stage("log", _writer(calls), {"days": 1})
    run.run_stage("log", _writer(calls, "again"), {"days": 2})
    assert calls == ["log", "log"]
    assert (tmp_path / "results" / "table.csv").read_text() == "again"


def test_a_failing_stage_leaves_nothing_behind(tmp_path: Path) -> None:
    run = RunDir(tmp_path)

    def crash(ctx: StageContext) -> None:
        ctx.path("results", "half.csv").write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.run_stage("evaluate", crash, {})
    assert run.record("evaluate") is None
    left = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert left == []  # no marker, no staged file, no empty checkpoint folder kept
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_an_interrupted_stage_continues_from_its_checkpoint(tmp_path: Path) -> None:
    run, seen = RunDir(tmp_path), []

    def train(ctx: StageContext, stop: bool) -> dict[str, int]:
        ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        ckpt = ctx.checkpoint_dir / "ckpt.json"
        start = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
        seen.append(start)
        for step in range(start, 10):
            ckpt.write_text(json.dumps({"step": step + 1}))
            if stop and step == 4:
                raise KeyboardInterrupt
        ctx.path("checkpoints", "model", "model.txt").write_text("trained")
        return {"steps": 10}

    with pytest.raises(KeyboardInterrupt):
        run.run_stage("pretrain", lambda ctx: train(ctx, True), {})
    assert (tmp_path / "checkpoints" / "pretrain.partial" / "ckpt.json").is_file()
    out = run.run_stage("pretrain", lambda ctx: train(ctx, False), {})
    assert seen == [0, 5] and out.record.summary == {"steps": 10}
    assert not (tmp_path / "checkpoints" / "pretrain.partial").exists()  # done: cleaned up
    assert (tmp_path / "checkpoints" / "model" / "model.txt").read_text() == "trained"


def test_a_truncated_output_is_refused_and_force_redoes_it(tmp_path: Path) -> None:
    run, calls = RunDir(tmp_path), []
    run.run_stage("log", _writer(calls), {})
    part = tmp_path / "logs" / "train" / "part-00000.parquet"
    part.write_bytes(b"x" * 4)
    with pytest.raises(RunDirError, match="truncated"):
        run.run_stage("log", _writer(calls), {})
    part.write_bytes(b"y" * 10)  # same size, other bytes
    with pytest.raises(RunDirError, match="checksum"):
        run.run_stage("log", _writer(calls), {})
    run.run_stage("log", _writer(calls), {}, force=True)
    assert calls == ["log", "log"] and part.read_bytes() == b"x" * 10


def test_a_log_folder_is_replaced_whole_and_results_are_merged(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.run_stage("log", _writer([]), {"v": 1})
    stale = tmp_path / "logs" / "train" / "part-00001.parquet"
    stale.write_bytes(b"old")
    (tmp_path / "results" / "other.csv").write_text("kept")
    run.run_stage("log", _writer([]), {"v": 2})
    assert not stale.exists()  # the new log replaced the whole folder
    assert (tmp_path / "results" / "other.csv").read_text() == "kept"


def test_a_corrupt_marker_is_reported(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.run_stage("log", _writer([]), {})
    run.marker_path("log").write_text("{not json")
    with pytest.raises(RunDirError, match="corrupt stage marker"):
        run.run_stage("log", _writer([]), {})


def test_a_command_with_other_arguments_is_refused(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.record_command("log", {"days": 1.0, "seed": 0})
    run.record_command("log", {"days": 1.0, "seed": 0})  # the same: resume
    with pytest.raises(RunDirError, match=r"days: 1\.0 -> 2\.0"):
        run.record_command("log", {"days": 2.0, "seed": 0})
    run.record_command("log", {"days": 2.0, "seed": 0}, force=True)
    assert run.read_config()["commands"]["log"]["days"] == 2.0


def test_bad_names_and_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="not a directory"):
        RunDir(tmp_path / "file")
    with pytest.raises(ValueError, match="stage="):
        RunDir(tmp_path).marker_path("../evil")
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(RunDirError, match="not a liveenv run config"):
        RunDir(tmp_path).read_config()


def test_one_command_at_a_time(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with (
        run.lock(),
        pytest.raises(RunDirError, match="in use by another liveenv command"),
        RunDir(tmp_path).lock(),
    ):
        pass
    assert not (tmp_path / ".lock").exists()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (tmp_path / ".lock").write_text(dead)  # left by a killed run
    with run.lock():
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
