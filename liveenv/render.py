"""Text and image views of the world (numpy only, no plotting library)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from liveenv.objectives import OBJECTIVES
from liveenv.rhythm import hour_of_day
from liveenv.rooms import PHASES

if TYPE_CHECKING:
    from liveenv.world import World

PHASE_COLOURS = np.array([[90, 160, 240], [240, 120, 60], [150, 150, 150]], dtype=np.uint8)


def render_ansi(world: World, last: dict[str, Any], weights: np.ndarray, top: int = 8) -> str:
    """Clock, the busiest live rooms and the last recommendation's outcome."""
    now = world.sim.now
    day, hour = int(now // 86400), float(hour_of_day(now))
    slots = world.table_slots
    viewers = np.expm1(world.rooms.t.stats[slots, 0])
    phase = world.rooms.phase(slots, now)
    lines = [f"day {day} {int(hour):02d}:{int(hour % 1 * 60):02d}  live rooms: {len(slots)}"]
    lines.append(f"{'slot':>4} {'room':>7} {'streamer':>8} {'viewers':>8} phase")
    for i in np.argsort(-viewers)[:top]:
        rt = world.rooms.t
        lines.append(
            f"{i:>4} {rt.room_id[slots[i]]:>7} {rt.streamer[slots[i]]:>8} {viewers[i]:>8.0f} "
            f"{PHASES[phase[i]]}"
        )
    if last:
        fb = ", ".join(f"{k}={v:.2f}" for k, v in zip(OBJECTIVES, last["feedback"], strict=True))
        shown = np.atleast_1d(last["slate"]).tolist()
        lines.append(f"last: user {last['user']} shown slots {shown} -> {fb}")
        lines.append(f"reward {last['reward']:.3f}")
    return "\n".join(lines)


def render_rgb(
    world: World, last: dict[str, Any], height: int = 160, width: int = 480
) -> np.ndarray:
    """Bars of live-room viewers coloured by lifecycle phase; the last shown
    room outlined in white. ``(height, width, 3)`` uint8."""
    img = np.full((height, width, 3), 20, dtype=np.uint8)
    slots = world.table_slots
    if len(slots) == 0:
        return img
    viewers = world.rooms.t.stats[slots, 0]
    bars = np.clip(viewers / max(float(viewers.max()), 1e-9), 0, 1) * (height - 10)
    phase = world.rooms.phase(slots, world.sim.now)
    bar_w = max(1, width // max(len(slots), 1))
    shown = set(np.atleast_1d(last.get("slate", np.empty(0))).tolist()) if last else set()
    for i, (h, p) in enumerate(zip(bars.astype(int), phase, strict=True)):
        x0 = i * bar_w
        if x0 >= width:
            break
        img[height - h :, x0 : x0 + max(bar_w - 1, 1)] = PHASE_COLOURS[p]
        if i in shown:
            img[:4, x0 : x0 + max(bar_w - 1, 1)] = 255
    return img
