"""A quick alignment-and-evaluation from the dashboard: the run's pretrained generator
aligned to new reward weights on the run's (small) world for a few iterations, then
evaluated beside the pretrained generator under those weights.

Alignment runs in chunks (``stop_at`` then ``resume``, the trainer's own exact
resume), so progress is reported between chunks. Outputs go to a scratch folder
outside the run directory, keyed by the weights and budget: the same request
twice reuses the finished result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from agents.run import world as W
from agents.run.rundir import RunDir
from agents.run.stages import world_of
from liveenv.objectives import OBJECTIVES, as_weight_vector, weights_dict

Progress = Callable[[float, str], None]
SCRATCH = Path(tempfile.gettempdir()) / "liveenv-dashboard"

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
    key = hashlib.sha256(
        json.dumps([str(root.resolve()), text, dataclasses.asdict(args)], default=str).encode()
    ).hexdigest()[:12]
    out = SCRATCH / key
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
    model = out / "model.pt"
    for stop in range(args.chunk, args.iterations + args.chunk, args.chunk):
        if model.is_file():
            break
        done = min(stop, args.iterations)
        report(0.8 * (done - args.chunk) / args.iterations, f"aligning: iteration {done}")
        last = done >= args.iterations
        align(
            dataclasses.replace(
                base, stop_at=0 if last else done, resume=(out / "ckpt.pt").is_file()
            )
        )
    report(0.8, "evaluating")
    return _evaluate(generator, model, tokenizer, world, w, args)


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
    return o[cols].rename(columns=lambda c: c.removesuffix("_mean"))
