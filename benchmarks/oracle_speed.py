"""The oracle's expected feedback: the numba kernel against the numpy reference,
in the same run.

    python benchmarks/oracle_speed.py [--preset default] [--calls 200] [--days 4] [--requests 500]

1. Per call: the env's live requests one after another (the oracle choosing);
   each request's expected feedback of every live room through the reference
   (the numpy loop) and the kernel, timed alternately; mean milliseconds per
   call, the ratio, the largest utility difference and the share of requests
   where both pick the same room.
2. End to end: :func:`agents.evaluate.online.evaluate` of oracle + popular +
   random with ``expected=True`` over ``--days`` unseen days (seeds 100+) x
   ``--requests`` requests, once on the old path (the ``"reference"`` backend,
   the numpy loop over every live room at every call, so the oracle's request is
   computed twice) and once on today's (the kernel, computed once per request and
   cached; the expected-return recorder asks for the chosen room only); wall
   times, the ratio, whether the oracle made the same choices, and the largest
   difference of the per-day expected returns.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from liveenv import OBJECTIVES, LiveStreamEnv, make_config
from liveenv.oracle import expected_feedback_kernel, use_backend
from liveenv.reference import expected_feedback_reference


def per_call(preset: str, calls: int, seed: int) -> None:
    cfg = make_config(preset)
    env = LiveStreamEnv(cfg)
    env.reset(seed=seed)
    w = env.world
    slots = w.table_slots
    expected_feedback_kernel(w.impressions(np.zeros(1, np.int64), np.zeros(1), slots[:1]), cfg)
    t_ref, t_ker, diff, same, n_live = 0.0, 0.0, 0.0, 0, []
    for _ in range(calls):
        slots = w.table_slots
        n = len(slots)
        imp = w.impressions(np.full(n, env._user_id), np.full(n, env._now), slots)
        t0 = time.perf_counter()
        ref = expected_feedback_reference(imp, cfg) @ env.weights
        t1 = time.perf_counter()
        ker = expected_feedback_kernel(imp, cfg) @ env.weights
        t2 = time.perf_counter()
        t_ref, t_ker = t_ref + t1 - t0, t_ker + t2 - t1
        diff = max(diff, float(np.max(np.abs(ker - ref))))
        same += int(np.argmax(ker) == np.argmax(ref))
        n_live.append(n)
        env.step(int(np.argmax(ker)))
    ms_ref, ms_ker = 1e3 * t_ref / calls, 1e3 * t_ker / calls
    print(
        f"per call ({preset}, {calls} requests, {np.mean(n_live):.0f} live rooms on average): "
        f"reference {ms_ref:.3f} ms, kernel {ms_ker:.3f} ms, speed-up x{ms_ref / ms_ker:.1f}; "
        f"same choice {same}/{calls}; max |utility difference| {diff:.2e}"
    )


class _FullTableEnv(LiveStreamEnv):
    """The evaluation's env before the kernel: the recorder's
    ``oracle_expected_feedback([action])`` computes every live room and keeps one
    (the old call site, ``oracle_expected_feedback()[action]``)."""

    def oracle_expected_feedback(self, slots: Any = None) -> Any:
        table = super().oracle_expected_feedback()
        return table if slots is None else table[np.asarray(slots)]


def end_to_end(preset: str, days: int, requests: int) -> None:
    import agents.evaluate.episodes as episodes
    from agents.evaluate.online import evaluate
    from policies.baselines import PopularPolicy

    seeds = tuple(range(100, 100 + days))
    walls, results = {}, {}
    strict = episodes.evaluation_env
    for name in ("reference", "kernel"):
        if name == "reference":  # the old path: numpy loop, every room, no cache
            episodes.evaluation_env = lambda cfg: _FullTableEnv(cfg.replace(masked_action="raise"))
        with use_backend(name):
            t0 = time.perf_counter()
            res = evaluate(
                {"popular": PopularPolicy()},
                preset,
                seeds=seeds,
                steps_per_seed=requests,
                progress=False,
                expected=True,
            )
            walls[name], results[name] = time.perf_counter() - t0, res
        episodes.evaluation_env = strict
    ref, ker = (results[k].impressions for k in ("reference", "kernel"))
    oracle = (ref["policy"] == results["reference"].references["oracle"]).to_numpy()
    cols = ["weighted_return", *OBJECTIVES, "streamer_cohort", "phase"]
    same_choices = (
        ref.loc[oracle, cols]
        .reset_index(drop=True)
        .equals(ker.loc[oracle, cols].reset_index(drop=True))
    )
    tables = {k: r.table[r.table["breakdown"] == "all"] for k, r in results.items()}
    gap = np.max(
        np.abs(
            tables["reference"]["expected_return"].to_numpy()
            - tables["kernel"]["expected_return"].to_numpy()
        )
    )
    per_imp = np.max(np.abs(ref["expected_return"].to_numpy() - ker["expected_return"].to_numpy()))
    print(
        f"end to end ({preset}, {days} days x {requests} requests, oracle + popular + random, "
        f"expected returns): reference {walls['reference']:.1f} s, kernel {walls['kernel']:.1f} s, "
        f"speed-up x{walls['reference'] / walls['kernel']:.1f}"
    )
    print(
        f"  oracle's trajectories identical: {same_choices}; max |difference| of per-day "
        f"expected return {gap:.2e} (per impression {per_imp:.2e})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--calls", type=int, default=200, help="requests timed per call")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--days", type=int, default=4, help="unseen days (seeds 100+); 0: skip")
    ap.add_argument("--requests", type=int, default=500, help="requests per day")
    args = ap.parse_args()
    per_call(args.preset, args.calls, args.seed)
    if args.days:
        end_to_end(args.preset, args.days, args.requests)


if __name__ == "__main__":
    main()
