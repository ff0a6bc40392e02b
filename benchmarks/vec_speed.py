"""Vectorised stepping: the SB3 adapter (:class:`policies.sb3_vecenv.LiveSB3VecEnv`)
against SB3's ``DummyVecEnv`` of single envs, and :class:`liveenv.vector.LiveVectorEnv`
against Gymnasium's ``SyncVectorEnv``, in the same run.

    python benchmarks/vec_speed.py [--preset default] [--num-envs 8] [--steps 300] [--repeats 3]

Every contender plays the same seeds (lane ``i``: ``seed + i``) with the same
masked random actions (one seeded generator each), reading the masks every
step as ``MaskablePPO`` does; resets are not timed. The figure is lane steps
per second, best of ``--repeats`` timed blocks of ``--steps`` vector steps;
the ratios are against the baseline of the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.vec_env import DummyVecEnv

import liveenv
from liveenv import LiveStreamEnv, make_config
from liveenv.vector import LiveVectorEnv
from policies.sb3_vecenv import LiveSB3VecEnv


def _pick(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    counts = masks.sum(axis=1)
    return (rng.random(len(masks)) * counts).astype(np.int64)  # live slots are 0..n_live-1


def time_sb3(venv, steps: int, repeats: int, seed: int) -> float:
    venv.seed(seed)
    venv.reset()
    rng, best = np.random.default_rng(seed), 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            venv.step(_pick(get_action_masks(venv), rng))
        best = max(best, steps * venv.num_envs / (time.perf_counter() - t0))
    return best


def time_gym(envs, masks: Callable[[], np.ndarray], steps: int, repeats: int, seed: int) -> float:
    envs.reset(seed=seed)
    rng, best = np.random.default_rng(seed), 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            envs.step(_pick(masks(), rng))
        best = max(best, steps * envs.num_envs / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=300, help="vector steps per timed block")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=100)
    args = ap.parse_args()
    cfg, n = make_config(args.preset), args.num_envs
    env_id = liveenv.ENV_IDS[args.preset]
    run = (args.steps, args.repeats, args.seed)
    dummy = time_sb3(DummyVecEnv([lambda: LiveStreamEnv(cfg) for _ in range(n)]), *run)
    ours = time_sb3(LiveSB3VecEnv(n, cfg), *run)
    print(
        f"SB3 ({args.preset}, {n} envs, {args.steps} steps x {args.repeats}): DummyVecEnv of "
        f"LiveStreamEnv {dummy:.0f} steps/s, LiveSB3VecEnv {ours:.0f} steps/s, "
        f"ratio x{ours / dummy:.2f}"
    )
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync")
    sync_masks = lambda: np.stack(sync.call("action_masks"))  # noqa: E731
    t_sync = time_gym(sync, sync_masks, *run)
    vec = LiveVectorEnv(n, cfg)
    t_vec = time_gym(vec, vec.action_masks, *run)
    print(
        f"Gymnasium: SyncVectorEnv {t_sync:.0f} steps/s, LiveVectorEnv {t_vec:.0f} steps/s, "
        f"ratio x{t_vec / t_sync:.2f}"
    )


if __name__ == "__main__":
    main()
