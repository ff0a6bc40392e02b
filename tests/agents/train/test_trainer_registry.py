"""The trainer registry and the run stages that read it."""

from __future__ import annotations

import dataclasses

import pytest

from agents.run.demo import BUDGETS, _make
from agents.run.evaluate_stage import EvaluateArgs
from agents.run.model_stages import ALIGN, PRETRAIN, REWARD
from agents.run.stages import TokenizeStageArgs
from agents.run.sweep_stage import SWEEP
from agents.train.registry import TRAINERS


def test_every_trainer_has_typed_args_and_a_fit() -> None:
    for name, entry in TRAINERS.items():
        assert entry.name == name and entry.about
        assert dataclasses.is_dataclass(entry.args) and callable(entry.fit)


def test_run_stages_train_through_the_registry() -> None:
    for stage, name in ((PRETRAIN, "pretrain"), (REWARD, "reward"), (ALIGN, "align")):
        assert stage.load() == (TRAINERS[name].args, TRAINERS[name].fit)


def test_every_budget_knob_is_a_field_of_its_stage_and_a_misspelt_one_is_refused() -> None:
    targets = {
        "tokenize": TokenizeStageArgs,
        "pretrain": PRETRAIN.load()[0],
        "reward": REWARD.load()[0],
        "align": ALIGN.load()[0],
        "cascade": TRAINERS["cascade"].args,
        "evaluate": EvaluateArgs,
        "stress": EvaluateArgs,
        "sweep": SWEEP.load()[0],
    }
    for budget, stages in BUDGETS.items():
        for stage, knobs in stages.items():
            names = {f.name for f in dataclasses.fields(targets[stage])}
            assert set(knobs) <= names, (budget, stage, set(knobs) - names)
    with pytest.raises(ValueError, match="max_stpes"):
        _make(PRETRAIN.load()[0], {"max_stpes": 10}, log="l", tokenizer="t")
