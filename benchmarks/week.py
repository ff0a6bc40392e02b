"""Is a week of days stationary? Expected reward per impression by day (issue #19).

    python benchmarks/week.py [--days 7] [--seeds 100 101] [--users 1000]
                              [--policies oracle random popular] [--overrides KEY=VALUE ...]

One episode of ``--days`` days of the default world per seed and policy, on
the batched path (the world's own requests, whole-tick batches). Policies:

* ``oracle``: greedy on the true expected reward of every live room
  (:meth:`liveenv.world.World.expected_feedback`, what ``OraclePolicy`` reads);
* ``random``: a uniform live room;
* ``popular``: the room with the most viewers now (the ``log_viewers`` column).

Per request it records the *expected* reward of the room shown (the true
expected feedback of that room for that request, weighted), which keeps the
response's sampling noise (heavy-tailed gifts) out of the comparison. The
figure of a day is the mean over its requests; its 95 % interval comes from
hour blocks (the mean of each (seed, hour) block is one observation). The
population is cut to ``--users`` (per-impression behaviour does not depend on
the population size, and the oracle costs a few ms per request); streamers,
rooms and everything else are the default world's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence

import numpy as np

from liveenv.config import EnvConfig
from liveenv.presets import make_config
from liveenv.response import expected_feedback
from liveenv.rhythm import DAY_S
from liveenv.world import World

Chooser = Callable[
    [World, np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]
]


def oracle(w: World, users: np.ndarray, times: np.ndarray, rng: np.random.Generator):
    """Rows of the best expected reward, and that reward."""
    weights = w.cfg.weight_vector
    util = [
        w.expected_feedback(int(u), float(t)) @ weights for u, t in zip(users, times, strict=True)
    ]
    rows = np.array([int(np.argmax(x)) for x in util])
    return rows, np.array([x[r] for x, r in zip(util, rows, strict=True)])


def random_room(w: World, users: np.ndarray, times: np.ndarray, rng: np.random.Generator):
    rows = rng.integers(0, w.n_live, len(users))
    return rows, _expected_of(w, users, times, rows)


def popular(w: World, users: np.ndarray, times: np.ndarray, rng: np.random.Generator):
    viewers = w.table[: w.n_live, 2 * w.cfg.obs_dim]
    rows = np.full(len(users), int(np.argmax(viewers)))
    return rows, _expected_of(w, users, times, rows)


def _expected_of(w: World, users: np.ndarray, times: np.ndarray, rows: np.ndarray) -> np.ndarray:
    imp = w.impressions(users, times, w.table_slots[rows])
    return expected_feedback(imp, w.cfg) @ w.cfg.weight_vector


POLICIES: dict[str, Chooser] = {"oracle": oracle, "random": random_room, "popular": popular}


def episode(cfg: EnvConfig, seed: int, choose: Chooser, days: int) -> np.ndarray:
    """``(n, 2)`` rows of (hours since the start, expected reward) per request."""
    w = World(cfg, np.random.default_rng(seed), batched=True)
    rng = np.random.default_rng(seed + 1)
    end, out = w.t0 + days * DAY_S, []
    while True:
        users, times = w.next_requests(4096)
        if times[0] >= end:
            break
        if w.n_live == 0:
            w.end_sessions(users)
            continue
        rows, value = choose(w, users, times, rng)
        w.serve(users, times, rows[:, None])
        out.append(np.stack([(times - w.t0) / 3600.0, value], axis=1))
    return np.concatenate(out)


def by_day(records: list[np.ndarray], days: int) -> list[tuple[float, float, float, int]]:
    """Per day: mean, 95 % interval (hour blocks of every seed), requests."""
    rows = []
    for d in range(days):
        blocks, values = [], []
        for rec in records:
            hour = rec[:, 0].astype(int)
            sel = (hour >= 24 * d) & (hour < 24 * (d + 1))
            values.append(rec[sel, 1])
            for h in np.unique(hour[sel]):
                blocks.append(rec[hour == h, 1].mean())
        v, b = np.concatenate(values), np.array(blocks)
        half = 1.96 * b.std(ddof=1) / np.sqrt(len(b)) if len(b) > 1 else np.nan
        rows.append((float(v.mean()), float(v.mean() - half), float(v.mean() + half), len(v)))
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, list]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    ap.add_argument(
        "--overrides",
        nargs="*",
        default=["users.past_days=2"],
        metavar="KEY=VALUE",
        help="config overrides (default: a world with two days of past)",
    )
    args = ap.parse_args(argv)
    over = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    scale = args.users / 20_000
    cfg = make_config(
        "default", **{"users.n_users": args.users, "users.new_users_per_day": 400.0 * scale, **over}
    )
    print(f"default world, {args.users} users, {over or ''} seeds {args.seeds}, {args.days} days")
    result = {}
    for name in args.policies:
        t = time.perf_counter()
        recs = [episode(cfg, s, POLICIES[name], args.days) for s in args.seeds]
        result[name] = by_day(recs, args.days)
        print(f"\n{name} ({time.perf_counter() - t:.0f} s): expected reward per impression by day")
        for d, (m, lo, hi, n) in enumerate(result[name]):
            print(f"  day {d + 1}: {m:.3f} [{lo:.3f}, {hi:.3f}]  ({n} requests)")
    return result


if __name__ == "__main__":
    main()
