"""Paired bootstrap of the offline difference between two generator variants.

    python benchmarks/paired_offline.py --holdout H.npz \
        --a runs/abl/full-s0/model.pt runs/abl/full-s1/model.pt \
        --b runs/abl/static_sids-s0/model.pt runs/abl/static_sids-s1/model.pt

Every model ranks the live rooms of the same held-out clicked requests
(:class:`agents.evaluate.holdout.Holdout`); per request, a variant's HR@K / MRR@K is the mean
over its models (training seeds). The request-level differences ``a - b`` are
resampled (``--resamples`` times, seeded) for 95 % intervals, for the click and the
long-view target. Prints one JSON line per metric.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from agents.evaluate.holdout import Holdout
from agents.evaluate.offline import LONG_VIEW_S
from agents.run import cliargs
from policies.onelive.policy import GeneratorPolicy


@dataclass
class PairedArgs:
    """Paired bootstrap of variant a minus variant b on held-out requests."""

    holdout: str = field(default="", metadata={"help": "captured held-out file (.npz)"})
    a: tuple[str, ...] = field(default=(), metadata={"help": "model.pt files of variant a"})
    b: tuple[str, ...] = field(default=(), metadata={"help": "model.pt files of variant b"})
    ks: tuple[int, ...] = field(default=(1, 10), metadata={"help": "cut-offs K"})
    resamples: int = field(default=2000, metadata={"help": "bootstrap resamples"})
    seed: int = field(default=0, metadata={"help": "bootstrap seed"})

    def __post_init__(self) -> None:
        if not self.holdout or not self.a or not self.b:
            raise ValueError("PairedArgs: give --holdout and at least one model in --a and --b")


def ranks(model: str, holdout: Holdout, batch: int = 64) -> np.ndarray:
    """``(n,)`` rank (1 = top) of the logged room among the live rooms, per request."""
    policy = GeneratorPolicy.from_files(model)
    policy.features.cache.update(holdout.streamer_ids, holdout.pooled)  # type: ignore[union-attr]
    slots = holdout.rows["slot"].to_numpy(np.int64)
    out = []
    for i in range(0, len(holdout), batch):
        idx = np.arange(i, min(i + batch, len(holdout)))
        with torch.no_grad():
            s = policy.scores(holdout.observations(idx))
        own = s[np.arange(len(idx)), slots[idx]][:, None]
        out.append(1 + (s > own).sum(1))
    return np.concatenate(out)


def metrics(r: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-request HR@K and MRR@K of ranks ``r`` (models, n)."""
    out = {}
    for k in ks:
        out[f"hr@{k}"] = (r <= k).mean(0)
        out[f"mrr@{k}"] = np.where(r <= k, 1.0 / r, 0.0).mean(0)
    return out


def main(argv: Sequence[str] | None = None) -> list[dict[str, float]]:
    args = cliargs.parse(PairedArgs, argv, prog="python benchmarks/paired_offline.py")
    holdout = Holdout.load(args.holdout)
    rows = holdout.rows
    click = rows["is_click"].to_numpy() > 0
    targets = {
        "click": click,
        "long_view": click & (rows["watch_time_ms"].to_numpy() >= 1000 * LONG_VIEW_S),
    }
    ma = metrics(np.stack([ranks(m, holdout) for m in args.a]), args.ks)
    mb = metrics(np.stack([ranks(m, holdout) for m in args.b]), args.ks)
    rng = np.random.default_rng(args.seed)
    results = []
    for target, keep in targets.items():
        n = int(keep.sum())
        boot = rng.integers(0, n, size=(args.resamples, n))
        for name in ma:
            d = (ma[name] - mb[name])[keep]
            lo, hi = np.quantile(d[boot].mean(1), [0.025, 0.975])
            row = {
                "target": target,
                "metric": name,
                "n": n,
                "a": float(ma[name][keep].mean()),
                "b": float(mb[name][keep].mean()),
                "a_minus_b": float(d.mean()),
                "lo": float(lo),
                "hi": float(hi),
            }
            print(json.dumps(row))
            results.append(row)
    return results


if __name__ == "__main__":
    main()
