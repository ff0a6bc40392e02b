"""How far can reward weights steer at all? The oracle's rates under each weight.

    python benchmarks/oracle_steering.py --preset gift_tradeoff --objective gift \
        --values 0.005 0.02 0.08 0.32 1.28 [--overrides streamers.gift_pull_sigma=1.5 ...]

For each value of one objective's weight (the others at the defaults) the
oracle (greedy on the true expected reward of every live room) plays the same
seeded days, and the script prints the mean *expected* feedback per impression
of the rooms it chose, with the Spearman correlation of the weight with that
objective's rate. It is the ceiling of what any policy's steering sweep
(:mod:`agents.align.sweep`) can show in that world: where the oracle's rate hardly
moves with the weight, every objective rises with the same rooms and there is
nothing for a recommender to trade.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr

from agents.evaluate.online import evaluate
from liveenv.objectives import DEFAULT_WEIGHTS, OBJECTIVES
from liveenv.presets import make_config
from policies.baselines import OraclePolicy


def oracle_rates(
    preset: str,
    objective: str,
    values: Sequence[float],
    seeds: Sequence[int],
    steps: int,
    overrides: dict[str, object],
) -> list[dict[str, float]]:
    """Mean expected feedback per impression of the oracle's rooms, one dict per value."""
    rows = []
    for v in values:
        cfg = make_config(preset, **overrides).replace(
            reward_weights={**DEFAULT_WEIGHTS, objective: float(v)}
        )
        res = evaluate(
            {"oracle": OraclePolicy()},
            config=cfg,
            seeds=seeds,
            steps_per_seed=steps,
            progress=False,
            expected=True,
            add_references=False,
        )
        imp = res.impressions
        rows.append({k: float(imp[f"expected_{k}"].mean()) for k in OBJECTIVES})
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="gift_tradeoff")
    ap.add_argument("--objective", default="gift", choices=OBJECTIVES)
    ap.add_argument("--values", type=float, nargs="+", default=[0.005, 0.02, 0.08, 0.32, 1.28])
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101])
    ap.add_argument("--steps", type=int, default=300, help="requests per seed")
    ap.add_argument("--overrides", nargs="*", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    rows = oracle_rates(args.preset, args.objective, args.values, args.seeds, args.steps, overrides)
    print(f"preset {args.preset} {overrides or ''}, oracle, seeds {args.seeds} x {args.steps}")
    print(f"{'w_' + args.objective:>14} " + " ".join(f"{k:>10}" for k in OBJECTIVES))
    for v, r in zip(args.values, rows, strict=True):
        print(f"{v:>14g} " + " ".join(f"{r[k]:>10.4f}" for k in OBJECTIVES))
    rate = np.array([r[args.objective] for r in rows])
    rho = float(spearmanr(args.values, rate)[0])
    monotone = bool(np.all(np.diff(rate) > 0))
    print(
        f"Spearman(w_{args.objective}, expected {args.objective}) = {rho:.3f}, monotone: {monotone}"
    )
    return {"rows": rows, "spearman": rho, "monotone": monotone}


if __name__ == "__main__":
    main()
