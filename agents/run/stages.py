"""The stages of a run: each reads its inputs from the run directory and writes
its outputs back through :meth:`agents.run.rundir.RunDir.run_stage` (staged, then
moved into place, then the done-marker).

Stages that train through a registered trainer's ``XArgs`` dataclass and
``fit(args)`` (:mod:`agents.train.registry`: pretraining, the reward model,
alignment; the sweep) share one adapter,
:func:`train_stage`: the trainer writes into the stage's persistent checkpoint
folder (so an interrupted run continues with ``resume=True``), and its files
are copied into ``checkpoints/<name>/`` when it returns.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agents.run import cliargs
from agents.run import world as W
from agents.run.rundir import RunDir, RunDirError, StageContext, StageOutcome
from agents.run.world import WorldArgs

__all__ = [
    "LogArgs",
    "StageStatus",
    "TokenizeStageArgs",
    "check_log",
    "keyed_stage",
    "registered",
    "run_log",
    "run_tokenize",
    "stage_fingerprint",
    "train_stage",
]


@dataclass(frozen=True)
class StageStatus:
    """What happened to one stage in this invocation."""

    name: str
    status: Literal["ran", "skipped", "left_out"]
    reason: str = ""
    outcome: StageOutcome | None = None

    @property
    def summary(self) -> dict[str, Any]:
        return self.outcome.record.summary if self.outcome else {}

    @property
    def wall_s(self) -> float:
        return self.outcome.record.wall_s if self.outcome else 0.0


def registered(name: str) -> Callable[[], tuple[type, Callable[[Any], Any]]]:
    """The ``(args class, fit)`` of trainer ``name`` of :mod:`agents.train.registry`
    (imported when first asked: torch is slow to load)."""

    def load() -> tuple[type, Callable[[Any], Any]]:
        from agents.train.registry import TRAINERS

        return TRAINERS[name].args, TRAINERS[name].fit

    return load


def stage_fingerprint(
    run: RunDir, args: Any, upstream: Sequence[str] = (), ignore: Sequence[str] = ()
) -> dict[str, Any]:
    """What a stage's result depends on: its arguments and its inputs' markers."""
    data = cliargs.to_dict(args) if dataclasses.is_dataclass(args) else dict(args)
    for key in ignore:
        data.pop(key, None)
    inputs = {}
    for name in upstream:
        record = run.record(name)
        if record is None:
            raise RunDirError(
                f"{run.root}: stage {name!r} has not finished; run `liveenv {name}` "
                f"(or `liveenv demo`) with --run-dir {run.root} first"
            )
        inputs[name] = record.fingerprint
    return {"args": data, "inputs": inputs}


# ----- inputs ------------------------------------------------------------------
def check_log(path: str | Path) -> int:
    """Check every part of the log at ``path`` against the log schema; return its rows.

    ``FileNotFoundError`` when there is no log, ``ValueError`` naming the file
    for a part that is unreadable or of another schema."""
    import pyarrow.parquet as pq

    from agents.logs import check_schema, log_parts

    parts = log_parts(path)
    if not parts:
        raise FileNotFoundError(f"{path}: no log parts (part-*.parquet); run `liveenv log` first")
    rows = 0
    for part in parts:
        try:
            meta = pq.read_metadata(part)
        except Exception as e:  # truncated footer, not Parquet at all
            raise ValueError(f"{part} is not a readable Parquet file: {e}") from e
        check_schema(meta.schema.to_arrow_schema(), str(part))
        rows += meta.num_rows
    return rows


def world_of(run: RunDir) -> WorldArgs | None:
    """The world the run's log was simulated in (None before the log stage)."""
    args = run.read_config()["commands"].get("log")
    if not args:
        return None
    world = args.get("world", args)
    return WorldArgs(**{k: world[k] for k in ("preset", "n_users", "n_streamers") if k in world})


# ----- log ---------------------------------------------------------------------
@dataclass
class LogArgs:
    """Simulate days of a world under a behaviour policy and log every impression."""

    world: WorldArgs = field(default_factory=WorldArgs, metadata={"flatten": True, "help": "world"})
    days: float = field(default=1.0, metadata={"help": "simulated days to log"})
    policy: str = field(
        default="platform",
        metadata={
            "help": "behaviour policy: platform, random, popular (with propensities) or "
            "another baseline of the policy registry"
        },
    )
    seed: int = field(default=0, metadata={"help": "world and policy seed"})
    start_hour: float | None = field(
        default=None, metadata={"help": "hour of day the log starts (none: the preset's)"}
    )

    def __post_init__(self) -> None:
        if not 0 < self.days <= W.MAX_DAYS:
            raise ValueError(f"days={self.days!r} is invalid: must be in (0, {W.MAX_DAYS}]")
        if self.start_hour is not None and not 0 <= self.start_hour < 24:
            raise ValueError(f"start_hour={self.start_hour!r} is invalid: must be in [0, 24)")
        from agents.logs.behaviour import BUILTIN
        from policies.registry import baseline_names

        allowed = sorted({*BUILTIN, *baseline_names(privileged=False)})
        if self.policy not in allowed:
            raise ValueError(f"policy={self.policy!r} is unknown; allowed: {allowed}")

    def overrides(self) -> dict[str, Any]:
        extra = {} if self.start_hour is None else {"start_hour": self.start_hour}
        return {**self.world.overrides(), **extra}


def run_log(run: RunDir, args: LogArgs, force: bool = False, progress: bool = True) -> StageStatus:
    from agents.logs import generate_log

    def work(ctx: StageContext) -> dict[str, Any]:
        out = ctx.path(W.LOG_DIR)
        summary = generate_log(
            out,
            args.world.preset,
            args.days,
            args.policy,
            args.seed,
            overrides=args.overrides(),
            progress=progress,
        )
        rows = check_log(out)
        summary.update(out_dir=W.LOG_DIR, rows=rows, world=cliargs.to_dict(args.world))
        return summary

    outcome = run.run_stage("log", work, stage_fingerprint(run, args), force)
    return StageStatus("log", "skipped" if outcome.skipped else "ran", outcome=outcome)


# ----- tokenizer ---------------------------------------------------------------
@dataclass
class TokenizeStageArgs:
    """Fit the semantic-ID tokenizer on the run's log."""

    log: str = field(default="", metadata={"help": "log directory (empty: the run's logs/train)"})
    epochs: int = field(default=2, metadata={"help": "tower training epochs"})
    mode: Literal["dynamic", "static"] = field(default="dynamic", metadata={"help": "SID mode"})
    codebook_sizes: tuple[int, ...] = field(
        default=(32, 32, 32), metadata={"help": "clusters per level, coarse to fine"}
    )
    seed: int = field(default=0, metadata={"help": "seed of every draw of the fit"})


def run_tokenize(
    run: RunDir, args: TokenizeStageArgs, force: bool = False, progress: bool = True
) -> StageStatus:
    from agents.logs import read_log_arrays
    from policies.tokenizer import SIDTokenizer, SIDTokenizerConfig

    log = Path(args.log) if args.log else run.root / W.LOG_DIR
    upstream = () if args.log else ("log",)
    fp = stage_fingerprint(run, args, upstream)

    def work(ctx: StageContext) -> dict[str, Any]:
        check_log(log)
        config = SIDTokenizerConfig(
            mode=args.mode,
            codebook_sizes=tuple(args.codebook_sizes),
            epochs=args.epochs,
            seed=args.seed,
        )
        arrays = read_log_arrays(log)
        tok = SIDTokenizer.fit(arrays, config, progress=progress)
        tok.save(ctx.path(W.TOKENIZER))
        return {"tokenizer": W.TOKENIZER, **_tokenizer_diagnostics(tok, arrays)}

    outcome = run.run_stage("tokenize", work, fp, force)
    return StageStatus("tokenize", "skipped" if outcome.skipped else "ran", outcome=outcome)


def _tokenizer_diagnostics(tok: Any, log: dict[str, np.ndarray]) -> dict[str, Any]:
    """Codebook use and collisions of the log's room SIDs (at the time of each impression)."""
    from policies.tokenizer import codebook_utilisation

    info = {k: v for k, v in dict(getattr(tok, "fit_info", {}) or {}).items() if k != "losses"}
    codes = np.asarray(tok.encode_log(log))
    keys = log
    info.update(
        mode=tok.mode,
        vocab_sizes=list(tok.vocab_sizes),
        distinct_sids=len(np.unique(codes, axis=0)),
        distinct_rooms=len(np.unique(keys["live_id"])),
        codebook_utilisation=[round(u, 4) for u in codebook_utilisation(codes, tok.vocab_sizes)],
        collision_rate=round(_live_collision_rate(codes, keys), 4),
    )
    return info


def _live_collision_rate(codes: np.ndarray, keys: dict[str, np.ndarray]) -> float:
    """Share of rooms that share their SID with another room shown in the same 30-s
    tick: the collisions the live index has to resolve at serving time."""
    tick = keys["timestamp_ms"] // 30_000
    _, first = np.unique(np.stack([tick, keys["live_id"]], axis=1), axis=0, return_index=True)
    sid = np.unique(codes[first], axis=0, return_inverse=True)[1].reshape(-1)
    pairs = np.stack([tick[first], sid], axis=1)
    _, sizes = np.unique(pairs, axis=0, return_counts=True)
    return float(sizes[sizes > 1].sum() / max(len(first), 1))


# ----- trainers of other modules --------------------------------------------------
#: files of a trainer's output folder that are its resume state, not its result (the
#: stage leaves them in its checkpoint folder): hidden files, checkpoints, request pools
RESUME_STATE = (".", "ckpt", "pool-")


@dataclass(frozen=True)
class Trainer:
    """Where a trainer sits in a run: ``fit(args_cls(**fields)) -> path`` with its
    inputs taken from the run and its outputs copied into ``output``."""

    stage: str
    #: the trainer's ``(args class, fit)``, imported when first needed (see :func:`registered`)
    source: Callable[[], tuple[type, Callable[[Any], Any]]]
    output: str  # run-relative folder that receives the trainer's files
    #: Args field -> (run-relative input, the stage that makes it)
    paths: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    ignore: tuple[str, ...] = (
        "out",
        "resume",
        "progress",
        "threads",
        "stop_at_step",
        "tensorboard",
    )
    #: the file a finished run leaves in its output folder (absent: stopped early)
    final: str = "model.pt"
    #: called with (output folder in the staging area, the args) after the trainer
    #: returned; may add files (a policy file) and returns more summary entries
    finish: Callable[[Path, Any], dict[str, Any]] | None = None
    #: results made with other arguments live beside the run's own (None: redoing the
    #: stage with other arguments replaces it): stage ``<stage>-<label>-<hash>`` in
    #: ``<output>-<label>-<hash>/``, ``label(args)`` a readable part of the key (see
    #: :meth:`agents.run.rundir.RunDir.keyed_name`)
    label: Callable[[Any], str] | None = None

    def load(self) -> tuple[type, Callable[[Any], Any]]:
        return self.source()


def train_stage(run: RunDir, trainer: Trainer, args: Any, force: bool = False) -> StageStatus:
    """Run ``trainer`` with ``args`` (its Args instance) as one stage of ``run``.

    Fields of ``args`` named in ``trainer.paths`` that are empty are filled with
    the run's inputs; the trainer writes into the stage's checkpoint folder and
    resumes from it when it has a ``resume`` field and a checkpoint is there."""
    _, fn = trainer.load()
    args, upstream = with_run_inputs(run, trainer, args)
    fp = stage_fingerprint(run, args, upstream, trainer.ignore)
    name, output = keyed_stage(run, trainer, args, fp, force)

    def work(ctx: StageContext) -> dict[str, Any]:
        for key in trainer.paths:
            _check_input(Path(getattr(args, key)), key)
        ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        ctx.partial_output = output
        changes: dict[str, Any] = {"out": str(ctx.checkpoint_dir)}
        if hasattr(args, "resume"):
            changes["resume"] = any(ctx.checkpoint_dir.glob("ckpt*.pt"))
        result = fn(dataclasses.replace(args, **changes))
        if trainer.final and not (ctx.checkpoint_dir / trainer.final).is_file():
            stop = getattr(args, "stop_at_step", 0) or getattr(args, "stop_at", 0)
            raise RunDirError(
                f"{trainer.stage} stopped at step {stop} as asked; its checkpoint is kept in "
                f"{ctx.checkpoint_dir}: run the command again without the stop option to continue"
            )
        target = ctx.path(output)
        target.mkdir(parents=True, exist_ok=True)
        for item in sorted(ctx.checkpoint_dir.iterdir()):
            if item.is_file() and not item.name.startswith(RESUME_STATE):
                shutil.copy2(item, target / item.name)
            elif item.is_dir() and not item.name.startswith("."):
                shutil.copytree(item, target / item.name)
        summary = _in_run(_read_summary(target), ctx, output)
        summary.update(output=output, result=_relative(result, ctx))
        if trainer.finish is not None:
            summary.update(trainer.finish(target, args))
        return summary

    outcome = run.run_stage(name, work, fp, force)
    if trainer.label is not None:  # what this key was made with
        run.record_command(name, fp["args"], force=True)
    return StageStatus(name, "skipped" if outcome.skipped else "ran", outcome=outcome)


def keyed_stage(
    run: RunDir, trainer: Trainer, args: Any, fp: dict[str, Any], force: bool
) -> tuple[str, str]:
    """The stage name and output folder of ``trainer`` for ``args``: its own, or for a
    keyed trainer made with other arguments, ``-<label>-<hash>`` added to both."""
    if trainer.label is None:
        return trainer.stage, trainer.output
    label = trainer.label(args)
    name = run.keyed_name(trainer.stage, fp["args"], force, label, fingerprint=fp)
    return name, trainer.output + name.removeprefix(trainer.stage)


def run_inputs(run: RunDir, trainer: Trainer) -> dict[str, str]:
    """The run's input paths for ``trainer``'s path fields (to build its Args with)."""
    return {name: str((run.root / rel).resolve()) for name, (rel, _) in trainer.paths.items()}


def with_run_inputs(run: RunDir, trainer: Trainer, args: Any) -> tuple[Any, list[str]]:
    """``args`` with empty path fields set to the run's inputs, and the stages those
    inputs come from (an input given from outside the run has no upstream stage)."""
    filled, upstream = {}, []
    for name, (rel, stage) in trainer.paths.items():
        given = getattr(args, name, "")
        mine = run.root / rel
        if not given:
            filled[name] = str(mine.resolve())
        if not given or Path(given).resolve() == mine.resolve():
            upstream.append(stage)
    return (dataclasses.replace(args, **filled) if filled else args), upstream


def _check_input(path: Path, name: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{name}: {path} does not exist; run the stage that makes it first")
    if path.is_dir() and path.name != "" and any(path.glob("part-*.parquet")):
        check_log(path)


def _read_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {"summary": data}


def _in_run(value: Any, ctx: StageContext, output: str) -> Any:
    """``value`` with paths into the stage's checkpoint folder written as where those
    files end up (``output/...``) and other paths inside the run relative to it."""
    if isinstance(value, dict):
        return {k: _in_run(v, ctx, output) for k, v in value.items()}
    if isinstance(value, list):
        return [_in_run(v, ctx, output) for v in value]
    if isinstance(value, str) and value.startswith(str(ctx.checkpoint_dir) + "/"):
        return f"{output}/{value[len(str(ctx.checkpoint_dir)) + 1 :]}"
    return ctx.run.portable(value)


def _relative(result: Any, ctx: StageContext) -> Any:
    if isinstance(result, str | Path):
        path = Path(result)
        try:
            return str(path.relative_to(ctx.checkpoint_dir))
        except ValueError:
            return str(path)
    return result if isinstance(result, int | float | str | dict | list) else repr(result)
