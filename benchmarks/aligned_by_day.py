"""Does an aligned generator's gain carry from one day to another? Per-day greedy utility.

    python benchmarks/aligned_by_day.py --driver PRE/model.pt --judged GRPO/best.pt \
        --seeds 1007 1010 100 101 [--steps 512 --preset default]

Each seed is one day of the platform. The ``driver`` generator serves the day
greedily (so every judged policy meets the same states, those the pool of an
alignment run acted by it holds); at every request the script also asks the
``judged`` generator for its greedy room, and prints per day the mean true
expected reward (the env's weights) of the driver's room, of the judged one's,
and of the best live room (the oracle), and how the judged policy's gain over
the driver spreads over the requests.

A GRPO run picks ``best.pt`` on its held-out requests: the last
``eval_requests`` of its pool, ``eval_requests / pool_steps_per_seed`` days.
When those are a single day, compare that seed's row with other unseen days
before trusting the held-out return.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import numpy as np
import torch

from agents.align.actor import GeneratorActor
from liveenv.env import LiveStreamEnv
from liveenv.presets import make_config


def day_utilities(
    driver: GeneratorActor, judged: GeneratorActor, env: LiveStreamEnv, seed: int, steps: int
) -> dict[str, float]:
    """Mean expected reward of the driver's, the judged actor's and the oracle's room."""
    obs, _ = env.reset(seed=seed)
    drove, judge, best = [], [], []
    for _ in range(steps):
        util = env.oracle_utilities()
        with torch.no_grad():
            a = int(driver.slot_log_probs(driver.encode(obs))[0].argmax())
            b = int(judged.slot_log_probs(judged.encode(obs))[0].argmax())
        drove.append(util[a])
        judge.append(util[b])
        best.append(util.max())
        obs, *_ = env.step(a)
    gain = np.sort(np.asarray(judge) - np.asarray(drove))[::-1]
    return {
        "seed": seed,
        "driver": float(np.mean(drove)),
        "judged": float(np.mean(judge)),
        "oracle": float(np.mean(best)),
        "judged_normalised": float(np.mean(judge) / np.mean(best)),
        "share_gaining": float(np.mean(gain > 0)),
        "top50_share_of_gain": float(gain[:50].sum() / max(gain.sum(), 1e-9)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--driver", required=True, help="generator checkpoint that serves the days")
    ap.add_argument("--judged", required=True, help="generator checkpoint judged on its states")
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="days (reset seeds)")
    ap.add_argument("--steps", type=int, default=512, help="requests per day")
    ap.add_argument("--preset", default="default", help="world preset")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    driver, judged = (GeneratorActor.from_checkpoint(p) for p in (args.driver, args.judged))
    driver.model.eval()
    judged.model.eval()
    env = LiveStreamEnv(make_config(args.preset))
    for seed in args.seeds:
        row = day_utilities(driver, judged, env, seed, args.steps)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))


if __name__ == "__main__":
    main()
