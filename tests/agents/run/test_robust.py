"""Issue #23: run directories that never lie, and every bad input refused up front.

One test (or one case) per item of the issue's catalogue: a finished stage that
later stages were made from is not silently replaced, a failed command keeps
what was finished, moved or copied runs resume with nothing redone, bad inputs
end in one line naming the option as typed, marker paths stay inside the run,
the dashboard's scratch space is private, and a stale lock is taken over by one
command only."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.run.cli import main
from agents.run.rundir import RunDir, RunDirError, StageContext

TINY_LOG = [
    "--n-users",
    "600",
    "--n-streamers",
    "60",
    "--days",
    "0.04",
    "--start-hour",
    "20",
    "--no-progress",
]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``liveenv argv``: it must end with status 2 and a one-line error, no traceback."""
    try:
        code = main(argv)
    except SystemExit as e:  # refused by the parser
        code = e.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "error: " in err
    return err


def _writer(text: str = "made") -> object:
    def work(ctx: StageContext) -> dict[str, object]:
        ctx.path("results", f"{ctx.name}.txt").write_text(text)
        return {}

    return work


def _chain(run: RunDir) -> None:
    """log <- pretrain <- align <- evaluate-default, as the demo leaves them."""
    run.run_stage("log", _writer(), {"args": {"days": 1}, "inputs": {}})
    for name, up in (("pretrain", "log"), ("align", "pretrain"), ("evaluate-default", "align")):
        fp = {"args": {"seed": 0}, "inputs": {up: run.record(up).fingerprint}}
        run.run_stage(name, _writer(), fp)


# ----- 1. one command silently rewrites a finished run ---------------------------------
def test_redoing_a_stage_later_stages_were_made_from_is_refused(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    _chain(run)
    before = run.record("pretrain")
    other = {"args": {"seed": 7}, "inputs": {"log": run.record("log").fingerprint}}
    with pytest.raises(RunDirError, match=r"'align', 'evaluate-default' were made from it"):
        run.run_stage("pretrain", _writer("seed 7"), other)
    assert run.record("pretrain") == before
    assert (tmp_path / "results" / "pretrain.txt").read_text() == "made"
    assert run.stale() == {}
    run.run_stage("pretrain", _writer("seed 7"), other, force=True)
    assert run.stale() == {"align": ["pretrain"], "evaluate-default": ["align"]}
    # a stale stage is brought up to date without --force (it is out of date anyway)
    fp = {"args": {"seed": 0}, "inputs": {"pretrain": run.record("pretrain").fingerprint}}
    run.run_stage("align", _writer(), fp)
    assert run.stale() == {"evaluate-default": ["align"]}


def test_a_forced_redo_marks_the_report_out_of_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.run.stages import TokenizeStageArgs, run_tokenize

    run = RunDir(tmp_path / "run")
    assert main(["log", "--run-dir", str(run.root), *TINY_LOG]) == 0
    run_tokenize(
        run, TokenizeStageArgs(epochs=1, codebook_sizes=(4, 4)), progress=False
    )  # as the demo
    tok = run.record("tokenize").fingerprint
    run.run_stage("pretrain", _writer(), {"args": {}, "inputs": {"tokenize": tok}})
    run.report_path.write_text("# LiveEnv run `run`\n\nWritten by `liveenv demo`.\n\n## Pipeline\n")
    capsys.readouterr()
    argv = ["tokenize", "--run-dir", str(run.root), "--epochs", "1", "--codebook-sizes", "4", "4"]
    err = _refused([*argv, "--seed", "7", "--no-progress"], capsys)
    assert "stage 'tokenize' is done here with other arguments" in err and "'pretrain'" in err
    assert run.record("tokenize").fingerprint == tok
    assert main([*argv, "--seed", "7", "--no-progress", "--force"]) == 0
    out = capsys.readouterr().out
    assert "pretrain: stale (made from an older tokenize)" in out
    report = run.report_path.read_text()
    assert report.startswith("# LiveEnv run `run`\n\n<!-- liveenv changed")
    assert "out of date" in report and "`tokenize`" in report and "Stale" in report
    assert "`pretrain`" in report and report.endswith("## Pipeline\n")


def test_a_failed_command_never_removes_a_finished_stage(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.run_stage("evaluate-default", _writer(), {"args": {"steps": 100}})
    before = run.record("evaluate-default")

    def crash(ctx: StageContext) -> None:
        ctx.path("results", "evaluate-default.txt").write_text("half")
        raise ValueError("bad policy")

    for force in (False, True):
        with pytest.raises(ValueError, match="bad policy"):
            run.run_stage("evaluate-default", crash, {"args": {"steps": 5}}, force=force)
        assert run.record("evaluate-default") == before
    assert (tmp_path / "results" / "evaluate-default.txt").read_text() == "made"
    run.verify(before)


# ----- 2. moving or copying a run redoes the work --------------------------------------
def test_a_copied_run_keeps_stages_whose_inputs_are_inside_it(tmp_path: Path) -> None:
    a = RunDir(tmp_path / "a")
    a.run_stage("log", _writer(), {"args": {}})
    model = str((a.root / "checkpoints" / "generator" / "model.pt").resolve())
    spec = {"args": {"generator": model, "log": str(a.root / "logs" / "train")}, "inputs": {}}
    a.run_stage("align", _writer(), spec)
    a.record_command("align", {"generator": model})
    shutil.copytree(a.root, tmp_path / "b", copy_function=shutil.copy)  # new mtimes
    b = RunDir(tmp_path / "b")
    calls: list[str] = []

    def again(ctx: StageContext) -> None:
        calls.append(ctx.name)

    moved = str((b.root / "checkpoints" / "generator" / "model.pt").resolve())
    b.check_command("align", {"generator": moved})  # the same arguments, relative to the run
    spec_b = {"args": {"generator": moved, "log": str(b.root / "logs" / "train")}, "inputs": {}}
    assert b.run_stage("align", again, spec_b).skipped and calls == []
    assert json.loads(b.config_path.read_text())["commands"]["align"] == {
        "generator": "$RUN/checkpoints/generator/model.pt"
    }


def test_a_copied_run_keeps_its_evaluation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from policies.registry import make_baseline

    run = tmp_path / "run"
    assert main(["log", "--run-dir", str(run), *TINY_LOG]) == 0
    (run / "checkpoints" / "mine").mkdir(parents=True)
    make_baseline("popular").save(run / "checkpoints" / "mine" / "policy.npz")
    argv = ["--seeds", "0", "--steps", "20", "--policies", "random", "mine"]
    assert main(["evaluate", "--run-dir", str(run), *argv, "--no-expected", "--no-progress"]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, copy_function=shutil.copy)  # a plain cp: new mtimes
    capsys.readouterr()
    assert main(["evaluate", "--run-dir", str(copy), *argv, "--no-expected", "--no-progress"]) == 0
    assert "evaluate-default: already done, kept" in capsys.readouterr().out


@pytest.mark.slow
def test_a_copied_tiny_demo_resumes_with_every_stage_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's acceptance check: copy a finished tiny demo run elsewhere (the
    original moved away too) and run the demo there: every stage kept, in seconds."""
    first = tmp_path / "x"
    argv = ["demo", "--budget", "tiny", "--no-progress"]
    assert main([*argv, "--run-dir", str(first)]) == 0
    stages = {r.name for r in RunDir(first).records()}
    shutil.copytree(first, tmp_path / "y", copy_function=shutil.copy)
    first.rename(tmp_path / "moved_away")
    capsys.readouterr()
    start = time.perf_counter()
    assert main([*argv, "--run-dir", str(tmp_path / "y")]) == 0
    took = time.perf_counter() - start
    out = capsys.readouterr().out
    assert out.count("already done, kept") == len(stages) and " done (" not in out, out
    assert took < 60, took
    for path in (p for p in (tmp_path / "y").rglob("*") if p.is_file()):
        assert str(first).encode() not in path.read_bytes(), path  # no path of the original
    results = (tmp_path / "y" / "results" / "sweep" / "results.csv").read_text()
    assert "sweep.partial" not in results and str(tmp_path) not in results
    for line in results.splitlines()[1:]:
        model = next(c for c in line.split(",") if c.startswith("checkpoints/"))
        assert (tmp_path / "y" / model).is_file()


# ----- 4. tracebacks and messages that do not name the option --------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reward", "--lr", "inf"], "argument --lr: invalid value 'inf': must be a finite number"),
        (["evaluate", "--seeds", "-1"], "--seeds [-1] are invalid: seeds must be in [0, 2**32)"),
        (["dashboard", "--port", "-1"], "--port -1 is invalid: must be in [1, 65535]"),
        (["dashboard", "--port", "99999"], "--port 99999 is invalid: must be in [1, 65535]"),
        (["log", "--n-users", "50000000"], "--n-users 50000000 is invalid: must be an integer in"),
        (["log", "--days", "inf"], "argument --days: invalid value 'inf': must be a finite"),
        (["log", "--days", "400"], "--days 400.0 is invalid: must be in (0, 365]"),
        (["demo", "--days", "nan"], "argument --days: invalid value 'nan'"),
        (["pretrain", "--max-steps", "0"], "--max-steps 0 is invalid: must be >= 1"),
        (["evaluate", "--steps", "1000000000000"], "must be in [1, 1_000_000]"),
        (["evaluate", "--n-users", "50000000"], "--n-users 50000000 is invalid: must be in"),
        (["simulate", "--hours", "1e9"], "--hours 1000000000.0 is invalid: must be in (0, 8760]"),
    ],
)
def test_bad_inputs_name_the_option_and_what_is_allowed(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused([*argv, "--run-dir", str(tmp_path / "run")], capsys)
    assert message in err
    assert "horizon_hours" not in err and "out of range" not in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_run_dir_below_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    err = _refused(["log", "--run-dir", str(tmp_path / "file" / "run"), *TINY_LOG], capsys)
    assert f"{tmp_path / 'file'} is a file" in err


def test_a_run_dir_that_cannot_be_written_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() != 0:
        target = tmp_path / "readonly"
        target.mkdir()
        target.chmod(0o555)
    elif Path("/sys/kernel").is_dir():
        target = Path("/sys/kernel")  # read-only even for root
    else:
        pytest.skip("no read-only directory for root here")
    err = _refused(["log", "--run-dir", str(target), *TINY_LOG], capsys)
    assert f"run directory {target} is not writable" in err
    if Path("/sys").is_dir():  # one that cannot be made
        err = _refused(["log", "--run-dir", "/sys/liveenv-run", *TINY_LOG], capsys)
        assert "cannot be made" in err or "not writable" in err


# ----- 5. marker paths and the dashboard's scratch space --------------------------------
@pytest.mark.parametrize("name", ["../secret", "/ABS/secret", "results/link"])
def test_marker_paths_stay_inside_the_run_dir(name: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0")
    root = tmp_path / "run"
    run = RunDir(root)
    run.run_stage("log", _writer(), {"args": {}})
    (root / "results").mkdir(exist_ok=True)
    (root / "results" / "link").symlink_to(secret)
    marker = json.loads(run.marker_path("log").read_text())
    rel = name.replace("/ABS", str(tmp_path))
    marker["outputs"] = {rel: {"bytes": secret.stat().st_size, "sha256": file_digest(secret)}}
    run.marker_path("log").write_text(json.dumps(marker))
    with pytest.raises(RunDirError, match="outside"):
        run.run_stage("log", _writer(), {"args": {}})


def test_the_dashboard_scratch_space_is_private_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import quick

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    base = quick.scratch_root()
    assert base.is_relative_to(tmp_path / "cache") and base.stat().st_mode & 0o077 == 0
    out = base / "key"
    out.mkdir()
    (out / "model.pt").write_bytes(b"planted")
    assert not quick._finished(out / "done.json", out / "model.pt")  # not reused blindly
    (out / "done.json").write_text(json.dumps({"model_sha256": "0" * 64}))
    assert not quick._finished(out / "done.json", out / "model.pt")
    (out / "done.json").write_text(json.dumps({"model_sha256": file_digest(out / "model.pt")}))
    assert quick._finished(out / "done.json", out / "model.pt")
    assert "gettempdir" not in Path(quick.__file__).read_text()


# ----- 6. one set of arguments per command, not per preset ------------------------------
def test_evaluations_with_other_arguments_live_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.run.evaluate_stage import EvaluateArgs, eval_presets, run_evaluate

    root = tmp_path / "run"
    assert main(["log", "--run-dir", str(root), *TINY_LOG]) == 0
    run = RunDir(root)
    base = {"seeds": (0,), "policies": ("random",), "expected": False}
    run_evaluate(run, EvaluateArgs(steps=20, **base), progress=False)  # as the demo does
    first = run.record("evaluate-default")
    argv = ["evaluate", "--run-dir", str(root), "--seeds", "0", "--policies", "random"]
    argv += ["--no-expected", "--no-progress"]
    assert main([*argv, "--steps", "30"]) == 0  # other arguments: beside it
    out = capsys.readouterr().out
    side = [p for p in eval_presets(root) if p.startswith("default-")]
    assert len(side) == 1 and f"results/eval/{side[0]}/summary.md" in out
    assert run.record("evaluate-default") == first
    assert main([*argv, "--steps", "30", "--presets", "cold_start"]) == 0
    assert main([*argv, "--steps", "20"]) == 0  # the demo's own arguments: kept
    assert "evaluate-default: already done, kept" in capsys.readouterr().out
    assert main([*argv, "--steps", "30"]) == 0
    assert f"evaluate-{side[0]}: already done, kept" in capsys.readouterr().out
    assert set(eval_presets(root)) == {"default", side[0], "cold_start"}


def test_a_command_that_reads_a_missing_run_dir_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "does_not_exist"
    for command in (["evaluate"], ["reward"], ["sweep", "--weights", "gift=0.1"], ["cascade"]):
        err = _refused([*command, "--run-dir", str(missing), "--no-progress"], capsys)
        assert f"run directory {missing} does not exist" in err
        assert not missing.exists()


# ----- 7. two commands taking over a stale lock -----------------------------------------
def test_a_stale_lock_is_taken_over_by_one_command_only(tmp_path: Path) -> None:
    """The moment a command has taken over a killed run's lock, before its pid is in
    the file, the file still names the dead process: a second command must not
    take the lock over again (read pid, unlink, create let both through)."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    run = RunDir(tmp_path)
    (tmp_path / ".lock").write_text(dead)  # left by a killed run
    with run.lock():
        (tmp_path / ".lock").write_text(dead)  # the takeover window
        second = RunDir(tmp_path).lock()
        with pytest.raises(RunDirError, match="in use by another liveenv command"):
            second.__enter__()
    with RunDir(tmp_path).lock():  # released: the next command takes it
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
