"""Generate an interaction log of N simulated days with a behaviour policy.

    python -m agents.logs --out logs/random-1d --days 1 --policy random

runs one episode of ``days * 24`` simulated hours of a preset and writes every
impression through :class:`agents.logs.recorder.LogRecorder`.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from agents.logs.batch_behaviour import BATCH_BEHAVIOURS, batch_behaviour
from agents.logs.batched import BatchLogRecorder
from agents.logs.behaviour import PolicyFn, resolve_policy, split_action
from agents.logs.recorder import LogRecorder
from agents.progress import progress_bar
from liveenv.batched import BatchedLiveEnv
from liveenv.env import LiveStreamEnv
from liveenv.presets import make_config

StepHook = Callable[[Any, dict[str, Any]], None]
#: concurrent requests answered per call on the batched path
BATCH_SIZE = 4096


def make_log_env(
    preset: str = "default", days: float = 1.0, overrides: dict[str, Any] | None = None
) -> LiveStreamEnv:
    """The env of ``preset`` with an episode of ``days`` simulated days."""
    if days <= 0:
        raise ValueError(f"days={days} is invalid: must be > 0")
    cfg = make_config(preset, **(overrides or {})).replace(horizon_hours=24.0 * days)
    return LiveStreamEnv(cfg)


def run_policy(
    env: Any,
    policy: PolicyFn,
    seed: int,
    progress: bool = True,
    desc: str = "simulating",
    on_step: StepHook | None = None,
) -> int:
    """Run ``policy`` for one episode of ``env`` (a LogRecorder or any env
    taking ``step_with_propensity``); return the number of requests.
    ``on_step(env, info)`` is called after the reset and after every step."""
    obs, info = env.reset(seed=seed)
    t0, minutes = info["time_s"], int(round(env.unwrapped.config.horizon_hours * 60))
    bar = _sim_bar(minutes, desc, progress)
    steps, shown = 0, 0
    truncated = False
    if on_step is not None:
        on_step(env, info)
    while not truncated:
        action, prop = split_action(policy(obs, env))
        obs, _, _, truncated, info = env.step_with_propensity(action, prop)
        steps += 1
        if on_step is not None:
            on_step(env, info)
        if steps % 256 == 0 or truncated:
            done = min(int((info["time_s"] - t0) // 60), minutes)
            bar.update(done - shown)
            shown = done
            bar.set_postfix(requests=steps, refresh=False)
    bar.close()
    return steps


def generate_log(
    out_dir: str | os.PathLike[str],
    preset: str = "default",
    days: float = 1.0,
    policy: str | PolicyFn | Any = "random",
    seed: int = 0,
    chunk_rows: int = 65_536,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    append: bool = False,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Simulate ``days`` of ``preset`` under a behaviour policy and log it.

    ``policy`` is ``"random"``, ``"popular"``, ``"platform"`` (see
    :mod:`agents.logs.behaviour`), a callable ``(obs, env) -> action`` or
    ``-> (action, propensity)``, or an object with such an ``act`` method.
    ``overrides`` are dotted config fields (``{"users.n_users": 5000}``).

    The three named policies log on the batched path
    (:class:`liveenv.batched.BatchedLiveEnv`, ``batch_size`` concurrent requests of
    a 30-s tick per call, default 4096; see its docstring for what differs from one
    request at a time) with their batched versions
    (:mod:`agents.logs.batch_behaviour`); ``batch_size=1`` or any other policy logs
    one request at a time through :class:`LogRecorder`.
    Returns a summary: rows, requests, clicks, parts, seconds, impressions/s.
    """
    if batch_size is None:
        batch_size = BATCH_SIZE
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is invalid: must be >= 1")
    if isinstance(policy, str) and policy in BATCH_BEHAVIOURS and batch_size > 1:
        return _generate_batched(
            out_dir, preset, days, policy, seed, chunk_rows, overrides, progress, append, batch_size
        )
    fn, name = resolve_policy(policy, seed)
    env = LogRecorder(
        make_log_env(preset, days, overrides),
        out_dir,
        chunk_rows=chunk_rows,
        policy_name=name,
        append=append,
    )
    start = time.perf_counter()
    try:
        requests = run_policy(env, fn, seed, progress, desc=f"log {preset}/{name}")
    finally:
        env.close()
    return _summary(env, preset, name, days, seed, requests, time.perf_counter() - start)


def _generate_batched(
    out_dir: str | os.PathLike[str],
    preset: str,
    days: float,
    policy: str,
    seed: int,
    chunk_rows: int,
    overrides: dict[str, Any] | None,
    progress: bool,
    append: bool,
    batch_size: int,
) -> dict[str, Any]:
    """:func:`generate_log` on the batched path."""
    config = make_log_env(preset, days, overrides).config
    env = BatchedLiveEnv(config, batch_size=batch_size)
    rec = BatchLogRecorder(env, out_dir, chunk_rows=chunk_rows, policy_name=policy, append=append)
    act, k = batch_behaviour(policy, seed), int(config.slate_size)
    minutes = int(round(config.horizon_hours * 60))
    bar = _sim_bar(minutes, f"log {preset}/{policy}", progress)
    start, requests, shown = time.perf_counter(), 0, 0
    try:
        obs, info = rec.reset(seed=seed)
        t0, truncated = float(info["time_s"][0]), False
        while not truncated:
            slots, props = act(obs, env.world.n_live, k)
            requests += len(slots)
            obs, _, truncated, info = rec.step(slots if k > 1 else slots[:, 0], props)
            done = min(int((float(info["time_s"][0]) - t0) // 60), minutes)
            bar.update(done - shown)
            shown = done
    finally:
        rec.close()
        bar.close()
    seconds = time.perf_counter() - start
    return {
        **_summary(rec, preset, policy, days, seed, requests, seconds),
        "batch_size": batch_size,
    }


def _sim_bar(minutes: int, desc: str, progress: bool) -> Any:
    """A progress bar over simulated minutes."""
    return progress_bar(
        total=minutes,
        unit="sim-min",
        desc=desc,
        leave=False,
        enabled=progress,
        mininterval=1.0,
    )


def _summary(
    rec: Any, preset: str, policy: str, days: float, seed: int, requests: int, seconds: float
) -> dict[str, Any]:
    """What :func:`generate_log` returns, from the recorder that wrote the log."""
    return {
        "out_dir": str(rec.out_dir),
        "preset": preset,
        "policy": policy,
        "days": days,
        "seed": seed,
        "requests": requests,
        "rows": rec.rows_written,
        "parts": len(rec.parts_written),
        "seconds": seconds,
        "impressions_per_s": rec.rows_written / max(seconds, 1e-9),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="log directory (must hold no parts yet)")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--policy", default="random", choices=["random", "popular", "platform"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-rows", type=int, default=65_536)
    ap.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help="concurrent requests per call on the batched path (1: one request at a time)",
    )
    args = ap.parse_args(argv)
    summary = generate_log(
        args.out,
        args.preset,
        args.days,
        args.policy,
        args.seed,
        args.chunk_rows,
        batch_size=args.batch_size,
    )
    for key, value in summary.items():
        print(f"{key:>18}: {value:.6g}" if isinstance(value, float) else f"{key:>18}: {value}")
    return summary


if __name__ == "__main__":
    main()
