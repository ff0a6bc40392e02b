"""A whole simulated day on the batched path, and where its time goes.

    python benchmarks/batched_day.py [--preset default] [--hours 24] [--start-hour 0] [--repeats 3]
        [--batch-size 4096] [--cartpole-steps 100000] [--backend both|kernel|reference]

Serves every request of ``--hours`` simulated hours (a whole ``default`` day by
default) with :class:`liveenv.batched.BatchedLiveEnv` (whole-tick batches of up
to ``--batch-size``) under a cheap policy (a uniform random live room per
request, one ``Generator.integers`` call per batch), and prints, per repeat:

* requests/s (wall clock and process CPU) of the plain run, and the ratio to
  CartPole-v1 steps/s through ``gym.make`` measured just before it (the
  project's reference: absolute rates move with the machine's load; on a
  shared machine the CPU figures are the steadier ones);
* a breakdown of one more run with timers around the parts (exclusive CPU time,
  so nested parts are not counted twice): the policy, the observation
  (history, user features, followed mask, time features), the tick's room
  table, serving (the response draws of :mod:`liveenv.response` and the lasting
  effects on users and sessions), the request queue, the 30-s tick (the room
  simulation in 30-min blocks, switching rooms on and off, arrivals, growth)
  and SimPy's own stepping, and the rest of ``BatchedLiveEnv.step``;
* the world alone (its 30-s clock with nobody served), the floor of the path.

``--backend`` picks the batched path's backend (:mod:`liveenv.serve_kernel`):
the numba kernel, the plain numpy reference (the path before the kernel), or
both in one run (the default: each repeat serves a day under each, and their
ratio is taken repeat by repeat).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

import liveenv.world as world_module
from liveenv import serve_kernel
from liveenv.batched import BatchedLiveEnv
from liveenv.presets import make_config
from liveenv.world import World


@dataclass
class Run:
    """One served day: requests, batches, wall and CPU seconds."""

    n: int
    batches: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.n / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.n / self.cpu_s


@dataclass
class Sections:
    """Exclusive CPU seconds per labelled part (a stack of open timers; process CPU
    time, so that other jobs on the machine do not land in the parts)."""

    total: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _stack: list[list[float]] = field(default_factory=list)  # [start, child seconds]

    @contextmanager
    def part(self, label: str) -> Iterator[None]:
        self._stack.append([time.process_time(), 0.0])
        try:
            yield
        finally:
            start, child = self._stack.pop()
            spent = time.process_time() - start
            self.total[label] = self.total.get(label, 0.0) + spent - child
            self.calls[label] = self.calls.get(label, 0) + 1
            if self._stack:
                self._stack[-1][1] += spent

    def wrap(self, obj: Any, name: str, label: str) -> None:
        """Time every call of ``obj.name`` under ``label`` (an instance attribute)."""
        fn = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.part(label):
                return fn(*args, **kwargs)

        setattr(obj, name, timed)


def cartpole(steps: int) -> Run:
    """CartPole-v1 through ``gym.make`` (random actions): the reference."""
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    return Run(steps, 1, time.perf_counter() - wall, time.process_time() - cpu)


def serve_day(
    env: BatchedLiveEnv, seed: int, sections: Sections | None = None
) -> tuple[Run, dict[str, float]]:
    """Reset (not timed) and serve until truncation with uniform random live rooms."""
    obs, _ = env.reset(seed=seed)
    if sections is not None:
        instrument(env.world, sections)
    rng = np.random.default_rng(seed)
    part = sections.part if sections is not None else _no_part
    n = batches = 0
    wall, cpu = time.perf_counter(), time.process_time()
    with part("step: the rest"):
        while True:
            b = len(obs["user"])
            with part("policy"):
                actions = rng.integers(0, env.world.n_live, b)  # (B,)
            obs, _, truncated, _ = env.step(actions)
            n, batches = n + b, batches + 1
            if truncated:
                break
    run = Run(n, batches, time.perf_counter() - wall, time.process_time() - cpu)
    return run, dict(sections.total) if sections is not None else {}


@contextmanager
def _no_part(label: str) -> Iterator[None]:
    yield


def instrument(w: World, s: Sections) -> None:
    """Timers around the world's parts (instance attributes, so only ``w`` is timed)."""
    s.wrap(w, "_on_tick", "tick: SimPy step, table choice")
    s.wrap(w.rooms, "prepare_block", "tick: room simulation (30-min blocks)")
    s.wrap(w.rooms, "enter_tick", "tick: rooms on/off")
    s.wrap(w, "_arrivals", "tick: arrivals")
    s.wrap(w, "_grow", "tick: growth")
    s.wrap(w, "_advance_to_next_request", "tick: SimPy step, table choice")
    s.wrap(w.queue, "pop_before", "queue: take the batch")
    s.wrap(w.queue, "push_many", "queue: push")
    s.wrap(w, "table_parts", "observe: room table")
    s.wrap(w, "observe", "observe: the rest")
    s.wrap(w.history, "gather", "observe: history")
    s.wrap(w, "user_features", "observe: user features")
    s.wrap(w, "followed_mask", "observe: followed mask")
    s.wrap(w, "serve", "serve: the rest (slots, info)")
    s.wrap(w, "impressions", "serve: impressions")
    s.wrap(w, "_apply", "serve: apply (users, history, sessions)")
    s.wrap(w.history, "append", "serve: history append")
    s.wrap(w, "end_sessions", "serve: end sessions")


def world_alone(preset: str, hours: float, start_hour: float, seed: int) -> float:
    """CPU seconds of the world's 30-s clock over ``hours`` with nobody served."""
    world = World(make_config(preset, start_hour=start_hour), np.random.default_rng(seed))
    world._start_sessions = lambda users, times: None  # visits start nowhere
    t0 = world.sim.now
    t = time.process_time()
    while world.sim.now < t0 + hours * 3600:
        world.sim.step()
        world.table_parts()  # built once a tick when a request needs it
    return time.process_time() - t


@contextmanager
def patched(module: Any, name: str, label: str, s: Sections) -> Iterator[None]:
    """Time ``module.name`` (a function the world calls through its module) under ``label``."""
    fn = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with s.part(label):
            return fn(*args, **kwargs)

    setattr(module, name, timed)
    try:
        yield
    finally:
        setattr(module, name, fn)


def breakdown(env: BatchedLiveEnv, seed: int) -> tuple[Run, dict[str, float]]:
    """One more day with timers around the parts."""
    s = Sections()
    draws = "serve: response draws (click, watch, interactions)"
    with (
        patched(world_module, "sample_feedback", draws, s),
        patched(world_module, "time_features", "observe: time features", s),
    ):
        return serve_day(env, seed, s)


def report(
    label: str, runs: list[Run], refs: list[Run], parts: dict[str, float], alone: float
) -> None:
    """Print one backend's rates, ratios to CartPole (wall and CPU) and breakdown."""
    r0 = runs[0]
    print(f"\n== {label}: {r0.n:,} requests, {r0.batches:,} batches (mean {r0.n / r0.batches:.0f})")
    for i, (r, c) in enumerate(zip(runs, refs, strict=True)):
        print(
            f"  run {i}: {r.per_s:>9,.0f} req/s (CPU {r.per_cpu_s:>9,.0f}); CartPole "
            f"{c.per_s:>9,.0f} steps/s (CPU {c.per_cpu_s:>9,.0f}); ratio "
            f"{r.per_s / c.per_s:.3f} (CPU {r.per_cpu_s / c.per_cpu_s:.3f})"
        )
    wall = statistics.median(r.per_s / c.per_s for r, c in zip(runs, refs, strict=True))
    cpu = statistics.median(r.per_cpu_s / c.per_cpu_s for r, c in zip(runs, refs, strict=True))
    print(
        f"  median: {statistics.median(r.per_s for r in runs):,.0f} req/s "
        f"(CPU {statistics.median(r.per_cpu_s for r in runs):,.0f}); ratio to CartPole "
        f"{wall:.3f} (CPU {cpu:.3f})"
    )
    total = sum(parts.values())
    print(
        f"  breakdown, CPU (one timed run, {total:.2f} s, {1e6 * total / r0.batches:.0f} us/batch):"
    )
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(
            f"    {k:<52} {v:6.3f} s  {100 * v / total:5.1f} %  "
            f"{1e6 * v / r0.batches:6.0f} us/batch"
        )
    print(
        f"  world alone (nobody served): {alone:.2f} CPU s per day of {r0.n:,} requests "
        f"-> caps the path at {r0.n / alone:,.0f} req/s (CPU)"
    )


def measure(args: argparse.Namespace, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per repeat: CartPole, then a day under each backend in turn (so that the
    backends' ratio compares runs close in time); then one timed breakdown each."""
    envs = {}
    for name in names:
        with serve_kernel.use_backend(name):
            envs[name] = BatchedLiveEnv(
                args.preset,
                batch_size=args.batch_size,
                horizon_hours=args.hours,
                start_hour=args.start_hour,
            )
            serve_day(envs[name], args.seed)  # warm-up (numba compiles or loads its cache)
    out: dict[str, dict[str, Any]] = {n: {"runs": [], "refs": []} for n in names}
    for _ in range(args.repeats):
        ref = cartpole(args.cartpole_steps)
        for name in names:
            with serve_kernel.use_backend(name):
                out[name]["runs"].append(serve_day(envs[name], args.seed)[0])
            out[name]["refs"].append(ref)
    alone = world_alone(args.preset, args.hours, args.start_hour, args.seed)
    for name in names:
        with serve_kernel.use_backend(name):
            out[name]["parts"] = breakdown(envs[name], args.seed)[1]
        out[name]["alone"] = alone
        report(f"backend {name!r}", **out[name])
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours served")
    p.add_argument("--start-hour", type=float, default=0.0, help="the day's hour to start at")
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cartpole-steps", type=int, default=100_000)
    p.add_argument("--backend", choices=[*serve_kernel.BACKENDS, "both"], default="both")
    args = p.parse_args(argv)
    load = os.getloadavg()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
        f"numpy {np.__version__}, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    names = serve_kernel.BACKENDS if args.backend == "both" else (args.backend,)
    out = measure(args, names)
    if len(out) == 2:
        (a, ra), (b, rb) = out.items()
        for unit, rate in (("wall", "per_s"), ("CPU", "per_cpu_s")):
            pairs = zip(ra["runs"], rb["runs"], strict=True)
            ratio = [getattr(x, rate) / getattr(y, rate) for x, y in pairs]
            runs = ", ".join(f"{r:.2f}" for r in ratio)
            print(f"{a} / {b} ({unit}): x{statistics.median(ratio):.2f} (runs: {runs})")
    return out


if __name__ == "__main__":
    main()
