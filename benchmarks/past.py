"""The world's past at reset (issue #19): who arrives with a history, what a reset costs,
and the loyalty figures of a simulated week beside KuaiLive's.

    python benchmarks/past.py [--preset default] [--seeds 100 101 102 103 104]
                              [--requests 1000] [--week-days 7] [--overrides KEY=VALUE ...]

* the first ``--requests`` requests of a day of ``liveenv/<Preset>-v0`` per seed
  (random valid actions): the share of returning (not new) users' requests that
  carry a non-empty history, and the share with a followed room live in the table;
* reset cost: the first reset (builds the world's past once per process), a
  reset with the cached past, a reset without a past (``users.past_days=0``),
  and simulating the first hour of the day (random actions), all wall clock;
* loyalty over ``--week-days`` simulated days on the batched path under the past
  platform's recommender (:func:`liveenv.past.platform_choice`): the share of
  users with a click who click again a streamer they clicked before, and the
  median user's top streamer's share of their watch time (users with >= 5 clicks).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np

from liveenv.env import LiveStreamEnv
from liveenv.past import platform_choice
from liveenv.presets import make_config
from liveenv.rhythm import DAY_S
from liveenv.world import World

KUAILIVE = {
    "history_share": None,
    "followed_share": None,
    "repeat_user_share": 0.27,
    "top_streamer_watch_share": 0.36,
}


def first_requests(env: LiveStreamEnv, seed: int, n: int) -> dict[str, float]:
    """History and followed-room shares of returning users' requests among the first ``n``."""
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    returning = history = followed = 0
    for _ in range(n):
        if info["user_cohort"] != "new":
            returning += 1
            history += bool(obs["history_mask"].any())
            followed += bool(obs["room_followed"].any())
        obs, _, _, _, info = env.step(int(rng.integers(env.world.n_live)))
    return {
        "returning": returning,
        "history_share": history / max(returning, 1),
        "followed_share": followed / max(returning, 1),
    }


def reset_costs(cfg, seed: int) -> dict[str, float]:
    """Wall seconds of a first reset (past built), a cached one, a blank one, and an hour."""
    out = {}
    env = LiveStreamEnv(cfg)
    t = time.perf_counter()
    env.reset(seed=seed)
    out["first_reset_s"] = time.perf_counter() - t
    t = time.perf_counter()
    env.reset(seed=seed + 1)
    out["reset_s"] = time.perf_counter() - t
    blank = LiveStreamEnv(cfg.replace(**{"users.past_days": 0}))
    t = time.perf_counter()
    blank.reset(seed=seed + 1)
    out["blank_reset_s"] = time.perf_counter() - t
    out["hour_s"], out["hour_requests"] = _one_hour(env, seed + 1)
    out["blank_hour_s"], _ = _one_hour(blank, seed + 1)
    return out


def _one_hour(env: LiveStreamEnv, seed: int) -> tuple[float, int]:
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    end, n = env.world.t0 + 3600.0, 0
    t = time.perf_counter()
    while env._now < end:
        env.step(int(rng.integers(env.world.n_live)))
        n += 1
    return time.perf_counter() - t, n


def loyalty(cfg, seed: int, days: float) -> dict[str, float]:
    """Repeat-visit share and the median user's top-streamer watch share over ``days``."""
    w = World(cfg, np.random.default_rng(seed), batched=True)
    rng = np.random.default_rng(seed + 1)
    end = w.t0 + days * DAY_S
    users_l, streamers_l, watch_l = [], [], []
    while True:
        users, times = w.next_requests(4096)
        if times[0] >= end:
            break
        if w.n_live == 0:
            w.end_sessions(users)
            continue
        rows = platform_choice(w, users, rng, cfg.users.past_sharpness)
        served = w.serve(users, times, rows[:, None])
        c = served.clicked_pos >= 0
        users_l.append(users[c])
        streamers_l.append(served.slate_streamers[c, 0])
        watch_l.append(served.watch_s[c])
    return _loyalty_figures(
        np.concatenate(users_l), np.concatenate(streamers_l), np.concatenate(watch_l)
    )


def _loyalty_figures(
    users: np.ndarray, streamers: np.ndarray, watch: np.ndarray
) -> dict[str, float]:
    pair = users.astype(np.int64) * (1 << 32) + streamers
    _, first = np.unique(pair, return_index=True)
    repeat = np.ones(len(pair), dtype=bool)
    repeat[first] = False  # clicks after the first on the same (user, streamer)
    n_users = len(np.unique(users))
    pairs, inv = np.unique(pair, return_inverse=True)
    pair_watch = np.bincount(inv, weights=watch)
    pair_user = pairs >> 32
    order = np.lexsort((-pair_watch, pair_user))
    top = np.zeros(len(pairs), dtype=bool)
    top[order[np.r_[True, pair_user[order][1:] != pair_user[order][:-1]]]] = True
    u_ids, u_inv = np.unique(pair_user, return_inverse=True)
    total = np.bincount(u_inv, weights=pair_watch)
    top_w = np.bincount(u_inv[top], weights=pair_watch[top], minlength=len(u_ids))
    clicks = np.bincount(np.searchsorted(u_ids, users), minlength=len(u_ids))
    enough = (clicks >= 5) & (total > 0)
    return {
        "repeat_user_share": len(np.unique(users[repeat])) / max(n_users, 1),
        "top_streamer_watch_share": float(np.median(top_w[enough] / total[enough])),
        "week_clicks": float(len(users)),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--week-days", type=float, default=7.0)
    ap.add_argument(
        "--overrides",
        nargs="*",
        default=["users.past_days=2"],
        metavar="KEY=VALUE",
        help="config overrides (default: a world with two days of past)",
    )
    args = ap.parse_args(argv)
    over = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    cfg = make_config(args.preset, **over)
    print(f"preset {args.preset} {over or ''}: past_days={cfg.users.past_days}")
    costs = reset_costs(cfg, args.seeds[0])
    env = LiveStreamEnv(cfg)
    per_seed = {s: first_requests(env, s, args.requests) for s in args.seeds}
    loyal = loyalty(cfg, args.seeds[0], args.week_days) if args.week_days > 0 else {}
    print(f"\nfirst {args.requests} requests of a day, returning users' requests:")
    print(f"{'seed':>6} {'returning':>10} {'history':>9} {'followed room live':>19}")
    for s, r in per_seed.items():
        print(
            f"{s:>6} {r['returning']:>10} {r['history_share']:>9.1%} {r['followed_share']:>19.1%}"
        )
    hist = np.array([r["history_share"] for r in per_seed.values()])
    fol = np.array([r["followed_share"] for r in per_seed.values()])
    print(f"{'mean':>6} {'':>10} {hist.mean():>9.1%} {fol.mean():>19.1%}")
    print("\nreset cost (wall s):")
    for k, v in costs.items():
        print(f"  {k:>16}: {v:.3f}")
    print(
        f"  reset / hour     : {costs['reset_s'] / costs['hour_s']:.2f} (past), "
        f"{costs['blank_reset_s'] / costs['blank_hour_s']:.2f} (blank)"
    )
    if loyal:
        print(f"\n{'figure':<48} {'simulated':>10} {'KuaiLive':>9}")
        rows = (
            ("returning requests with a history (first 1,000)", hist.mean(), "-"),
            ("returning requests with a followed room live", fol.mean(), "-"),
            (
                f"users back to a streamer clicked before ({args.week_days:g} d)",
                loyal["repeat_user_share"],
                "~27 %",
            ),
            (
                "median user's top streamer's share of watch time",
                loyal["top_streamer_watch_share"],
                "~36 %",
            ),
        )
        for label, value, real in rows:
            print(f"{label:<48} {value:>10.1%} {real:>9}")
    return {"per_seed": per_seed, "costs": costs, "loyalty": loyal}


if __name__ == "__main__":
    main()
