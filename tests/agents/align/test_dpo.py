"""DPO on best-vs-worst pairs of the GRPO groups: the loss, the arguments, a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from tiny_run import build_tiny, tiny_align_args

from agents.align.dpo import DPOArgs, dpo, dpo_loss
from agents.align.objective import Groups


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return build_tiny(tmp_path_factory.getbasetemp() / "align-tiny")


def _groups(ref: torch.Tensor, reward: torch.Tensor, cand: torch.Tensor) -> Groups:
    b = len(reward)
    valid = reward.std(-1) > 0
    return Groups(
        enc=None,
        cand=cand,
        reward=reward,
        adv=torch.zeros_like(reward),  # type: ignore[arg-type]
        valid=valid,
        old_logp=torch.zeros_like(reward),
        ref_logp=ref[:b],
    )


def test_dpo_loss_matches_the_formula_and_skips_degenerate_groups() -> None:
    ref = torch.log_softmax(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]), -1)
    logp = torch.log_softmax(torch.tensor([[1.0, 1.0, 0.0], [3.0, 0.0, 0.0]]), -1)
    reward = torch.tensor([[1.0, 5.0, 2.0], [1.0, 1.0, 1.0]])  # group 2 is degenerate
    cand = torch.tensor([[0, 1, 2], [0, 1, 2]])
    args = DPOArgs(generator="g", reward_model="r", beta=0.5)
    loss, stats = dpo_loss(args, logp, _groups(ref, reward, cand))
    win, lose = 1, 0  # best reward at candidate 1, worst at candidate 0
    margin = (logp[0, win] - ref[0, win]) - (logp[0, lose] - ref[0, lose])
    assert float(loss) == pytest.approx(float(-F.logsigmoid(0.5 * margin)))
    assert stats["pair_accuracy"] == float(margin > 0)


def test_bad_dpo_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"DPOArgs\.beta"):
        DPOArgs(generator="g", reward_model="r", beta=0.0)
    with pytest.raises(ValueError, match=r"DPOArgs\.sampler"):
        DPOArgs(generator="g", reward_model="r", sampler="mixed")


def test_dpo_learns_the_preferences_of_its_pairs(tiny, tmp_path: Path) -> None:
    args = tiny_align_args(
        tiny,
        tmp_path / "dpo",
        args_class=DPOArgs,
        reward_source="env",
        iterations=8,
        lr=3e-3,
        beta=1.0,
        log_every=4,
        seed=2,
    )
    dpo(args)
    curves = pd.read_csv(tmp_path / "dpo" / "curves.csv")
    assert {"dpo_loss", "pair_accuracy", "margin", "kl_ref"} <= set(curves.columns)
    assert curves["margin"].iloc[-1] > curves["margin"].iloc[1]  # pairs separate over training
    assert curves["env_return"].iloc[-1] > curves["env_return"].iloc[0]
    assert (tmp_path / "dpo" / "model.pt").is_file()
