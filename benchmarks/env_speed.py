"""Environment speed: steps/s of the single env (random valid actions) beside
CartPole-v1 in the same run, the floor of a Gymnasium step with this
observation, and requests/s of the native batched path.

    python benchmarks/env_speed.py [--steps 20000] [--preset default] [--hours 24]

Figures (wall clock and process CPU time, so that a run on a loaded machine
can still be read):

* CartPole-v1 through ``gym.make``, ``5 * steps`` random steps;
* the floor: an env with liveenv's observation space whose ``step`` only
  returns fresh copies of a cached observation, through the same wrappers
  (what any env with this observation costs);
* ``liveenv/<Preset>-v0`` through ``gym.make``: the first ``steps`` requests
  from the preset's start hour, and every request of ``--hours`` simulated
  hours (a whole day by default: nights are quiet, evenings busy), with the
  mean number of live rooms in the table;
* the batched path (:class:`liveenv.batched.BatchedLiveEnv`, whole-tick
  batches) over the same ``--hours``, and over the busiest evening hour;
* the world alone: its 30-s clock (rooms, candidate table, arrivals) with
  nobody served, the floor under the batched path.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker

import liveenv  # noqa: F401  (registers the ids)
from liveenv.batched import BatchedLiveEnv
from liveenv.env import LiveStreamEnv
from liveenv.presets import ENV_IDS, make_config
from liveenv.world import World


@dataclass
class Speed:
    n: int
    wall_s: float
    cpu_s: float
    extra: float = float("nan")  # live rooms or mean batch

    @property
    def per_s(self) -> float:
        return self.n / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.n / self.cpu_s


def timed(fn: Callable[[], tuple[int, float]]) -> Speed:
    wall, cpu = time.perf_counter(), time.process_time()
    n, extra = fn()
    return Speed(n, time.perf_counter() - wall, time.process_time() - cpu, extra)


class CachedObsEnv(gym.Env):
    """The floor: liveenv's spaces, a ``step`` that only copies a cached observation."""

    def __init__(self, preset: str) -> None:
        src = LiveStreamEnv(preset)
        self.observation_space, self.action_space = src.observation_space, src.action_space
        self._obs, self._info = src.reset(seed=0)
        self._fb = np.zeros(6)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return {k: v.copy() for k, v in self._obs.items()}, dict(self._info)

    def step(self, action: Any):
        info = {"feedback": self._fb.copy(), **self._info}
        return {k: v.copy() for k, v in self._obs.items()}, 0.0, False, False, info


def cartpole(steps: int) -> Speed:
    env = gym.make("CartPole-v1")
    env.reset(seed=0)

    def run() -> tuple[int, float]:
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        return steps, float("nan")

    return timed(run)


def floor(preset: str, steps: int) -> Speed:
    env = OrderEnforcing(PassiveEnvChecker(CachedObsEnv(preset)))
    env.reset(seed=0)

    def run() -> tuple[int, float]:
        for _ in range(steps):
            env.step(0)
        return steps, float("nan")

    return timed(run)


def single_env(env_id: str, steps: int | None, hours: float | None) -> Speed:
    """Random valid actions for ``steps`` steps, or until ``hours`` have passed."""
    kwargs = {"horizon_hours": hours} if hours else {}
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def run() -> tuple[int, float]:
        n, live = 0, 0
        while steps is None or n < steps:
            mask = env.unwrapped.action_masks()
            n_live = int(mask.sum())
            live += n_live
            _, _, term, trunc, _ = env.step(int(rng.integers(n_live)))  # live slots: 0..n_live-1
            n += 1
            if term or trunc:
                if steps is None:
                    break
                env.reset()
        return n, live / max(n, 1)

    return timed(run)


def world_alone(preset: str, hours: float) -> Speed:
    """The world's own clock (rooms, table, arrivals) for ``hours``, nobody served:
    ``n`` ticks, ``extra`` the CPU seconds per simulated day."""
    world = World(make_config(preset), np.random.default_rng(0))
    world._start_sessions = lambda users, times: None  # visits start nowhere

    def run() -> tuple[int, float]:
        t0, n = world.sim.now, 0
        cpu = time.process_time()
        while world.sim.now < t0 + hours * 3600:
            world.sim.step()
            world.table_parts()  # built once a tick when a request needs it
            n += 1
        return n, (time.process_time() - cpu) * 24 / hours

    return timed(run)


def batched(preset: str, hours: float, start_hour: float | None, batch_size: int) -> Speed:
    kwargs: dict[str, Any] = {"horizon_hours": hours}
    if start_hour is not None:
        kwargs["start_hour"] = start_hour
    env = BatchedLiveEnv(preset, batch_size=batch_size, **kwargs)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)

    def run() -> tuple[int, float]:
        nonlocal obs
        n, batches = 0, 0
        while True:
            b = len(obs["user"])
            obs, _, truncated, _ = env.step(rng.integers(0, env.world.n_live, b))
            n, batches = n + b, batches + 1
            if truncated:
                return n, n / batches

    return timed(run)


def row(label: str, s: Speed, unit: str, extra: str = "") -> str:
    return f"{label:<40}: {s.per_s:>10,.0f} {unit}  (CPU {s.per_cpu_s:>10,.0f}){extra}"


def main(argv: Sequence[str] | None = None) -> dict[str, Speed]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20_000, help="single-env steps from the start")
    p.add_argument("--preset", default="default")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours of the long runs")
    p.add_argument("--evening", type=float, default=20.0, help="start hour of the busy hour")
    p.add_argument("--batch-size", type=int, default=4096)
    args = p.parse_args(argv)
    env_id = ENV_IDS[args.preset]
    out = {
        "cartpole": cartpole(args.steps * 5),
        "floor": floor(args.preset, args.steps * 2),
        "single_first": single_env(env_id, args.steps, None),
        "single_hours": single_env(env_id, None, args.hours),
        "batched_hours": batched(args.preset, args.hours, None, args.batch_size),
        "batched_evening": batched(args.preset, 1.0, args.evening, args.batch_size),
        "world_alone": world_alone(args.preset, args.hours),
    }
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, numpy {np.__version__}, load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    c, f = out["cartpole"], out["floor"]
    s1, sh = out["single_first"], out["single_hours"]
    bh, be = out["batched_hours"], out["batched_evening"]
    print(row("CartPole-v1 (gym.make)", c, "steps/s"))
    print(row("floor: cached obs, same wrappers", f, "steps/s"))
    print(
        row(
            f"{env_id}, first {s1.n:,} steps",
            s1,
            "steps/s",
            f"  {s1.extra:.0f} live rooms on average",
        )
    )
    print(
        row(
            f"{env_id}, {args.hours:g} h ({sh.n:,} steps)",
            sh,
            "steps/s",
            f"  {sh.extra:.0f} live rooms on average",
        )
    )
    print(
        f"{'ratio liveenv / CartPole':<40}: {sh.per_s / c.per_s:>10.3f}  "
        f"(CPU {sh.per_cpu_s / c.per_cpu_s:.3f}; first steps {s1.per_s / c.per_s:.3f})"
    )
    print(
        row(
            f"batched, {args.hours:g} h ({bh.n:,} req)", bh, "req/s", f"  mean batch {bh.extra:.0f}"
        )
    )
    print(
        row(
            f"batched, {args.evening:g}:00-{args.evening + 1:g}:00",
            be,
            "req/s",
            f"  mean batch {be.extra:.0f}",
        )
    )
    print(
        f"{'ratio batched / single (same hours)':<40}: {bh.per_s / sh.per_s:>10.2f}  "
        f"(CPU {bh.per_cpu_s / sh.per_cpu_s:.2f})"
    )
    w = out["world_alone"]
    print(
        f"{'world alone (no request), per tick':<40}: {1e6 * w.cpu_s / w.n:>10.0f} CPU us  "
        f"({w.extra:.2f} CPU s per simulated day; the batched path cannot beat "
        f"{bh.n / (w.extra * args.hours / 24):,.0f} req/s)"
    )
    return out


if __name__ == "__main__":
    main()
