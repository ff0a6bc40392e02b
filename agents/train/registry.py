"""The trainer registry: every model the workbench trains, by name.

A trainer is an arguments dataclass (cleanrl style: its field docs are the
``--help`` text) and a function ``fit(args)`` that trains and writes the model
into ``args.out``. The command line, the demo's stages (:mod:`agents.run.model_stages`,
which add where each trainer's inputs and outputs sit in a run directory) and the
sweeps read this one table; alignment has its own registry,
:mod:`agents.align.registry`, and the ``align`` entry here defers to it.

Adding a trainer is one new file (args + ``fit``) and one line here, for example::

    TrainerEntry("sasrec", "SASRec baseline on the logged sessions", SASRecArgs, train_sasrec),
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.align.args import AlignArgs
from agents.align.registry import aligner_for
from agents.train.cascade import TrainCascadeArgs, train_cascade
from agents.train.pretrain import PretrainArgs, pretrain
from agents.train.reward import RewardArgs, train_reward_model
from agents.train.sb3 import TrainSB3Args, train_sb3
from agents.train.sb3_generator import SB3GeneratorArgs, train_sb3_generator
from agents.train.tokenize import TokenizeArgs, tokenize

__all__ = ["TRAINERS", "TrainerEntry"]


def _align(args: AlignArgs) -> Any:
    """Alignment with the aligner that ``args.method`` names."""
    return aligner_for(args.method).run(args)


@dataclass(frozen=True)
class TrainerEntry:
    """One registered trainer."""

    name: str
    about: str
    args: type
    fit: Callable[[Any], Any]


TRAINERS: dict[str, TrainerEntry] = {t.name: t for t in (
    TrainerEntry("tokenize", "the dynamic semantic-ID tokenizer", TokenizeArgs, tokenize),
    TrainerEntry("pretrain", "the OneLive generator on logged sessions", PretrainArgs, pretrain),
    TrainerEntry("reward", "the multi-objective reward model", RewardArgs, train_reward_model),
    TrainerEntry("align", "the generator aligned to reward weights", AlignArgs, _align),
    TrainerEntry("cascade", "the cascade: two-tower retrieval + multi-task ranker",
                 TrainCascadeArgs, train_cascade),
    TrainerEntry("sb3", "an SB3 (Maskable)PPO agent on the raw observation", TrainSB3Args,
                 train_sb3),
    TrainerEntry("sb3_generator", "the generator trained online with SB3 MaskablePPO",
                 SB3GeneratorArgs, train_sb3_generator),
)}  # fmt: skip
