"""Cost of refreshing the dynamic SIDs of all live rooms, next to simulating the world.

    python benchmarks/sid_refresh.py [--preset default] [--hours 1] [--tokenizer FILE | --log DIR]
                                     [--hysteresis H]

Runs the preset from ``--start-hour`` (the evening peak by default) with uniformly
random recommendations for ``--hours`` simulated hours. Every 30-s world tick a
:class:`LiveSIDTracker` re-encodes every live room (tower forward pass + residual
k-means assignment, the tracker's hysteresis rule, default ``DEFAULT_HYSTERESIS``) and
updates the live-SID trie. Reported per tick: the refresh
time, the wall time the env took to simulate that tick (all its requests, tracker
excluded), and their ratio (of medians, robust to a loaded machine's stalls, and of
totals, and of the main thread's CPU time, which a loaded machine's stalls do not
inflate), plus the cost of the refresh's parts on the last tick. The tokenizer is loaded (``--tokenizer``), or fitted on
``--log`` (default: a freshly generated ``--log-hours`` log of the preset).
"""

from __future__ import annotations

import argparse
import gc
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from agents.logs import generate_log, read_log_arrays
from liveenv.env import LiveStreamEnv
from liveenv.presets import make_config
from policies.tokenizer import LiveSIDTracker, SIDTokenizer, SIDTokenizerConfig
from policies.tokenizer.tracker import DEFAULT_HYSTERESIS


def tokenizer_for(args: argparse.Namespace) -> SIDTokenizer:
    if args.tokenizer:
        return SIDTokenizer.load(args.tokenizer)
    cfg = SIDTokenizerConfig(mode=args.mode)
    if args.log:
        return SIDTokenizer.fit(read_log_arrays(args.log), cfg)
    with tempfile.TemporaryDirectory() as tmp:
        generate_log(
            Path(tmp) / "log", args.preset, args.log_hours / 24, "platform", seed=1, progress=False
        )
        return SIDTokenizer.fit(read_log_arrays(Path(tmp) / "log"), cfg)


def measure(args: argparse.Namespace, tok: SIDTokenizer, scope: str) -> dict[str, float]:
    """Refresh and simulation times with Python's cyclic GC paused (as ``timeit`` does):
    a GC pass lands in whichever code allocates when it fires, env or tracker."""
    gc.collect()
    gc.disable()
    try:
        return _measure(args, tok, scope)
    finally:
        gc.enable()


def _measure(args: argparse.Namespace, tok: SIDTokenizer, scope: str) -> dict[str, float]:
    cfg = make_config(args.preset, start_hour=args.start_hour, horizon_hours=args.hours)
    env = LiveStreamEnv(cfg)
    tracker = LiveSIDTracker(tok, scope=scope, record=False, hysteresis=args.hysteresis)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    tracker.update(env)
    sim_tick, refresh, rooms, cpu_tick, cpu_refresh = [], [], [], [], []
    sim_s, cpu_s, truncated = 0.0, 0.0, False
    while not truncated:
        t0, c0 = time.perf_counter(), time.thread_time()
        obs, _, _, truncated, _ = env.step(int(rng.integers(int(obs["room_mask"].sum()))))
        sim_s += time.perf_counter() - t0
        cpu_s += time.thread_time() - c0
        t0, c0 = time.perf_counter(), time.thread_time()
        if tracker.update(env):
            refresh.append(time.perf_counter() - t0)
            cpu_refresh.append(time.thread_time() - c0)
            sim_tick.append(sim_s)
            cpu_tick.append(cpu_s)
            rooms.append(len(tracker.keys))
            sim_s = cpu_s = 0.0
    parts = breakdown(tracker, env)
    # the first refresh pays torch's warm-up; the simulated time of a tick is only
    # complete once the next tick has started, hence sim_tick[1:] against refresh[:-1]
    r, s = np.asarray(refresh[1:-1]), np.asarray(sim_tick[2:])
    cpu_r, cpu_s_ = np.asarray(cpu_refresh[1:-1]), np.asarray(cpu_tick[2:])
    return {
        "ticks": len(r),
        "rooms": float(np.mean(rooms)),
        "refresh_median_ms": 1e3 * np.median(r),
        "refresh_mean_ms": 1e3 * r.mean(),
        "sim_tick_median_ms": 1e3 * np.median(s),
        "sim_tick_mean_ms": 1e3 * s.mean(),
        "ratio_of_medians": np.median(r) / np.median(s),
        "ratio_of_totals": r.sum() / s.sum(),
        "cpu_ratio": cpu_r.sum() / cpu_s_.sum(),
        **parts,
    }


def breakdown(tracker: LiveSIDTracker, env: LiveStreamEnv, reps: int = 200) -> dict[str, float]:
    """ms per call of the refresh's parts on the last tick's rooms."""
    from policies.tokenizer.tracker import _from_world

    tok, states = tracker.tokenizer, _from_world(env.world, tracker.scope)
    emb = tok.embed_rooms(states.content, states.pooled, states.streamer)

    def ms(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return 1e3 * (time.perf_counter() - t0) / reps

    return {
        "read_ms": ms(lambda: _from_world(env.world, tracker.scope)),
        "tower_ms": ms(lambda: tok.embed_rooms(states.content, states.pooled, states.streamer)),
        "quantise_ms": ms(lambda: tok.quantiser.encode(emb)),
        "apply_ms": ms(lambda: tracker.apply(states)),  # tower + quantise + index diff
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--hours", type=float, default=1.0, help="simulated hours measured")
    p.add_argument("--start-hour", type=float, default=19.0, help="hour of day to start at")
    p.add_argument("--tokenizer", default="", help="a saved SIDTokenizer file")
    p.add_argument("--log", default="", help="a log to fit the tokenizer on")
    p.add_argument("--log-hours", type=float, default=6.0, help="hours of a generated log")
    p.add_argument("--mode", default="dynamic", choices=["dynamic", "static"])
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument(
        "--hysteresis",
        type=float,
        default=DEFAULT_HYSTERESIS,
        help="the tracker's hysteresis (0: plain nearest code)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tok = tokenizer_for(args)
    print(
        f"{platform.processor() or platform.machine()}, torch threads {args.threads}, "
        f"{tok}, preset {args.preset}, {args.hours} h from {args.start_hour}:00, "
        f"hysteresis {args.hysteresis}"
    )
    out = {}
    for scope in ("table", "all"):
        m = out[scope] = measure(args, tok, scope)
        print(
            f"scope={scope:5s}: {m['ticks']} ticks, {m['rooms']:.0f} rooms tracked; "
            f"refresh median {m['refresh_median_ms']:.2f} ms (mean {m['refresh_mean_ms']:.2f}), "
            f"simulating a 30-s tick median {m['sim_tick_median_ms']:.1f} ms "
            f"(mean {m['sim_tick_mean_ms']:.1f}); refresh / tick: "
            f"{100 * m['ratio_of_medians']:.1f} % of medians, "
            f"{100 * m['ratio_of_totals']:.1f} % of totals, "
            f"{100 * m['cpu_ratio']:.1f} % of thread CPU time"
        )
        print(
            f"             parts (ms per call on the last tick): read {m['read_ms']:.2f}, "
            f"tower {m['tower_ms']:.2f}, quantise {m['quantise_ms']:.2f}, "
            f"encode + index diff {m['apply_ms']:.2f}"
        )
    return out


if __name__ == "__main__":
    main()
