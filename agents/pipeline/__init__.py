"""The pipeline of a run: log -> tokenizer -> pretraining -> reward model ->
alignment -> cascade -> evaluation -> report, each stage resumable in a run
directory (:mod:`agents.rundir`). ``liveenv demo`` runs all of it
(:func:`agents.pipeline.demo.run_demo`); every other ``liveenv`` command runs one stage.
"""

from __future__ import annotations

from agents.pipeline.demo import BUDGETS, DemoArgs, run_demo
from agents.pipeline.evaluation import EvaluateArgs, eval_presets, load_eval, run_evaluate
from agents.pipeline.models import available_policies, run_policies
from agents.pipeline.stages import LogArgs, StageStatus, TokenizeArgs, Unavailable, check_log
from agents.pipeline.world import WorldArgs

__all__ = [
    "BUDGETS", "DemoArgs", "EvaluateArgs", "LogArgs", "StageStatus", "TokenizeArgs",
    "Unavailable", "WorldArgs", "available_policies", "check_log", "eval_presets", "load_eval",
    "run_demo", "run_evaluate", "run_policies",
]  # fmt: skip
