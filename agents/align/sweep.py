"""Sweep reward weights x seeds: align and evaluate every cell, in parallel, resumably.

    python -m agents.align.sweep --generator runs/pretrain/model.pt \
        --reward-model runs/rm/reward_model.pt --grid gift=0.005,0.02,0.05,0.1 \
        --seeds 0 1 --workers 2 --out runs/sweep

A *cell* is one weight vector and one alignment seed. It runs in its own process
(``ProcessPoolExecutor``, spawn context; or a Ray task with ``--ray-address``):
GRPO/ECPO (or DPO) alignment under the cell's weights (:mod:`agents.align.grpo`,
resumable from its checkpoint), then :func:`agents.evaluate.online.evaluate` of the
aligned generator in a world whose reward uses the same weights (random and
oracle added, so the oracle-normalised score is the cell's). Its folder
``OUT/cells/<weights>-s<seed>/`` holds the run and ``result.json``; ``DONE`` is
written (atomically) last, so a rerun skips finished cells and resumes the
others from their alignment checkpoints: an interruption loses no finished
work. The pretrained generator is evaluated once as the reference cell.

Outputs: ``results.csv`` (one row per cell: weights, rates of every objective,
weighted/expected return, normalised scores, KL to the reference),
``summary.csv`` / ``summary.md`` (mean and spread across seeds per weight
vector, Spearman correlations of swept weights with their objective's rate)
and ``pareto.png`` (``--pareto-x`` against ``--pareto-y`` rate, every weight
vector marked, the non-dominated ones joined, the pretrained policy starred):
written by :mod:`agents.align.pareto`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from agents.align.pareto import REFERENCE, write_outputs
from agents.align.weights import parse_weights, weights_label, weights_text
from agents.evaluate.episodes import EXPECTED_OBJECTIVES
from agents.progress import progress_bar
from liveenv.atomic import atomic_write_bytes
from liveenv.objectives import OBJECTIVES, as_weight_vector

DONE = "DONE"
RESULT = "result.json"


@dataclass
class SweepArgs:
    """Align and evaluate a generator over reward weights x seeds."""

    generator: str = field(metadata={"help": "pretrained generator checkpoint"})
    reward_model: str = field(default="", metadata={"help": "reward model (source model)"})
    out: str = field(default="runs/sweep", metadata={"help": "sweep folder"})
    weights: tuple[str, ...] = field(
        default=(), metadata={"help": "weight vectors, each NAME=VALUE,... (or a .json/.yaml file)"}
    )
    grid: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "NAME=V1;V2;... per objective (also V1,V2,...): every combination"},
    )
    base_weights: str | None = field(
        default=None, metadata={"help": "weights of the objectives the grid does not name"}
    )
    seeds: tuple[int, ...] = field(default=(0,), metadata={"help": "alignment seeds"})
    eval_seeds: tuple[int, ...] = field(
        default=(100, 101, 102), metadata={"help": "evaluation seeds (unseen days)"}
    )
    eval_steps: int = field(default=1000, metadata={"help": "evaluation steps per seed"})
    preset: str = field(default="default", metadata={"help": "world preset"})
    overrides: dict[str, Any] = field(default_factory=dict, metadata={"help": "env overrides"})
    method: str = field(
        default="grpo", metadata={"help": "the aligner of agents.align.registry: grpo | dpo"}
    )
    align: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "extra alignment arguments FIELD=VALUE (fields of the aligner's args)"},
    )
    workers: int = field(default=2, metadata={"help": "parallel cell processes"})
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "run the cells as Ray tasks on this cluster ('auto', 'local' or host:port)"
        },
    )
    pareto_x: str = field(default="watch_time", metadata={"help": "objective on the x axis"})
    pareto_y: str = field(default="gift", metadata={"help": "objective on the y axis"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        from agents.align.registry import ALIGNERS

        if self.method not in ALIGNERS:
            raise ValueError(f"SweepArgs.method={self.method!r}: allowed {list(ALIGNERS)}")
        for name in ("pareto_x", "pareto_y"):
            if getattr(self, name) not in OBJECTIVES:
                raise ValueError(
                    f"SweepArgs.{name}={getattr(self, name)!r}: allowed {list(OBJECTIVES)}"
                )
        if self.workers < 1 or self.eval_steps < 1:
            raise ValueError("SweepArgs.workers and eval_steps must be >= 1")
        if not self.seeds or not self.eval_seeds:
            raise ValueError("SweepArgs.seeds and eval_seeds must not be empty")
        known = set(ALIGNERS[self.method].args.__dataclass_fields__)
        bad = sorted(set(self.align) - known)
        if bad:
            raise ValueError(f"SweepArgs.align: unknown alignment argument(s) {bad}")
        self.weight_vectors()  # refuse bad weights before any work

    def weight_vectors(self) -> list[np.ndarray]:
        """The swept weight vectors: ``--weights`` then the ``--grid`` combinations."""
        out = [parse_weights(w, "--weights") for w in self.weights]
        if self.grid:
            base = parse_weights(self.base_weights, "--base-weights")
            names = list(self.grid)
            values = [_grid_values(n, self.grid[n]) for n in names]
            for combo in itertools.product(*values):
                out.append(
                    as_weight_vector(
                        {
                            **dict(zip(OBJECTIVES, base, strict=True)),
                            **dict(zip(names, combo, strict=True)),
                        },
                        "--grid",
                    )
                )
        if not out:
            raise ValueError("give --weights and/or --grid: no weight vector to sweep")
        return out


def _grid_values(name: str, text: str) -> list[float]:
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--grid {name}={text!r}: values must be numbers") from None


# ----- cells ---------------------------------------------------------------------------
def cell_specs(args: SweepArgs) -> list[dict[str, Any]]:
    """One plain-value spec per cell (the reference first), picklable for any executor."""
    common = {
        "generator": args.generator,
        "reward_model": args.reward_model,
        "preset": args.preset,
        "overrides": dict(args.overrides),
        "method": args.method,
        "align": dict(args.align),
        "eval_seeds": list(args.eval_seeds),
        "eval_steps": args.eval_steps,
    }
    root = Path(args.out) / "cells"
    specs = [
        {
            **common,
            "label": REFERENCE,
            "seed": 0,
            "weights": parse_weights(None).tolist(),
            "dir": str(root / REFERENCE),
        }
    ]
    for w in args.weight_vectors():
        for seed in args.seeds:
            label = weights_label(w)
            specs.append(
                {
                    **common,
                    "label": label,
                    "seed": int(seed),
                    "weights": w.tolist(),
                    "dir": str(root / f"{label}-s{seed}"),
                }
            )
    return specs


def is_done(spec: dict[str, Any]) -> bool:
    return (Path(spec["dir"]) / DONE).is_file() and (Path(spec["dir"]) / RESULT).is_file()


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Align (resuming from the cell's checkpoint) and evaluate one cell; write
    ``result.json`` then ``DONE``; return the result row."""
    import torch

    torch.set_num_threads(1)
    if is_done(spec):
        return json.loads((Path(spec["dir"]) / RESULT).read_text())
    t0 = time.perf_counter()
    cell = Path(spec["dir"])
    cell.mkdir(parents=True, exist_ok=True)
    model, kl = spec["generator"], 0.0
    if spec["label"] != REFERENCE:
        model, kl = _align_cell(spec, cell / "align")
    row = _evaluate_cell(spec, model)
    row.update(
        label=spec["label"],
        seed=spec["seed"],
        kl_ref=kl,
        model=str(model),
        wall_s=time.perf_counter() - t0,
        **{f"w_{k}": float(v) for k, v in zip(OBJECTIVES, spec["weights"], strict=True)},
    )
    atomic_write_bytes(cell / RESULT, (json.dumps(row, indent=2) + "\n").encode())
    atomic_write_bytes(cell / DONE, b"done\n")  # last: the cell is finished
    return row


def cell_align_args(spec: dict[str, Any]) -> Any:
    """The alignment arguments of a cell (``resume`` on: a rerun continues)."""
    from agents.align.registry import ALIGNERS

    kwargs = {
        "generator": spec["generator"],
        "reward_model": spec["reward_model"],
        "out": str(Path(spec["dir"]) / "align"),
        "weights": weights_text(spec["weights"]),
        "preset": spec["preset"],
        "overrides": spec["overrides"],
        "seed": spec["seed"],
        "resume": True,
        "progress": False,
        **spec["align"],
    }
    return ALIGNERS[spec["method"]].args(**kwargs)


def _align_cell(spec: dict[str, Any], out: Path) -> tuple[str, float]:
    from agents.align.registry import ALIGNERS

    path = ALIGNERS[spec["method"]].run(cell_align_args(spec))
    summary = json.loads((out / "summary.json").read_text())
    chosen = summary["best"] if Path(path).name == "best.pt" else summary["last"]
    return str(path), float(chosen.get("kl_ref", float("nan")))


def _evaluate_cell(spec: dict[str, Any], model: str) -> dict[str, Any]:
    from agents.evaluate.online import evaluate
    from liveenv.objectives import weights_dict
    from liveenv.presets import make_config
    from policies.onelive.policy import GeneratorPolicy

    cfg = make_config(spec["preset"], **spec["overrides"]).replace(
        reward_weights=weights_dict(np.asarray(spec["weights"]))
    )
    policy = GeneratorPolicy.from_files(model, name=spec["label"])
    res = evaluate(
        {"policy": policy},
        config=cfg,
        seeds=spec["eval_seeds"],
        steps_per_seed=spec["eval_steps"],
        progress=False,
        expected=True,
    )
    mine = res.table[(res.table["policy"] == "policy") & (res.table["breakdown"] == "all")]
    metrics = [
        "weighted_return",
        "expected_return",
        "oracle_normalised",
        "expected_normalised",
        *OBJECTIVES,
        *EXPECTED_OBJECTIVES,
    ]
    row: dict[str, Any] = {m: float(mine[m].mean()) for m in metrics}
    row.update(
        {
            f"{m}_sd": float(mine[m].std(ddof=1)) if len(mine) > 1 else 0.0
            for m in ("weighted_return", "expected_return", *OBJECTIVES, *EXPECTED_OBJECTIVES)
        }
    )
    return row


# ----- executors ----------------------------------------------------------------------
def run_local(specs: list[dict[str, Any]], workers: int, progress: bool) -> list[dict[str, Any]]:
    """Cells in ``workers`` spawned processes (results in completion order)."""
    rows: list[dict[str, Any]] = []
    bar = progress_bar(total=len(specs), desc="sweep", unit="cell", enabled=progress)
    if workers == 1:
        for spec in specs:
            rows.append(run_cell(spec))
            bar.update(1)
        bar.close()
        return rows
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_cell, s): s for s in specs}
        for fut in as_completed(futures):
            rows.append(fut.result())
            bar.update(1)
    bar.close()
    return rows


def run_ray(specs: list[dict[str, Any]], address: str, progress: bool) -> list[dict[str, Any]]:
    """The same cells as Ray tasks (one CPU each) on the cluster at ``address``
    (``local`` starts a local instance)."""
    try:
        import ray
    except ImportError as e:
        raise RuntimeError(
            "--ray-address needs Ray: pip install 'liveenv-workbench[ray]' (or `pip install ray`)"
        ) from e
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=None if address == "local" else address,
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        task = ray.remote(num_cpus=1)(run_cell)
        pending = [task.remote(s) for s in specs]
        rows = []
        bar = progress_bar(total=len(specs), desc="sweep (ray)", enabled=progress)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            rows.extend(ray.get(done))
            bar.update(len(done))
        bar.close()
        return rows
    finally:
        if started:
            ray.shutdown()


def sweep(args: SweepArgs) -> dict[str, Path]:
    """Run every unfinished cell, then write the tables and the figure."""
    specs = cell_specs(args)
    todo = [s for s in specs if not is_done(s)]
    rows = [json.loads((Path(s["dir"]) / RESULT).read_text()) for s in specs if is_done(s)]
    if todo:
        if args.ray_address:
            rows += run_ray(todo, args.ray_address, args.progress)
        else:
            rows += run_local(todo, args.workers, args.progress)
    return write_outputs(Path(args.out), rows, args.pareto_x, args.pareto_y)


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    from agents.run.cliargs import parse

    args = parse(SweepArgs, argv, prog="python -m agents.align.sweep")
    paths = sweep(args)
    print(Path(paths["markdown"]).read_text())
    return paths


if __name__ == "__main__":
    main()


__all__ = [
    "SweepArgs",
    "cell_align_args",
    "cell_specs",
    "main",
    "run_cell",
    "sweep",
]
