"""The learned models of a run: how each is trained into the run directory, and
the policies a run can evaluate.

Every model stage leaves ``checkpoints/<model>/policy.npz``, a
:class:`policies.base.Policy` file (class + config + arrays), so any of them
loads with :meth:`Policy.load` whatever its kind. The baselines are always
there; :func:`run_policies` adds the models the run has, and any other policy
saved as ``checkpoints/<name>/policy.npz`` under its folder's name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.run import world as W
from agents.run.rundir import RunDir, StageContext
from agents.run.stages import (
    StageStatus,
    Trainer,
    check_log,
    registered,
    stage_fingerprint,
)
from policies.base import Policy
from policies.registry import baseline_names, learned_folders, make_baseline

POLICY_FILE = "policy.npz"
BASELINE_NAMES = baseline_names()
#: model name -> its folder in the run directory, in the order they are shown
MODEL_FOLDERS = {name: f"checkpoints/{folder}" for name, folder in learned_folders().items()}

__all__ = ["ALIGN", "PRETRAIN", "REWARD", "available_policies", "run_cascade", "run_policies"]


def _generator_policy(folder: Path, args: Any) -> dict[str, Any]:
    """Write the generator (``model.pt``) and its tokenizer as one policy file."""
    from policies.onelive.policy import GeneratorPolicy

    tokenizer = folder / "tokenizer.pt"
    if not tokenizer.is_file():
        source = Path(getattr(args, "tokenizer", "") or "")
        if not source.is_file():
            raise FileNotFoundError(f"{folder}: no tokenizer.pt and {source} is not a file")
        tokenizer.write_bytes(source.read_bytes())
    policy = GeneratorPolicy.from_files(folder / "model.pt", tokenizer=tokenizer, name=folder.name)
    policy.save(folder / POLICY_FILE)
    return {"policy": f"{folder.name}/{POLICY_FILE}"}


def _aligned_policy(folder: Path, args: Any) -> dict[str, Any]:
    """The aligned generator with the pretrained generator's tokenizer, and the
    reward weights it was aligned to."""
    from agents.align.weights import parse_weights
    from liveenv.objectives import weights_dict

    generator = Path(args.generator)
    tokenizer = generator.parent / "tokenizer.pt"
    if tokenizer.is_file() and not (folder / "tokenizer.pt").exists():
        (folder / "tokenizer.pt").write_bytes(tokenizer.read_bytes())
    weights = weights_dict(parse_weights(getattr(args, "weights", None)))
    return {**_generator_policy(folder, args), "weights": weights}


def weights_label(args: Any) -> str:
    """The reward weights of ``args`` where they differ from the defaults, as a folder
    name part: ``gift0.2`` (objectives joined by ``_``; empty for the defaults)."""
    from agents.align.weights import parse_weights
    from liveenv.objectives import DEFAULT_WEIGHTS, weights_dict

    weights = weights_dict(parse_weights(getattr(args, "weights", None)))
    label = "_".join(f"{k}{v:g}" for k, v in weights.items() if v != DEFAULT_WEIGHTS[k])
    return re.sub(r"[^\w.-]", "", label)  # 1e+06 -> 1e06: a stage name's characters


def _reward_calibration(folder: Path, args: Any) -> dict[str, Any]:
    """Relative calibration error of each objective tower on held-out rows."""
    import pandas as pd

    path = folder / "calibration_ece.csv"
    if not path.is_file():
        return {}
    ece = pd.read_csv(path)
    ece = ece[ece["head"] == "tower"] if "head" in ece else ece
    return {
        "relative_ece": {r.objective: round(float(r.relative_ece), 3) for r in ece.itertuples()}
    }


PRETRAIN = Trainer(
    stage="pretrain",
    source=registered("pretrain"),
    output=W.GENERATOR,
    finish=_generator_policy,
    paths={"log": (W.LOG_DIR, "log"), "tokenizer": (W.TOKENIZER, "tokenize")},
)
REWARD = Trainer(
    stage="reward",
    source=registered("reward"),
    output=W.REWARD_MODEL,
    paths={"log": (W.LOG_DIR, "log")},
    finish=_reward_calibration,
    final="reward_model.pt",
)
ALIGN = Trainer(
    stage="align",
    source=registered("align"),
    output=W.ALIGNED,
    finish=_aligned_policy,
    paths={
        "generator": (f"{W.GENERATOR}/model.pt", "pretrain"),
        "reward_model": (f"{W.REWARD_MODEL}/reward_model.pt", "reward"),
    },
    ignore=("out", "resume", "progress", "threads", "stop_at", "tensorboard"),
    label=weights_label,
)


def run_cascade(
    run: RunDir, knobs: dict[str, Any], force: bool = False, coldstart: bool = False, seed: int = 0
) -> StageStatus:
    """Train the cascade (``coldstart``: with the cluster memory) on the run's log."""
    stage = "cascade_coldstart" if coldstart else "cascade"
    from agents.train.cascade import TrainCascadeArgs as args_cls
    from agents.train.cascade import save_result as save
    from agents.train.cascade import train_cascade as train

    names = {f.name for f in dataclasses.fields(args_cls)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise ValueError(f"cascade knob(s) {unknown} are not fields of {args_cls.__name__}")
    given = dict(knobs)
    args = args_cls(
        **{
            **given,
            "logs": (str(run.root / W.LOG_DIR),),
            "coldstart": coldstart,
            "seed": seed,
            "name": stage,
            "threads": 1,
        }
    )
    fp = stage_fingerprint(run, args, ["log"], ignore=("out", "threads", "logs"))

    def work(ctx: StageContext) -> dict[str, Any]:
        check_log(run.root / W.LOG_DIR)
        out = ctx.path(MODEL_FOLDERS[stage], POLICY_FILE)
        result = train(dataclasses.replace(args, out=str(out)))
        save(result, dataclasses.replace(args, out=str(out)))
        h = result.history
        return {
            "output": MODEL_FOLDERS[stage],
            "rows": result.rows,
            "wall_s": result.wall_s,
            "tower_val": h.get("tower_val", [])[-1:],
            "ranker_val": h.get("ranker_val", [])[-1:],
        }

    outcome = run.run_stage(stage, work, fp, force)
    return StageStatus(stage, "skipped" if outcome.skipped else "ran", outcome=outcome)


def available_policies(run: RunDir | None) -> dict[str, str]:
    """Every policy a run can evaluate: name -> where it comes from."""
    found = {name: "baseline" for name in BASELINE_NAMES}
    if run is None:
        return found
    for name, folder in MODEL_FOLDERS.items():
        path = run.root / folder / POLICY_FILE
        if path.is_file():
            found[name] = str(path)
    known = {Path(folder).name for folder in MODEL_FOLDERS.values()}
    for path in sorted((run.root / "checkpoints").glob(f"*/{POLICY_FILE}")):
        if path.parent.name not in known and path.parent.name not in found:
            found[path.parent.name] = str(path)  # any other saved policy, by its folder
    return found


def run_policies(
    run: RunDir | None, names: Sequence[str] = (), slate_size: int = 1
) -> dict[str, Policy]:
    """The policies ``names`` (empty: all of :func:`available_policies`), loaded."""
    known = available_policies(run)
    wanted = list(names) or list(known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(
            f"policies {unknown} are not in {run.root if run else 'this run'}; "
            f"available: {sorted(known)}"
        )
    out: dict[str, Policy] = {}
    for name in wanted:
        if known[name] == "baseline":
            out[name] = make_baseline(name, slate_size=slate_size)
        else:
            policy = Policy.load(known[name])
            policy.name = name
            out[name] = policy
    return out
