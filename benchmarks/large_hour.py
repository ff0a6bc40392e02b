"""Peak memory and wall time of one simulated hour of the `large` preset
(1,000,000 users, 20,000 streamers) under random valid actions, batched path.

    python benchmarks/large_hour.py [--hours 1] [--start-hour 20]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from liveenv.batched import BatchedLiveEnv
from liveenv.presets import make_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--start-hour", type=float, default=20.0, help="evening = the busiest hour")
    args = p.parse_args()
    cfg = make_config("large", horizon_hours=args.hours, start_hour=args.start_hour)
    t0 = time.perf_counter()
    env = BatchedLiveEnv(cfg, batch_size=8192)
    obs, _ = env.reset(seed=0)
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    n, live = 0, []
    while True:
        b = len(obs["user"])
        live.append(env.world.n_live)
        obs, _, truncated, _ = env.step(rng.integers(0, env.world.n_live, b))
        n += b
        if truncated:
            break
    wall = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"large preset: {cfg.users.n_users:,} users, {cfg.streamers.n_streamers:,} streamers")
    print(f"build + reset       : {build:8.1f} s")
    print(f"simulated hours     : {args.hours:g} from {args.start_hour:g}:00")
    print(f"requests served     : {n:,} ({n / (wall - build):,.0f} requests/s)")
    print(
        f"live rooms in table : {np.mean(live):.0f} (of {len(env.world.rooms.live_slots())} live)"
    )
    print(f"world state         : {env.world.nbytes() / 2**20:,.0f} MiB")
    print(f"wall time           : {wall:8.1f} s")
    print(f"peak RSS            : {peak_mib:8,.0f} MiB")


if __name__ == "__main__":
    main()
