"""Issue #23, the rest: results made with other reward weights live beside the run's
own (keyed by what they were made with), and a run directory holds no path of
where it was made, so a copied run resumes with nothing redone.

The tiny run (:func:`tiny_run.build_tiny_run`: log, tokenizer, generator, reward
model, aligned model, evaluation through the command line) is made once per module.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from tiny_run import TINY_RUN_COMMANDS, build_tiny_run

from agents.run.cli import main
from agents.run.rundir import RunDir, StageContext
from policies.checkpoint import named_path

SMALL_ALIGN = next(c for c in TINY_RUN_COMMANDS if c[0] == "align")[1:]
SMALL_EVAL = next(c for c in TINY_RUN_COMMANDS if c[0] == "evaluate")[1:]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return build_tiny_run(tmp_path_factory.mktemp("keyed") / "run")


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, copy_function=shutil.copy)  # a plain cp: new mtimes
    return to


def _files_naming(root: Path, needle: str) -> list[str]:
    """Files under ``root`` whose bytes hold ``needle`` (checkpoints are zip archives
    stored uncompressed, so a path in one shows in its bytes)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if needle.encode() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


def _digests(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ----- keyed by what they were made with ------------------------------------------------
def _writer(ctx: StageContext) -> dict[str, object]:
    ctx.path("results", f"{ctx.name}.txt").write_text("made")
    return {}


def test_a_result_made_with_other_arguments_gets_its_own_key(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.keyed_name("align", {"weights": None}) == "align"  # none yet: the run's own
    run.run_stage("align", _writer, {"args": {"weights": None}})
    run.record_command("align", {"weights": None})
    assert run.keyed_name("align", {"weights": None}) == "align"
    other = run.keyed_name("align", {"weights": "gift=0.2"}, label="gift0.2")
    assert other.startswith("align-gift0.2-") and len(other) == len("align-gift0.2-") + 8
    assert run.keyed_name("align", {"weights": "gift=0.2"}, label="gift0.2") == other
    assert run.keyed_name("align", {"weights": "gift=0.2"}, force=True) == "align"


def test_a_run_made_before_keys_compares_the_stage_fingerprint(tmp_path: Path) -> None:
    run = RunDir(tmp_path)  # its config.json holds no entry for the stage
    fp = {"args": {"weights": None}, "inputs": {}}
    run.run_stage("align", _writer, fp)
    assert run.keyed_name("align", fp["args"], fingerprint=fp) == "align"
    other = {"args": {"weights": "gift=0.2"}, "inputs": {}}
    assert run.keyed_name("align", other["args"], fingerprint=other) != "align"


def test_align_with_other_weights_adds_a_model_beside_the_runs_own(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.run.evaluate_stage import load_eval

    root = _copy(tiny_run, tmp_path / "run")
    run = RunDir(root)
    own, own_files = run.record("align"), _digests(root / "checkpoints" / "aligned")
    argv = ["align", "--run-dir", str(root), "--no-progress", *SMALL_ALIGN]
    capsys.readouterr()
    assert main([*argv, "--weights", "gift=0.2"]) == 0
    out = capsys.readouterr().out
    side = [r.name for r in run.records() if r.name.startswith("align-gift0.2-")]
    assert len(side) == 1, out
    folder = root / "checkpoints" / f"aligned{side[0].removeprefix('align')}"
    assert (folder / "policy.npz").is_file() and f"policy `{folder.name}`" in out
    assert run.record("align") == own and run.stale() == {}
    assert _digests(root / "checkpoints" / "aligned") == own_files
    assert run.record(side[0]).summary["weights"]["gift"] == 0.2
    assert main([*argv, "--weights", "gift=0.2"]) == 0  # the same again: kept
    assert f"{side[0]}: already done, kept" in capsys.readouterr().out
    assert main([*argv]) == 0  # the run's own weights: the run's own model, kept
    assert "align: already done, kept" in capsys.readouterr().out
    assert main(["evaluate", "--run-dir", str(root), "--no-progress", *SMALL_EVAL]) == 0
    result = load_eval(root, "default")
    assert folder.name in set(result["summary"]["policy"])
    assert result["meta"]["aligned_with"][folder.name]["gift"] == 0.2
    assert result["meta"]["aligned_with"]["aligned"]["gift"] == 0.02
    assert result["meta"]["reward_weights"]["gift"] == 0.02  # what it scores under
    assert "scored under the world's reward weights" in result["summary_md"]
    assert f"`{folder.name}`: click=0.5" in result["summary_md"]


def test_force_redoes_the_runs_own_model_instead(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy(tiny_run, tmp_path / "run")
    argv = ["align", "--run-dir", str(root), "--no-progress", *SMALL_ALIGN]
    assert main([*argv, "--weights", "gift=0.2", "--force"]) == 0
    run = RunDir(root)
    assert run.record("align").summary["weights"]["gift"] == 0.2
    assert not [r for r in run.records() if r.name.startswith("align-")]
    assert run.stale() == {"evaluate-default": ["align"]}
    assert "evaluate-default: stale (made from an older align)" in capsys.readouterr().out


# ----- relocatable ----------------------------------------------------------------------
def test_paths_in_a_stages_files_are_written_relative_to_them(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    outside = str(tmp_path / "elsewhere" / "log")
    logs = str(run.root.resolve() / "logs" / "train")

    def work(ctx: StageContext) -> dict[str, object]:
        ctx.partial_output = "checkpoints/aligned"
        paths = {
            "log": logs,
            "model": str(ctx.checkpoint_dir / "model.pt"),
            "staged": str(ctx.path("checkpoints", "aligned", "policy.npz")),
            "outside": outside,
            "text": "not a path",
        }
        ctx.path("checkpoints", "aligned", "summary.json").write_text(json.dumps(paths))
        torch.save({"extra": paths, "w": torch.ones(2)}, ctx.path("checkpoints", "aligned", "m.pt"))
        return {}

    run.run_stage("align", work, {"args": {}})
    want = {
        "log": "../../logs/train",
        "model": "model.pt",
        "staged": "policy.npz",
        "outside": outside,
        "text": "not a path",
    }
    folder = run.root / "checkpoints" / "aligned"
    assert json.loads((folder / "summary.json").read_text()) == want
    saved = torch.load(folder / "m.pt", weights_only=True)
    assert saved["extra"] == want and torch.equal(saved["w"], torch.ones(2))
    run.verify(run.record("align"))  # the marker's checksums are of the rewritten files


def test_a_checkpoint_names_its_inputs_relative_to_itself(tmp_path: Path) -> None:
    model = tmp_path / "run" / "checkpoints" / "generator" / "model.pt"
    assert named_path(model, "../tokenizer.pt") == model.parent / "../tokenizer.pt"
    gone = str(tmp_path / "old_place" / "checkpoints" / "tokenizer.pt")
    assert named_path(model, gone) == Path(gone)  # nothing beside it either: as named
    model.parent.mkdir(parents=True)
    (model.parent / "tokenizer.pt").write_bytes(b"")
    assert named_path(model, gone) == model.parent / "tokenizer.pt"  # an older, moved run


def test_a_copied_tiny_run_is_kept_whole_and_names_no_old_path(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fast variant of the issue's acceptance check: copy a finished run, move the
    original away, run its commands again in the copy: every stage kept, and no file of
    the copy names where the original was."""
    from policies.onelive.policy import GeneratorPolicy

    first = _copy(tiny_run, tmp_path / "first")
    copy = _copy(first, tmp_path / "copy")
    first.rename(tmp_path / "moved_away")
    assert _files_naming(copy, str(first)) == []
    assert _files_naming(copy, os.path.realpath(first)) == []
    capsys.readouterr()
    for command in TINY_RUN_COMMANDS:
        assert main([command[0], "--run-dir", str(copy), "--no-progress", *command[1:]]) == 0
    out = capsys.readouterr().out
    assert out.count("already done, kept") == len(TINY_RUN_COMMANDS) and ": done:" not in out
    for folder in ("generator", "aligned"):  # each loads with the copy's own tokenizer
        policy = GeneratorPolicy.from_files(copy / "checkpoints" / folder / "model.pt")
        assert policy.tokenizer is not None


@pytest.mark.parametrize(
    ("weights", "label"),
    [(None, ""), ("gift=0.2", "gift0.2"), ("click=0.25,gift=1000000", "click0.25_gift1e06")],
)
def test_the_weights_label_is_readable_and_a_valid_stage_name(
    weights: str | None, label: str, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from agents.run.model_stages import weights_label

    assert weights_label(SimpleNamespace(weights=weights)) == label
    RunDir(tmp_path).marker_path(f"align-{label}-0123abcd")  # accepted as a stage name
