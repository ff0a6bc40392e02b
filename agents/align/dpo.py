"""DPO on the same groups as GRPO: each group's best room against its worst.

    python -m agents.align.dpo --generator runs/pretrain/model.pt \
        --reward-model runs/rm/reward_model.pt --out runs/dpo

The request pool, the groups, the rewards, the checkpoints and the curves are
those of :mod:`agents.align.grpo` (same arguments, plus ``--beta`` and
``--sampler``). From every non-degenerate group, the candidate with the highest
reward is preferred to the one with the lowest, and the policy minimises

    -log sigmoid(beta * [(log pi(w) - log pi_ref(w)) - (log pi(l) - log pi_ref(l))])

with ``pi_ref`` the frozen pretrained generator (the implicit KL anchor of DPO).
``--sampler reference`` (default) draws the groups from ``pi_ref``: a fixed
distribution of preference pairs, the offline DPO the OneLive paper compares
GRPO with; ``policy`` draws them from the current policy (iterative DPO). The
``--regulariser`` of GRPO applies too (``sft`` adds the best sample's
likelihood; ``none`` is plain DPO).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from agents.align.args import AlignArgs
from agents.align.grpo import regulariser
from agents.align.loop import train
from agents.align.objective import Groups
from agents.run import cliargs


@dataclass
class DPOArgs(AlignArgs):
    """Align a pretrained generator with DPO on best-vs-worst pairs of sampled groups."""

    METHODS: ClassVar[tuple[str, ...]] = ("dpo",)

    method: Literal["dpo"] = field(default="dpo", metadata={"help": "the aligner: dpo"})
    beta: float = field(default=0.1, metadata={"help": "DPO inverse temperature beta"})
    sampler: Literal["reference", "policy"] = field(
        default="reference",
        metadata={"help": "who samples the groups: reference (offline DPO) | policy (iterative)"},
    )
    regulariser: Literal["sft", "kl", "none"] = field(
        default="none", metadata={"help": "sft (best sample) | kl (to the reference) | none"}
    )
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.beta > 0:
            raise ValueError(f"DPOArgs.beta={self.beta!r}: must be > 0")
        if self.sampler not in ("reference", "policy"):
            raise ValueError(f"DPOArgs.sampler={self.sampler!r}: allowed ['reference', 'policy']")


def dpo_loss(args: DPOArgs, logp: Tensor, g: Groups) -> tuple[Tensor, dict[str, float]]:
    """The DPO loss of each valid group's (best, worst) pair, plus the regulariser."""
    win = g.cand.gather(1, g.best[:, None])  # (B, 1) slots
    lose = g.cand.gather(1, g.worst[:, None])
    margin = (logp.gather(1, win) - g.ref_logp.gather(1, win)) - (
        logp.gather(1, lose) - g.ref_logp.gather(1, lose)
    )  # (B, 1)
    m = g.valid.float()
    n = m.sum().clamp_min(1.0)
    loss = -(F.logsigmoid(args.beta * margin[:, 0]) * m).sum() / n
    reg = regulariser(args, logp, g)
    acc = ((margin[:, 0] > 0).float() * m).sum() / n
    return loss + reg, {
        "dpo_loss": loss.item(),
        "reg_loss": reg.item(),
        "pair_accuracy": acc.item(),
        "margin": ((margin[:, 0] * m).sum() / n).item(),
    }


def dpo(args: DPOArgs) -> Path:
    """DPO alignment (the Python entry point); returns the aligned generator's path."""
    return train(args, dpo_loss, "align/dpo", sample_from_ref=args.sampler == "reference")  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> Path:
    args = cliargs.parse(DPOArgs, argv, prog="python -m agents.align.dpo")
    path = dpo(args)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
