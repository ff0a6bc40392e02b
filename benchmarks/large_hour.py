"""Peak memory and wall time of one simulated hour of the `large` preset
(1,000,000 users, 20,000 streamers) under random valid actions, batched path.

    python benchmarks/large_hour.py [--hours 1] [--start-hour 20] [--compare]

``--users-factor F`` multiplies the users and divides their visits per day by
``F`` (the same requests from a larger, idler population); ``--streamers-factor
F`` does the same for streamers and their broadcasts per day (the same live
rooms, more offline creators). ``--compare`` runs the plain preset, then 2x
users and 2x streamers, each in its own process (so that peak RSS is each
run's own), and prints the cost per request of each: the cost should follow
the requests, not the idle population.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np

from liveenv.batched import BatchedLiveEnv
from liveenv.presets import make_config


def run(
    hours: float, start_hour: float, users_factor: float, streamers_factor: float
) -> dict[str, float]:
    base = make_config("large")
    u, s = base.users, base.streamers
    cfg = base.replace(
        **{
            "horizon_hours": hours,
            "start_hour": start_hour,
            "users.n_users": int(u.n_users * users_factor),
            "users.visits_per_day": u.visits_per_day / users_factor,
            "users.new_users_per_day": u.new_users_per_day * users_factor,
            "streamers.n_streamers": int(s.n_streamers * streamers_factor),
            "streamers.broadcasts_per_day": s.broadcasts_per_day / streamers_factor,
            "streamers.new_streamers_per_day": s.new_streamers_per_day * streamers_factor,
        }
    )
    t0, c0 = time.perf_counter(), time.process_time()
    env = BatchedLiveEnv(cfg, batch_size=8192)
    obs, _ = env.reset(seed=0)
    build, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    rng = np.random.default_rng(0)
    n, live = 0, []
    while True:
        b = len(obs["user"])
        live.append(env.world.n_live)
        obs, _, truncated, _ = env.step(rng.integers(0, env.world.n_live, b))
        n += b
        if truncated:
            break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "users": cfg.users.n_users,
        "streamers": cfg.streamers.n_streamers,
        "hours": hours,
        "start_hour": start_hour,
        "build_s": build,
        "wall_s": wall,
        "cpu_s": cpu,
        "requests": n,
        "req_per_s": n / (wall - build),
        "req_per_cpu_s": n / (cpu - build_cpu),
        "table_rooms": float(np.mean(live)),
        "live_rooms": len(env.world.rooms.live_slots()),
        "state_mib": env.world.nbytes() / 2**20,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def report(r: dict[str, float]) -> None:
    print(f"large preset: {r['users']:,} users, {r['streamers']:,} streamers")
    print(f"build + reset       : {r['build_s']:8.1f} s")
    print(f"simulated hours     : {r['hours']:g} from {r['start_hour']:g}:00")
    print(
        f"requests served     : {r['requests']:,} ({r['req_per_s']:,.0f} requests/s, "
        f"CPU {r['req_per_cpu_s']:,.0f})"
    )
    print(f"live rooms in table : {r['table_rooms']:.0f} (of {r['live_rooms']} live)")
    print(f"world state         : {r['state_mib']:,.0f} MiB")
    print(f"wall time           : {r['wall_s']:8.1f} s")
    print(f"peak RSS            : {r['peak_rss_mib']:8,.0f} MiB")


def compare(args: argparse.Namespace) -> None:
    rows = []
    for uf, sf in ((1, 1), (2, 1), (1, 2)):
        cmd = [
            sys.executable,
            __file__,
            "--json",
            "--hours",
            str(args.hours),
            "--start-hour",
            str(args.start_hour),
            "--users-factor",
            str(uf),
            "--streamers-factor",
            str(sf),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append((uf, sf, json.loads(out.strip().splitlines()[-1])))
    print(
        "| users | streamers | live rooms | requests | req/s | CPU us/request | build s | "
        "state MiB | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for _, _, r in rows:
        per = 1e6 / r["req_per_cpu_s"]  # after the build
        print(
            f"| {r['users']:,} | {r['streamers']:,} | {r['live_rooms']:,} | {r['requests']:,} | "
            f"{r['req_per_s']:,.0f} | {per:.1f} | {r['build_s']:.1f} | {r['state_mib']:,.0f} | "
            f"{r['peak_rss_mib']:,.0f} |"
        )
    print(f"load average {os.getloadavg()[0]:.1f}; req/s and CPU us/request after the build")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--start-hour", type=float, default=20.0, help="evening = the busiest hour")
    p.add_argument("--users-factor", type=float, default=1.0)
    p.add_argument("--streamers-factor", type=float, default=1.0)
    p.add_argument("--compare", action="store_true", help="1x, 2x users, 2x streamers")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = p.parse_args(argv)
    if args.compare:
        compare(args)
        return
    r = run(args.hours, args.start_hour, args.users_factor, args.streamers_factor)
    print(json.dumps(r)) if args.json else report(r)


if __name__ == "__main__":
    main()
