"""Evaluation stages: every policy of a run, online in the run's world, per preset.

One stage per preset, ``evaluate-<preset>``, writes ``results/eval/<preset>/``
(``table.csv``/``.parquet``, ``summary.csv``, ``summary.md``, ``meta.json``)
and ``figures/<preset>/*.png`` through :func:`agents.evaluate.online.evaluate` and
:mod:`agents.evaluate.tables`. Its fingerprint holds the fingerprints of the model
stages that have finished and the checksum of every policy file, so a model
trained (or a policy saved into ``checkpoints/<name>/``) later re-runs it.

The first evaluation of a preset in a run is its evaluation (``<preset>``); one
with other arguments (seeds, steps, world, policies) goes beside it, keyed by
what it was made with (:meth:`RunDir.keyed_name`): stage
``evaluate-<preset>-<hash>``, folder ``results/eval/<preset>-<hash>/``. ``force``
redoes the preset's own one with the new arguments instead.

Every policy is scored under the world's reward weights; ``summary.md`` and
``meta.json`` say which (``reward_weights``), and which weights each aligned
policy (``aligned``, ``aligned-<weights>-<hash>`` beside it) was aligned to
(``aligned_with``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agents.run import cliargs
from agents.run import world as W
from agents.run.markers import file_digest
from agents.run.model_stages import available_policies, run_policies
from agents.run.rundir import RunDir, StageContext
from agents.run.stages import StageStatus, stage_fingerprint, world_of
from agents.run.world import WorldArgs
from liveenv.atomic import atomic_write_bytes
from liveenv.presets import PRESETS

MODEL_STAGES = ("cascade", "cascade_coldstart", "pretrain", "align")
#: most requests per seed and policy (one takes about a millisecond per policy)
MAX_STEPS = 1_000_000

__all__ = ["EvaluateArgs", "eval_presets", "load_eval", "run_evaluate"]


@dataclass
class EvaluateArgs:
    """Evaluate every policy of a run (baselines and trained models) in the simulator."""

    presets: tuple[str, ...] = field(
        default=(), metadata={"help": "world presets to evaluate on (empty: the run's world)"}
    )
    n_users: int = field(default=-1, metadata={"help": "users (-1: the run's world, 0: preset's)"})
    n_streamers: int = field(
        default=-1, metadata={"help": "streamers (-1: the run's world, 0: preset's)"}
    )
    seeds: tuple[int, ...] = field(
        default=(100, 101, 102),
        metadata={"help": "evaluation seeds (days unseen by the log, seed 0)"},
    )
    steps: int = field(default=600, metadata={"help": "requests per seed and policy"})
    start_hour: float = field(
        default=W.ONLINE_START_HOUR,
        metadata={"help": "hour of day episodes start (20: the evening peak)"},
    )
    policies: tuple[str, ...] = field(
        default=(), metadata={"help": "policy names (empty: every policy the run has)"}
    )
    expected: bool = field(
        default=True, metadata={"help": "also report the expected (noise-free) return"}
    )

    def __post_init__(self) -> None:
        self.presets, self.seeds = tuple(self.presets), tuple(self.seeds)
        self.policies = tuple(self.policies)
        bad = [p for p in self.presets if p not in PRESETS]
        if bad:
            raise ValueError(f"presets={bad} are unknown; allowed: {sorted(PRESETS)}")
        if not self.seeds:
            raise ValueError("seeds is empty: give at least one seed")
        bad_seeds = [s for s in self.seeds if not 0 <= s < 2**32]
        if bad_seeds:
            raise ValueError(f"seeds={bad_seeds} are invalid: seeds must be in [0, 2**32)")
        if not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps={self.steps!r} is invalid: must be in [1, {MAX_STEPS:_}]")
        if not 0 <= self.start_hour <= 24:
            raise ValueError(f"start_hour={self.start_hour!r} is invalid: must be in [0, 24]")
        for name, most in (("n_users", W.MAX_USERS), ("n_streamers", W.MAX_STREAMERS)):
            value = getattr(self, name)
            if not -1 <= value <= most:
                raise ValueError(
                    f"{name}={value!r} is invalid: must be in [-1, {most:_}] "
                    f"(-1: the run's world, 0: the preset's)"
                )

    def world(self, run: RunDir) -> WorldArgs:
        base = world_of(run) or WorldArgs()
        return WorldArgs(
            preset=base.preset,
            n_users=base.n_users if self.n_users == -1 else self.n_users,
            n_streamers=base.n_streamers if self.n_streamers == -1 else self.n_streamers,
        )


def run_evaluate(
    run: RunDir, args: EvaluateArgs, force: bool = False, progress: bool = True
) -> list[StageStatus]:
    """One ``evaluate-<key>`` stage per preset of ``args`` (default: the run's); the
    key is the preset, or the preset and a hash of the arguments when the preset was
    evaluated here with other ones (see the module doc)."""
    world = args.world(run)
    presets = args.presets or (world.preset,)
    models = model_stages(run)
    statuses = []
    for preset in presets:
        made_with = preset_args(args, world, preset)
        key = eval_key(run, made_with, preset, force)
        name = f"evaluate-{key}"
        spec = {
            "args": cliargs.to_dict(args),
            "preset": preset,
            "world": cliargs.to_dict(world),
            "policies": _policy_files(run),
        }
        fp = stage_fingerprint(run, spec, models)

        def work(ctx: StageContext, preset: str = preset, key: str = key) -> dict[str, Any]:
            return _evaluate_preset(run, ctx, args, world, preset, progress, key)

        outcome = run.run_stage(name, work, fp, force)
        run.record_command(name, made_with, force=True)  # what this key was made with
        statuses.append(StageStatus(name, "skipped" if outcome.skipped else "ran", outcome=outcome))
    return statuses


def model_stages(run: RunDir) -> list[str]:
    """The finished model stages of ``run``, with those keyed by other arguments
    (``align-<label>-<hash>``, see :func:`agents.run.stages.keyed_stage`)."""
    names = [r.name for r in run.records() if r.name.partition("-")[0] in MODEL_STAGES]
    return sorted(names, key=lambda n: (MODEL_STAGES.index(n.partition("-")[0]), n))


def aligned_with(run: RunDir) -> dict[str, dict[str, float]]:
    """The reward weights each aligned policy of ``run`` was aligned to: policy -> weights."""
    out = {}
    for name in model_stages(run):
        record = run.record(name)
        weights = record.summary.get("weights") if record else None
        if isinstance(weights, dict):
            out[Path(str(record.summary.get("output", name))).name] = weights
    return out


def preset_args(args: EvaluateArgs, world: WorldArgs, preset: str) -> dict[str, Any]:
    """What the evaluation of one preset is made with (its entry in ``config.json``)."""
    made = {k: v for k, v in cliargs.to_dict(args).items() if k != "presets"}
    return {**made, "preset": preset, "world": cliargs.to_dict(world)}


def eval_key(run: RunDir, made_with: dict[str, Any], preset: str, force: bool) -> str:
    """``preset`` when its evaluation here was made with ``made_with`` (or there is
    none yet, or ``force``), else ``<preset>-<hash of made_with>``
    (:meth:`RunDir.keyed_name`)."""
    return run.keyed_name(f"evaluate-{preset}", made_with, force).removeprefix("evaluate-")


def _policy_files(run: RunDir) -> dict[str, str | None]:
    """The checksum of every policy file of the run (a new or retrained policy makes
    the evaluation run again; a moved or copied run does not)."""
    return {
        name: file_digest(Path(where))
        for name, where in available_policies(run).items()
        if where != "baseline"
    }


def _evaluate_preset(
    run: RunDir,
    ctx: StageContext,
    args: EvaluateArgs,
    world: WorldArgs,
    preset: str,
    progress: bool,
    key: str,
) -> dict[str, Any]:
    from agents.evaluate.online import evaluate
    from agents.evaluate.tables import markdown_summary, save_figures, save_report

    config = world.config(preset, start_hour=args.start_hour)
    policies = run_policies(run, args.policies, slate_size=config.slate_size)
    result = evaluate(
        policies,
        preset,
        args.seeds,
        args.steps,
        config=config,
        progress=progress,
        expected=args.expected,
    )
    out = ctx.path(W.EVAL_DIR, key, "x").parent
    save_report(result, out, figures=False)
    aligned = {k: v for k, v in aligned_with(run).items() if k in policies}
    summary_md = markdown_summary(result) + _aligned_note(aligned)
    atomic_write_bytes(out / "summary.md", summary_md.encode())
    figures = save_figures(result, ctx.path(W.FIGURES, key, "x").parent)
    meta = {
        "preset": preset,
        "folder": f"{W.EVAL_DIR}/{key}",
        "world": world.overrides(preset),
        "seeds": list(args.seeds),
        "steps_per_seed": args.steps,
        "start_hour": args.start_hour,
        "policies": list(result.ranking()),
        "reward_weights": dict(config.reward_weights),  # what every policy is scored under
        "aligned_with": aligned,
        "references": result.references,
        "wall_s": result.wall_s,
    }
    atomic_write_bytes(out / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())
    overall = result.overall()
    return {
        **meta,
        "figures": [f"{W.FIGURES}/{key}/{p.name}" for p in figures],
        "summary_md": summary_md,
        "oracle_normalised": dict(
            zip(overall["policy"], overall["oracle_normalised_mean"].round(4), strict=True)
        ),
    }


def _aligned_note(aligned: dict[str, dict[str, float]]) -> str:
    """What each aligned policy was aligned to (empty when none is evaluated)."""
    from agents.evaluate.tables import weights_text

    lines = [f"- `{name}`: {weights_text(w)}" for name, w in sorted(aligned.items())]
    return "\nAligned to the reward weights:\n\n" + "\n".join(lines) + "\n" if lines else ""


def eval_presets(root: str | Path) -> list[str]:
    """Presets with evaluation results in the run directory ``root``."""
    folder = Path(root) / W.EVAL_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "summary.csv").is_file())


def load_eval(root: str | Path, preset: str) -> dict[str, Any]:
    """``summary`` and ``table`` (DataFrames), ``summary_md`` and ``meta`` of one preset."""
    folder = Path(root) / W.EVAL_DIR / preset
    if not (folder / "summary.csv").is_file():
        raise FileNotFoundError(f"{folder}: no evaluation results (summary.csv)")
    meta_path = folder / "meta.json"
    return {
        "summary": pd.read_csv(folder / "summary.csv"),
        "table": pd.read_csv(folder / "table.csv") if (folder / "table.csv").is_file() else None,
        "summary_md": (folder / "summary.md").read_text()
        if (folder / "summary.md").is_file()
        else "",
        "meta": json.loads(meta_path.read_text()) if meta_path.is_file() else {},
    }
