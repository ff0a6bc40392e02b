"""A quick alignment-and-evaluation from the dashboard: the run's pretrained generator
aligned to new reward weights on the run's (small) world for a few iterations, then
evaluated beside the pretrained generator under those weights.

Alignment runs in chunks (``stop_at`` then ``resume``, the trainer's own exact
resume), so progress is reported between chunks. Outputs go to a scratch folder
private to the user (``$XDG_CACHE_HOME/liveenv/dashboard``, mode 0700, else a
fresh ``tempfile.mkdtemp``), outside the run directory (which may be read-only),
keyed by the content of the run's models, the world, the weights and the budget.
A finished result is reused only when its ``done.json`` holds the checksum of
its model; anything else found there is removed first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from agents.run import world as W
from agents.run.markers import file_digest
from agents.run.rundir import RunDir
from agents.run.stages import world_of
from liveenv.objectives import OBJECTIVES, as_weight_vector, weights_dict

Progress = Callable[[float, str], None]
#: where quick alignments go (None: the user's cache folder, see :func:`scratch_root`)
SCRATCH: Path | None = None

__all__ = ["QuickAlignArgs", "quick_align", "quick_align_ready"]


@dataclass
class QuickAlignArgs:
    """Budget of a quick alignment (small: it runs while the user waits)."""

    weights: dict[str, float] = field(default_factory=dict)
    iterations: int = 12
    chunk: int = 4
    eval_steps: int = 300
    eval_seeds: tuple[int, ...] = (0,)
    seed: int = 0

    def __post_init__(self) -> None:
        as_weight_vector(self.weights or None, "weights")
        if self.iterations < 1 or self.chunk < 1 or self.eval_steps < 1:
            raise ValueError("iterations, chunk and eval_steps must be >= 1")


def scratch_root() -> Path:
    """A folder only this user can read and write, for quick alignments."""
    if SCRATCH is not None:
        base = SCRATCH
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = Path(cache) / "liveenv" / "dashboard"
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = base.lstat()
        if base.is_symlink() or info.st_uid != os.getuid():
            raise PermissionError(f"{base} is not this user's own folder")
        if info.st_mode & 0o077:
            os.chmod(base, 0o700)
        return base
    except OSError:  # no usable cache folder: a fresh private one
        return Path(tempfile.mkdtemp(prefix="liveenv-dashboard-"))


def _inputs(root: Path) -> tuple[Path, Path, Path]:
    return (
        root / W.GENERATOR / "model.pt",
        root / W.GENERATOR / "tokenizer.pt",
        root / W.REWARD_MODEL / "reward_model.pt",
    )


def quick_align_ready(root: str | Path) -> str:
    """Empty when a quick alignment can run on ``root``, else why not."""
    missing = [str(p.relative_to(root)) for p in _inputs(Path(root)) if not p.is_file()]
    if missing:
        return f"the run has no {', '.join(missing)} (run `liveenv demo` or pretrain + reward)"
    return ""


def quick_align(
    root: str | Path, args: QuickAlignArgs, progress: Progress | None = None
) -> pd.DataFrame:
    """Align, evaluate, and return the overall table (pretrained vs aligned)."""
    from agents.align.registry import ALIGNERS

    align_args_cls, align = ALIGNERS["grpo"].args, ALIGNERS["grpo"].run
    root = Path(root)
    generator, tokenizer, reward = _inputs(root)
    world = world_of(RunDir(root)) or W.WorldArgs()
    w = as_weight_vector(args.weights or None)
    text = ",".join(f"{k}={v:g}" for k, v in zip(OBJECTIVES, w, strict=True))
    made_from = [file_digest(p) or p.stat().st_size for p in (generator, tokenizer, reward)]
    key = hashlib.sha256(
        json.dumps(
            [made_from, dataclasses.asdict(world), text, dataclasses.asdict(args)], default=str
        ).encode()
    ).hexdigest()[:16]
    out = scratch_root() / key
    done = out / "done.json"
    model = out / "model.pt"
    if not _finished(done, model):
        shutil.rmtree(out, ignore_errors=True)  # a crashed attempt or something else
    base = align_args_cls(
        generator=str(generator),
        reward_model=str(reward),
        out=str(out),
        weights=text,
        preset=world.preset,
        overrides=world.online_overrides(),
        iterations=args.iterations,
        requests_per_iter=16,
        group_size=8,
        pool_requests=512,
        pool_steps_per_seed=256,
        eval_requests=64,
        log_every=args.chunk,
        checkpoint_every=args.chunk,
        seed=args.seed,
        progress=False,
    )
    report = progress or (lambda f, t: None)
    for stop in range(args.chunk, args.iterations + args.chunk, args.chunk):
        if _finished(done, model):
            break
        done_at = min(stop, args.iterations)
        report(0.8 * (done_at - args.chunk) / args.iterations, f"aligning: iteration {done_at}")
        last = done_at >= args.iterations
        align(
            dataclasses.replace(
                base, stop_at=0 if last else done_at, resume=(out / "ckpt.pt").is_file()
            )
        )
        if last and model.is_file():
            done.write_text(json.dumps({"model_sha256": file_digest(model)}))
    report(0.8, "evaluating")
    return _evaluate(generator, model, tokenizer, world, w, args)


def _finished(done: Path, model: Path) -> bool:
    """A finished quick alignment: its model matches the checksum ``done.json`` holds."""
    try:
        return model.is_file() and json.loads(done.read_text())["model_sha256"] == file_digest(
            model
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _evaluate(
    generator: Path,
    aligned: Path,
    tokenizer: Path,
    world: W.WorldArgs,
    weights: np.ndarray,
    args: QuickAlignArgs,
) -> pd.DataFrame:
    from agents.evaluate.online import evaluate
    from policies.onelive.policy import GeneratorPolicy

    config = world.config(start_hour=W.ONLINE_START_HOUR).replace(
        reward_weights=weights_dict(weights)
    )
    policies = {
        "pretrained": GeneratorPolicy.from_files(generator, tokenizer=tokenizer),
        "aligned": GeneratorPolicy.from_files(aligned, tokenizer=tokenizer),
    }
    res = evaluate(
        policies,
        config=config,
        seeds=args.eval_seeds,
        steps_per_seed=args.eval_steps,
        progress=False,
    )
    o = res.overall()
    cols = [
        "policy",
        "weighted_return_mean",
        "oracle_normalised_mean",
        *[f"{m}_mean" for m in OBJECTIVES],
    ]
    table = o[cols].rename(columns=lambda c: c.removesuffix("_mean"))
    low, high = request_interval(res.impressions, table["policy"])
    table.insert(2, "low (95 %)", low)
    table.insert(3, "high (95 %)", high)
    return table


def request_interval(impressions: pd.DataFrame, policies: pd.Series) -> tuple[list, list]:
    """A 95 % interval of each policy's weighted return per impression across the requests
    of the quick evaluation (one day: requests treated as independent, so it is narrower
    than the spread across days), clipped at 0 (the return cannot be negative)."""
    from agents.evaluate.metrics import mean_ci
    from agents.evaluate.tables import clip_low

    low, high = [], []
    for name in policies:
        _, lo, hi = mean_ci(impressions.loc[impressions["policy"] == name, "weighted_return"])
        low.append(float(clip_low("weighted_return", lo)))
        high.append(hi)
    return low, high
