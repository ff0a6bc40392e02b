"""The command line: typed configs as options, --help everywhere, clear refusals,
run directories that resume and refuse corrupt inputs."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agents.run import cliargs
from agents.run.cli import COMMANDS, main
from agents.run.rundir import RunDir


# ----- cliargs ------------------------------------------------------------------------
@dataclass
class Inner:
    n_users: int = 3000  # users in the world
    drift: float = 0.1
    """drift rate of the content"""


@dataclass
class Example:
    """Train the example.

    label: a name for the run
    """

    out: Path
    lr: float = field(default=1e-3, metadata={"help": "learning rate"})
    seeds: tuple[int, ...] = (0, 1)
    mode: Literal["dynamic", "static"] = "dynamic"
    resume: bool = False
    limit: int | None = None
    pair: tuple[int, float] = (1, 2.0)
    weights: dict[str, float] = field(default_factory=dict)
    label: str = ""
    world: Inner = field(default_factory=Inner)
    flat: Inner = field(default_factory=Inner, metadata={"flatten": True})

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr} is invalid: must be > 0")


def test_every_field_type_parses_and_round_trips() -> None:
    argv = [
        "--out",
        "o",
        "--seeds",
        "3",
        "4",
        "5",
        "--mode",
        "static",
        "--resume",
        "--limit",
        "none",
        "--pair",
        "3",
        "4.5",
        "--weights",
        "gift=0.5",
        "click=1",
        "--world.n-users",
        "10",
        "--n-users",
        "20",
        "--label",
        "x",
    ]
    args = cliargs.parse(Example, argv)
    assert args == Example(
        out=Path("o"),
        seeds=(3, 4, 5),
        mode="static",
        resume=True,
        pair=(3, 4.5),
        weights={"gift": 0.5, "click": 1.0},
        label="x",
        world=Inner(n_users=10),
        flat=Inner(n_users=20),
    )
    assert cliargs.parse(Example, cliargs.to_argv(args)) == args
    assert cliargs.from_dict(Example, json.loads(json.dumps(cliargs.to_dict(args)))) == args


def test_help_comes_from_metadata_docstrings_and_comments() -> None:
    docs = cliargs.field_docs(Example)
    assert docs["lr"] == "learning rate" and docs["label"] == "a name for the run"
    assert cliargs.field_docs(Inner) == {
        "n_users": "users in the world",
        "drift": "drift rate of the content",
    }
    text = cliargs.parser_for(Example, prog="x").format_help()
    assert "learning rate (default: 0.001)" in text and "{dynamic,static}" in text
    assert "--world.n-users INT" in text and "--resume, --no-resume" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "o", "--mode", "fast"], "invalid choice: 'fast'"),
        (["--out", "o", "--seeds", "a"], "invalid value 'a'"),
        (["--out", "o", "--weights", "gift"], "'gift' is not KEY=VALUE"),
        (["--out", "o", "--lr", "-1"], "lr=-1.0 is invalid: must be > 0"),
        ([], "the following arguments are required: --out"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        cliargs.parse(Example, argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_unknown_keys_are_refused_when_read_back() -> None:
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['bogus'\]"):
        cliargs.from_dict(Inner, {"bogus": 1})


# ----- liveenv --------------------------------------------------------------------------
def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert all(f"  {name}" in out for name in COMMANDS)
    with pytest.raises(SystemExit) as e:
        main(["bogus"])
    assert e.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help_from_its_config(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    captured = capsys.readouterr()
    assert e.value.code == 0
    assert "--run-dir PATH" in captured.out and f"liveenv {name}" in captured.out
    config = COMMANDS[name].config()
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        if f.name in COMMANDS[name].exclude or dataclasses.is_dataclass(hints[f.name]):
            continue
        assert f"--{f.name.replace('_', '-')}" in captured.out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["log", "--days", "-1"], "--days -1.0 is invalid: must be in (0, 365]"),
        (["log", "--policy", "oracle"], "--policy 'oracle' is unknown; allowed: ['engaging'"),
        (["log", "--preset", "moon"], "--preset 'moon' is unknown"),
        (["evaluate", "--presets", "moon"], "--presets ['moon'] are unknown"),
        (["evaluate", "--steps", "0"], "--steps 0 is invalid"),
        (["demo", "--skip", "lunch"], "--skip ['lunch'] names unknown stages"),
        (["simulate", "--hours", "0"], "--hours 0.0 is invalid"),
    ],
)
def test_bad_arguments_are_refused_clearly(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--run-dir", str(tmp_path / "run")])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything was written


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


def _nothing_half_written(root: Path, stage: str) -> None:
    assert RunDir(root).record(stage) is None
    assert not list(root.glob(".stage-*")) and not (root / ".lock").exists()


def test_missing_and_foreign_inputs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code = main(["tokenize", "--run-dir", str(run), "--no-progress"])
    assert code == 2 and f"run directory {run} does not exist" in capsys.readouterr().err
    assert not run.exists()  # said so instead of creating it
    run.mkdir()
    code = main(["tokenize", "--run-dir", str(run), "--no-progress"])
    assert code == 2 and "stage 'log' has not finished" in capsys.readouterr().err
    code = main(["tokenize", "--run-dir", str(run), "--log", str(tmp_path / "nowhere")])
    assert code == 2 and "no such log directory" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pq.write_table(
        pa.table({"user_id": [1, 2], "clicked": [True, False]}), foreign / "part-00000.parquet"
    )
    code = main(["tokenize", "--run-dir", str(run), "--log", str(foreign)])
    err = capsys.readouterr().err
    assert code == 2 and "column 'episode' is missing" in err and "part-00000" in err
    _nothing_half_written(run, "tokenize")
    assert not (run / "checkpoints").exists()


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["log", "--run-dir", str(run), *TINY_LOG]) == 0
    return run


def test_a_rerun_resumes_and_other_arguments_are_refused(
    logged_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = RunDir(logged_run).record("log")
    assert before.summary["rows"] > 0
    capsys.readouterr()
    assert main(["log", "--run-dir", str(logged_run), *TINY_LOG]) == 0
    assert "log: already done, kept" in capsys.readouterr().out
    assert RunDir(logged_run).record("log") == before  # not run again
    code = main(["log", "--run-dir", str(logged_run), *TINY_LOG, "--seed", "1"])
    assert code == 2 and "seed: 0 -> 1" in capsys.readouterr().err


def test_a_truncated_checkpoint_is_refused(
    logged_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tok_args = [
        "tokenize",
        "--run-dir",
        str(logged_run),
        "--epochs",
        "1",
        "--codebook-sizes",
        "4",
        "4",
        "--no-progress",
    ]
    assert main(tok_args) == 0
    path = logged_run / "checkpoints" / "tokenizer.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert main(tok_args) == 2
    err = capsys.readouterr().err
    assert "tokenizer.pt" in err and "truncated" in err and "--force" in err
    from policies.tokenizer.semantic_ids import SIDTokenizer

    with pytest.raises(ValueError, match="not a readable SID tokenizer file"):
        SIDTokenizer.load(path)  # and the consumer itself refuses it too
    assert main([*tok_args, "--force"]) == 0
    assert path.read_bytes() != data[: len(data) // 2]


def test_evaluate_writes_results_into_the_run(
    logged_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "evaluate",
        "--run-dir",
        str(logged_run),
        "--seeds",
        "0",
        "--steps",
        "40",
        "--policies",
        "random",
        "popular",
        "oracle",
        "--no-expected",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "evaluate-default: done" in out
    folder = logged_run / "results" / "eval" / "default"
    meta: dict[str, Any] = json.loads((folder / "meta.json").read_text())
    assert meta["world"]["users.n_users"] == 600  # the run's world, from its log stage
    assert set(meta["policies"]) == {"random", "popular", "oracle"}
    assert (folder / "summary.md").read_text().count("|") > 10
    assert (logged_run / "figures" / "default" / "weighted_return.png").stat().st_size > 1000


@pytest.mark.slow
def test_the_tiny_demo_runs_every_stage_then_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "demo"
    argv = [
        "demo",
        "--run-dir",
        str(run),
        "--budget",
        "tiny",
        "--n-users",
        "1500",
        "--n-streamers",
        "120",
        "--days",
        "0.2",
        "--start-hour",
        "18",
        "--no-progress",
        "--stress-presets",
        "cold_start",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"report:    {run / 'report.md'}" in out and "liveenv dashboard --run-dir" in out
    report = (run / "report.md").read_text()
    assert "| log | done (this run)" in report and "## Results on `default`" in report
    assert "![Weighted return" in report and "### `cold_start`" in report
    done = {r.name for r in RunDir(run).records()}
    assert {"log", "evaluate-default", "evaluate-cold_start"} <= done
    assert {"tokenize", "pretrain", "reward", "align", "cascade", "sweep"} <= done
    markers = {p.name: p.stat().st_mtime_ns for p in (run / "stages").iterdir()}
    assert main(argv) == 0  # again: everything is kept
    assert "already done, kept" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (run / "stages").iterdir()} == markers


def test_an_interrupted_pretraining_continues_from_its_checkpoint(
    logged_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["--run-dir", str(logged_run), "--no-progress"]
    assert main(["tokenize", *run, "--epochs", "1", "--codebook-sizes", "4", "4"]) == 0
    small = [
        "--max-steps",
        "8",
        "--batch-size",
        "16",
        "--d-model",
        "16",
        "--n-head",
        "2",
        "--n-layer",
        "1",
        "--warmup-steps",
        "1",
        "--eval-every",
        "4",
        "--checkpoint-every",
        "4",
        "--log-every",
        "2",
    ]
    code = main(["pretrain", *run, *small, "--stop-at-step", "4"])
    err = capsys.readouterr().err
    assert code == 2 and "stopped at step 4 as asked" in err
    partial = logged_run / "checkpoints" / "pretrain.partial"
    assert (partial / "ckpt.pt").is_file() and RunDir(logged_run).record("pretrain") is None
    assert not (logged_run / "checkpoints" / "generator").exists()
    assert main(["pretrain", *run, *small]) == 0  # continues from step 4
    record = RunDir(logged_run).record("pretrain")
    assert record.summary["steps"] == 8 and not partial.exists()
    assert (logged_run / "checkpoints" / "generator" / "policy.npz").is_file()
    from policies.base import Policy

    policy = Policy.load(logged_run / "checkpoints" / "generator" / "policy.npz")
    assert type(policy).__name__ == "GeneratorPolicy"


def test_align_without_paths_needs_the_runs_generator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    code = main(["align", "--run-dir", str(run), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "stage 'pretrain' has not finished" in err and "liveenv pretrain" in err
    _nothing_half_written(run, "align")
    assert not (run / "checkpoints").exists() and not (run / "config.json").exists()


def test_align_reads_the_runs_models_and_refuses_a_truncated_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["--run-dir", str(tmp_path / "run"), "--no-progress"]
    assert main(["log", *run, *TINY_LOG[:-1]]) == 0
    stages = (
        ["tokenize", "--epochs", "1", "--codebook-sizes", "4", "4"],
        [
            "pretrain",
            "--max-steps",
            "4",
            "--batch-size",
            "16",
            "--d-model",
            "16",
            "--n-head",
            "2",
            "--n-layer",
            "1",
            "--warmup-steps",
            "1",
            "--eval-every",
            "2",
        ],
        ["reward", "--epochs", "1", "--hidden", "8", "--fusion-hidden", "8", "--no-figure"],
    )
    for argv in stages:
        assert main([*argv, *run]) == 0, argv
    align = [
        "align",
        *run,
        "--iterations",
        "2",
        "--requests-per-iter",
        "4",
        "--group-size",
        "4",
        "--pool-requests",
        "32",
        "--pool-steps-per-seed",
        "32",
        "--eval-requests",
        "8",
        "--no-figures",
    ]
    assert main(align) == 0
    root = tmp_path / "run"
    assert "align: done" in capsys.readouterr().out
    assert RunDir(root).record("align") is not None
    assert (root / "checkpoints" / "aligned" / "policy.npz").is_file()
    model = root / "checkpoints" / "aligned" / "model.pt"
    model.write_bytes(model.read_bytes()[:100])
    assert main(align) == 2
    err = capsys.readouterr().err
    assert "aligned/model.pt" in err and "truncated" in err and "--force" in err


def test_a_sweep_on_ray_without_ray_is_refused_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is not None:
        pytest.skip("Ray is installed here")
    run = tmp_path / "run"
    code = main(
        ["sweep", "--run-dir", str(run), "--grid", "gift=0.01,0.05", "--ray-address", "local"]
    )
    assert code == 2 and "--ray-address needs Ray" in capsys.readouterr().err
    assert not run.exists()


def test_input_paths_default_to_the_runs_own_files_in_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, flag, rel in (
        ("align", "--reward-model", "checkpoints/reward_model/reward_model.pt"),
        ("pretrain", "--log", "logs/train"),
    ):
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert e.value.code == 0
        option = out[out.rindex(f"{flag} TEXT") :]  # the option, not the usage line
        assert f"(default: the run's {rel})" in option[:300]
