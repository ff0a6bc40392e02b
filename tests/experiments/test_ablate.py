"""The ablation runner: every variant and seed pretrained on one log, scored on the
same held-out requests beside the baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_run import build_tiny

from experiments.ablate import AblateArgs, run_ablation
from policies.tokenizer.semantic_ids import SIDTokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return build_tiny(tmp_path_factory.getbasetemp() / "align-tiny")


def _args(log: Path, out: Path, **changes) -> AblateArgs:
    base = dict(
        log=str(log),
        out=str(out),
        variants=("full", "static_sids"),
        seeds=(0,),
        max_steps=6,
        batch_size=64,
        d_model=16,
        n_layer=1,
        codebook_sizes=(8, 8, 4),
        holdout_requests=40,
        progress=False,
    )
    base.update(changes)
    return AblateArgs(**base)


def test_variants_and_baselines_share_one_holdout(tiny, tmp_path: Path) -> None:
    table = run_ablation(_args(tiny.log, tmp_path / "abl"))
    assert set(table["model"]) == {"full-s0", "static_sids-s0", "popular", "random"}
    hr = table[[c for c in table.columns if "_hr@" in c]].to_numpy(dtype=float)
    assert np.all((hr >= 0) & (hr <= 1)) and np.all(np.isfinite(hr))
    assert table["n_click"].nunique() == 1  # every model ranked the same requests
    # HR@K grows with K for every model
    for target in ("click", "long_view"):
        assert (table[f"{target}_hr@50"] >= table[f"{target}_hr@10"]).all()
    saved = pd.read_csv(tmp_path / "abl" / "offline.csv")
    assert list(saved["model"]) == list(table["model"])
    assert (tmp_path / "abl" / "holdout.npz").is_file()
    # the static variant really ran with static SIDs, the full model with dynamic ones
    for run, mode in (("static_sids-s0", "static"), ("full-s0", "dynamic")):
        summary = json.loads((tmp_path / "abl" / run / "summary.json").read_text())
        assert SIDTokenizer.load(summary["tokenizer"]).mode == mode


def test_a_wrong_log_policy_is_refused_by_the_replay(tiny, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="replay diverged"):
        run_ablation(_args(tiny.log, tmp_path / "abl", variants=("full",), log_policy="random"))


def test_unknown_variants_are_refused() -> None:
    with pytest.raises(ValueError, match=r"AblateArgs\.variants"):
        AblateArgs(log="x", variants=("full", "tiny_gate"))
