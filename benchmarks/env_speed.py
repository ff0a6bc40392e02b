"""Environment speed: steps/s of the single env (random valid actions) beside
CartPole-v1 in the same run, and requests/s of the native batched path.

    python benchmarks/env_speed.py [--steps 20000] [--preset default]
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np

import liveenv  # noqa: F401  (registers the ids)
from liveenv.batched import BatchedLiveEnv
from liveenv.presets import ENV_IDS


def single_env(env_id: str, steps: int, masked: bool) -> tuple[float, float]:
    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    live = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        if masked:
            mask = env.unwrapped.action_masks()
            live += mask.sum()
            action = int(rng.integers(int(mask.sum())))  # live slots are 0..n_live-1
        else:
            action = env.action_space.sample()
        _, _, term, trunc, _ = env.step(action)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - start), live / steps


def batched(preset: str, requests: int, batch_size: int) -> tuple[float, float]:
    env = BatchedLiveEnv(preset, batch_size=batch_size, horizon_hours=24.0 * 30)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    n, batches = 0, 0
    start = time.perf_counter()
    while n < requests:
        b = len(obs["user"])
        obs, _, _, _ = env.step(rng.integers(0, env.world.n_live, b))
        n, batches = n + b, batches + 1
    return n / (time.perf_counter() - start), n / batches


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--preset", default="default")
    p.add_argument("--batch-size", type=int, default=4096)
    args = p.parse_args()
    env_id = ENV_IDS[args.preset]
    cart, _ = single_env("CartPole-v1", args.steps * 5, masked=False)
    ours, live = single_env(env_id, args.steps, masked=True)
    fast, mean_batch = batched(args.preset, args.steps * 10, args.batch_size)
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(f"CartPole-v1 (gym.make)      : {cart:12,.0f} steps/s")
    print(f"{env_id:<28}: {ours:12,.0f} steps/s  ({live:.0f} live rooms on average)")
    print(f"ratio liveenv / CartPole    : {ours / cart:12.3f}")
    print(
        f"batched path ({args.preset})     : {fast:12,.0f} requests/s  (mean batch {mean_batch:.0f})"
    )
    print(f"ratio batched / single      : {fast / ours:12.2f}")


if __name__ == "__main__":
    main()
