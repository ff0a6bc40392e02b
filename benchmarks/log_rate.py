"""Log generation rate: impressions per second written to Parquet by
``generate_log`` (what ``liveenv log`` runs) on its default batched path and one
request at a time (``batch_size=1``, through :class:`agents.logs.LogRecorder`,
the path before the batched one), their ratio measured in the same run; beside
them the single-path episode without recording (the recorder's own cost) and
the raw batched recorder with uniform random rooms.

    python benchmarks/log_rate.py [--hours 24] [--preset default] [--policy platform]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from agents.logs import generate_log, make_log_env, resolve_policy
from agents.logs.batched import BatchLogRecorder
from agents.logs.behaviour import split_action
from liveenv.batched import BatchedLiveEnv


def bare_rate(preset: str, hours: float, policy: str, seed: int) -> tuple[int, float, float]:
    """Requests, wall and CPU seconds of the same episode without a recorder."""
    env = make_log_env(preset, hours / 24.0)
    fn, _ = resolve_policy(policy, seed)
    obs, _ = env.reset(seed=seed)
    wall, cpu, n = time.perf_counter(), time.process_time(), 0
    while True:
        action, _ = split_action(fn(obs, env))
        obs, _, _, truncated, _ = env.step(action)
        n += 1
        if truncated:
            return n, time.perf_counter() - wall, time.process_time() - cpu


def batched_rate(preset: str, hours: float, seed: int, out: str) -> tuple[int, float, float, int]:
    """Rows, wall and CPU seconds, parts of a random-policy log through the batched path."""
    env = BatchedLiveEnv(preset, batch_size=4096, horizon_hours=hours)
    rec = BatchLogRecorder(env, out, policy_name="random")
    rng = np.random.default_rng(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    obs, _ = rec.reset(seed=seed)
    while True:
        b, n_live = len(obs["user"]), env.world.n_live
        obs, _, truncated, _ = rec.step(rng.integers(0, n_live, b), 1.0 / n_live)
        if truncated:
            break
    rec.close()
    return (
        rec.rows_written,
        time.perf_counter() - wall,
        time.process_time() - cpu,
        len(rec.parts_written),
    )


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours (from 00:00)")
    p.add_argument("--preset", default="default")
    p.add_argument("--policy", default="platform", choices=["random", "popular", "platform"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="liveenv-lograte-") as tmp:
        fast = generate_log(
            tmp, args.preset, args.hours / 24.0, args.policy, args.seed, progress=False
        )
    with tempfile.TemporaryDirectory(prefix="liveenv-lograte-") as tmp:
        cpu = time.process_time()
        summary = generate_log(
            tmp,
            args.preset,
            args.hours / 24.0,
            args.policy,
            args.seed,
            progress=False,
            batch_size=1,
        )
        cpu = time.process_time() - cpu
        size = sum(f.stat().st_size for f in os.scandir(tmp) if f.is_file())
    n, wall0, cpu0 = bare_rate(args.preset, args.hours, args.policy, args.seed)
    with tempfile.TemporaryDirectory(prefix="liveenv-lograte-") as tmp:
        rows_b, wall_b, cpu_b, parts_b = batched_rate(args.preset, args.hours, args.seed, tmp)
    rows, seconds = summary["rows"], summary["seconds"]
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, numpy {np.__version__}, load average {load[0]:.1f}"
    )
    print(
        f"{args.preset}, {args.hours:g} h, policy {args.policy}: {rows:,} impressions in "
        f"{summary['parts']} part(s), {size / 2**20:.1f} MiB on disk"
    )
    print(
        f"liveenv log, batched ({fast['batch_size']}): {fast['impressions_per_s']:>10,.0f} "
        f"impressions/s, {fast['rows']:,} rows"
    )
    print(
        f"liveenv log, one at a time: {rows / seconds:>10,.0f} impressions/s "
        f"(CPU {rows / cpu:>10,.0f})"
    )
    print(f"ratio batched / one at a time: x{fast['impressions_per_s'] / (rows / seconds):.2f}")
    print(f"no log  : {n / wall0:>10,.0f} impressions/s  (CPU {n / cpu0:>10,.0f})")
    print(f"recorder: {1e6 * (cpu / rows - cpu0 / n):.1f} CPU us per impression")
    print(
        f"batched : {rows_b / wall_b:>10,.0f} impressions/s  (CPU {rows_b / cpu_b:>10,.0f}), "
        f"{rows_b:,} rows in {parts_b} part(s), random live rooms"
    )
    return {
        "rows": rows,
        "seconds": seconds,
        "per_s": rows / seconds,
        "bare_per_s": n / wall0,
        "log_per_s": fast["impressions_per_s"],
        "batched_per_s": rows_b / wall_b,
    }


if __name__ == "__main__":
    main()
