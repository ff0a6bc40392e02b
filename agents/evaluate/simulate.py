"""Run a policy in the world through the batched path and summarise it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from liveenv.batched import BatchedLiveEnv
from liveenv.objectives import OBJECTIVES
from liveenv.presets import make_config
from policies.base import Policy


@dataclass
class SimulationSummary:
    policy: str
    preset: str
    hours: float
    impressions: int
    rates: dict[str, float]  # mean feedback per impression
    reward_per_impression: float
    mean_live_rooms: float
    wall_s: float

    @property
    def impressions_per_s(self) -> float:
        return self.impressions / max(self.wall_s, 1e-9)


def simulate(
    policy: Policy,
    preset: str = "default",
    hours: float = 24.0,
    seed: int = 0,
    batch_size: int = 1024,
    **overrides: object,
) -> SimulationSummary:
    """Serve every request of ``hours`` simulated hours with ``policy``."""
    cfg = make_config(preset, horizon_hours=hours, **overrides)
    env = BatchedLiveEnv(cfg, batch_size=batch_size)
    policy.reset(seed)
    obs, _ = env.reset(seed=seed)
    fb_sum, reward_sum, n, live_sum = np.zeros(len(OBJECTIVES)), 0.0, 0, 0.0
    start = time.perf_counter()
    while True:
        b = len(obs["user"])
        live_sum += env.world.n_live * b
        out = policy.act(obs, env=env)
        obs, rewards, truncated, info = env.step(out.slots)
        fb_sum += info["feedback"].sum(axis=0)
        reward_sum += float(rewards.sum())
        n += b
        if truncated:
            break
    wall = time.perf_counter() - start
    return SimulationSummary(
        policy=policy.name,
        preset=preset,
        hours=hours,
        impressions=n,
        rates=dict(zip(OBJECTIVES, (fb_sum / max(n, 1)).tolist(), strict=True)),
        reward_per_impression=reward_sum / max(n, 1),
        mean_live_rooms=live_sum / max(n, 1),
        wall_s=wall,
    )


def summary_table(rows: list[SimulationSummary]) -> str:
    """A Markdown table of simulation summaries."""
    head = ["policy", "impressions", *OBJECTIVES, "reward/imp", "live rooms", "imp/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r.policy,
            f"{r.impressions:,}",
            *(f"{r.rates[k]:.4f}" for k in OBJECTIVES),
            f"{r.reward_per_impression:.4f}",
            f"{r.mean_live_rooms:.0f}",
            f"{r.impressions_per_s:,.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
