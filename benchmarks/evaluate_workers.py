"""Parallel evaluation: wall time of :func:`agents.evaluate.online.evaluate` with
``workers=N`` against one process in the same run, and a check that the tables
are equal.

    python benchmarks/evaluate_workers.py [--workers 2] [--seeds 4] [--steps 300]

The policies are the saved cascade when it is there (``--cascade``) and the
popular baseline; random and the oracle are added by the harness, as in
``agents.evaluate.compare``. The ratio counts the start of the spawned processes
(imports, unpickling the policies) against the parallel run, as a user pays it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from agents.evaluate.online import evaluate
from policies.base import Policy
from policies.baselines import PopularPolicy


def policies(cascade: str) -> dict[str, Policy]:
    out: dict[str, Policy] = {"popular": PopularPolicy()}
    if Path(cascade).exists():
        out["cascade"] = Policy.load(cascade)
        out["cascade"].name = "cascade"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--cascade", default="runs/baselines/models/default/cascade.npz")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = tuple(range(100, 100 + args.seeds))
    walls, tables = {}, {}
    runs = policies(args.cascade)
    for workers in (1, args.workers):
        t0 = time.perf_counter()
        res = evaluate(
            runs,
            seeds=seeds,
            steps_per_seed=args.steps,
            progress=False,
            expected=True,
            workers=workers,
        )
        walls[workers], tables[workers] = time.perf_counter() - t0, res.table
    pd.testing.assert_frame_equal(tables[1], tables[args.workers])
    episodes = len(tables[1]["policy"].unique()) * len(seeds)
    print(
        f"cpus {os.cpu_count()}, {episodes} episodes x {args.steps} steps "
        f"({', '.join(sorted(tables[1]['policy'].unique()))})"
    )
    print(
        f"workers=1: {walls[1]:.1f} s; workers={args.workers}: {walls[args.workers]:.1f} s; "
        f"speed-up x{walls[1] / walls[args.workers]:.2f}; tables equal"
    )


if __name__ == "__main__":
    main()
