"""The aligner registry and ``liveenv align --method``."""

from __future__ import annotations

import pytest

from agents.align.args import AlignArgs
from agents.align.dpo import DPOArgs, dpo
from agents.align.grpo import align
from agents.align.registry import ALIGNERS, aligner_for, method_names
from agents.align.sweep import SweepArgs
from agents.run.cli import parse


def test_methods_select_their_aligner() -> None:
    assert set(method_names()) == {"ecpo", "grpo", "dpo"}
    assert aligner_for("ecpo") is aligner_for("grpo") is ALIGNERS["grpo"]
    assert aligner_for("dpo").args is DPOArgs and aligner_for("dpo").run is dpo
    assert ALIGNERS["grpo"].run is align
    with pytest.raises(ValueError, match="allowed"):
        aligner_for("ppo")


def test_align_command_takes_the_args_of_the_method(tmp_path) -> None:
    _, args, _ = parse(
        [
            "align",
            "--run-dir",
            str(tmp_path),
            "--method",
            "dpo",
            "--beta",
            "0.3",
            "--generator",
            "g.pt",
        ]
    )
    assert isinstance(args, DPOArgs) and args.beta == 0.3 and args.method == "dpo"
    _, args, _ = parse(
        ["align", "--run-dir", str(tmp_path), "--method=grpo", "--generator", "g.pt"]
    )
    assert type(args) is AlignArgs and args.method == "grpo"
    with pytest.raises(SystemExit):
        parse(["align", "--run-dir", str(tmp_path), "--method", "ppo"])
    with pytest.raises(SystemExit):  # a DPO option without --method dpo
        parse(["align", "--run-dir", str(tmp_path), "--beta", "0.3", "--generator", "g.pt"])


def test_dpo_args_refuse_the_grpo_surrogates() -> None:
    with pytest.raises(ValueError, match="method"):
        DPOArgs(generator="g.pt", method="ecpo")  # type: ignore[arg-type]


def test_sweep_reads_the_registry() -> None:
    with pytest.raises(ValueError, match="allowed"):
        SweepArgs(generator="g.pt", method="ppo", weights=("gift=0.1",))
    with pytest.raises(ValueError, match="unknown alignment argument"):
        SweepArgs(generator="g.pt", method="grpo", weights=("gift=0.1",), align={"beta": 0.1})
    SweepArgs(generator="g.pt", method="dpo", weights=("gift=0.1",), align={"beta": 0.1})
