"""Calibration: simulate the default world and set it beside KuaiLive.

    python -m agents.evaluate.calibration --days 1

simulates a world under a platform-like behaviour policy, records the log
with :class:`agents.logs.LogRecorder`, and computes every figure of
``CALIBRATION.md`` from the log (as KuaiLive's figures come from its logs) and
from the world's broadcasts. :func:`format_calibration_table` prints them
beside the KuaiLive figures.

Behaviour policy: KuaiLive's exposures come from Kuaishou's production
recommender, so neither uniform random nor pure popularity is the right
stand-in. The default, :class:`agents.logs.PlatformPolicy`, draws rooms from
a softmax over the observed signals a production ranker leans on (live
popularity, follows, a content match with the user's history) mixed with 10 %
uniform exploration. A softmax over the privileged oracle utility would be
closer to a strong ranker but costs ~5 ms per request (about 10x the
simulation step), too slow for a test; the observed-signal softmax gives a CTR
above random as a real ranker does, and keeps a known propensity.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluate import calibration_stats as cs
from agents.logs import LogRecorder, make_log_env, read_log, resolve_policy, run_policy

#: KuaiLive figures (CALIBRATION.md): key -> (value or None, how to show it).
KUAILIVE: dict[str, tuple[float | None, str]] = {
    "comment_per_click": (0.040, "4.0 %"),
    "like_per_click": (0.0365, "3.65 %"),
    "gift_per_click": (0.0148, "1.48 %"),
    "ctr": (0.28, "~28 %"),
    "watch_median_s": (5.0, "~5"),
    "watch_mean_s": (500.0, "~500"),
    "watch_p90_s": (1000.0, "~1,000"),
    "watch_p99_s": (9000.0, "~9,000"),
    "room_duration_median_min": (134.0, "134"),
    "room_duration_p25_min": (85.0, "85"),
    "room_duration_p75_min": (202.0, "202"),
    "room_duration_p90_min": (290.0, "290"),
    "gift_price_median": (2.0, "2"),
    "gift_price_p90": (88.0, "88"),
    "gift_price_p99": (1500.0, "~1,500"),
    "gift_lowest_share": (0.44, "44 %"),
    "room_start_share_18_24": (None, "most"),
    "room_start_noon_peak_ratio": (None, "> 1 (small peak)"),
    "watch_share_18_24": (None, "most"),
    "watch_noon_peak_ratio": (None, "> 1 (small peak)"),
    "exposure_share_18_24": (None, "most"),
    "exposure_noon_peak_ratio": (None, "> 1 (small peak)"),
    "rooms_per_streamer_21d": (26.0, "~26"),
    "return_user_share": (0.27, "~27 % (21 days)"),
    "top_streamer_watch_share": (0.36, "~36 % (21 days)"),
}

#: Table rows: (section, label, figure key, format).
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("interactions per click", "comment", "comment_per_click", "pct"),
    ("interactions per click", "like", "like_per_click", "pct"),
    ("interactions per click", "gift", "gift_per_click", "pct"),
    ("interactions per click", "follow", "follow_per_click", "pct"),
    ("click-through rate", "clicks / exposures", "ctr", "pct"),
    ("watch per (user, room) visit, s", "median", "watch_median_s", "num"),
    ("watch per (user, room) visit, s", "mean", "watch_mean_s", "num"),
    ("watch per (user, room) visit, s", "p90", "watch_p90_s", "num"),
    ("watch per (user, room) visit, s", "p99", "watch_p99_s", "num"),
    ("room duration, min", "p25", "room_duration_p25_min", "num"),
    ("room duration, min", "median", "room_duration_median_min", "num"),
    ("room duration, min", "p75", "room_duration_p75_min", "num"),
    ("room duration, min", "p90", "room_duration_p90_min", "num"),
    ("gift price", "median", "gift_price_median", "num"),
    ("gift price", "p90", "gift_price_p90", "num"),
    ("gift price", "p99", "gift_price_p99", "num"),
    ("gift price", "share at the lowest price", "gift_lowest_share", "pct"),
    ("room starts", "share 18:00-24:00", "room_start_share_18_24", "pct"),
    ("room starts", "share 11:00-14:00", "room_start_share_11_14", "pct"),
    ("room starts", "noon peak ratio", "room_start_noon_peak_ratio", "ratio"),
    ("watching", "share 18:00-24:00", "watch_share_18_24", "pct"),
    ("watching", "share 11:00-14:00", "watch_share_11_14", "pct"),
    ("watching", "noon peak ratio", "watch_noon_peak_ratio", "ratio"),
    ("exposures (requests)", "share 18:00-24:00", "exposure_share_18_24", "pct"),
    ("exposures (requests)", "noon peak ratio", "exposure_noon_peak_ratio", "ratio"),
    ("rooms per streamer", "over 21 days (extrapolated)", "rooms_per_streamer_21d", "num"),
    ("concentration of clicks", "Gini across streamers", "click_gini_streamers", "ratio"),
    ("concentration of clicks", "top-1 % streamers' share", "click_top1_streamers", "pct"),
    ("concentration of clicks", "Gini across users", "click_gini_users", "ratio"),
    ("concentration of clicks", "top-1 % users' share", "click_top1_users", "pct"),
    ("concentration of gifts", "Gini across streamers", "gift_gini_streamers", "ratio"),
    ("concentration of gifts", "top-1 % streamers' share", "gift_top1_streamers", "pct"),
    ("concentration of gifts", "Gini across users", "gift_gini_users", "ratio"),
    ("concentration of gifts", "top-1 % users' share", "gift_top1_users", "pct"),
    ("returns", "users back to a streamer watched before", "return_user_share", "pct"),
    ("returns", "clicks on a streamer watched before", "return_click_share", "pct"),
    (
        "returns",
        "median user's top streamer's share of watch time",
        "top_streamer_watch_share",
        "pct",
    ),
)


class RoomTracker:
    """Collects every broadcast of the world (id, streamer, start, planned end)
    by scanning the live rooms at least every ``every_s`` simulated seconds
    (shorter than the shortest broadcast, so none is missed)."""

    def __init__(self, every_s: float = 120.0):
        self.every_s, self.next_t = every_s, -math.inf
        self.seen: dict[int, tuple[int, float, float]] = {}
        self.n_streamers: list[int] = []

    def __call__(self, env: Any, info: dict[str, Any]) -> None:
        if info["time_s"] < self.next_t:
            return
        self.next_t = info["time_s"] + self.every_s
        world = env.unwrapped.world
        t = world.rooms.t
        live = np.flatnonzero(t.live)
        for rid, st, s0, s1 in zip(
            t.room_id[live].tolist(),
            t.streamer[live].tolist(),
            t.start_t[live].tolist(),
            t.end_t[live].tolist(),
            strict=True,
        ):
            self.seen.setdefault(rid, (st, s0, s1))
        self.n_streamers.append(int(world.streamers.n))

    def table(self) -> pd.DataFrame:
        rows = [(rid, *v) for rid, v in self.seen.items()]
        return pd.DataFrame(rows, columns=["room_id", "streamer", "start_t", "end_t"])


def calibrate(
    preset: str = "default",
    days: float = 1.0,
    seed: int = 0,
    start_hour: float | None = None,
    policy: Any = "platform",
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Simulate ``days`` of ``preset`` (from ``start_hour``, default the
    preset's) under ``policy`` and return every calibration figure (a flat
    dict; see :data:`ROWS`, plus counts and ``sim_days``, ``wall_s``)."""
    over = dict(overrides or {})
    if start_hour is not None:
        over["start_hour"] = start_hour
    env = make_log_env(preset, days, over)
    fn, name = resolve_policy(policy, seed)
    rooms = RoomTracker()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="liveenv-calib-") as tmp:
        rec = LogRecorder(env, tmp, chunk_rows=1 << 20, policy_name=name)
        run_policy(rec, fn, seed, progress, desc=f"calibrate {preset}", on_step=rooms)
        rec.close()
        log = read_log(tmp, columns=[c for c in _LOG_COLUMNS])
    world, cfg = env.world, env.config
    t0 = world.t0
    figures = _log_figures(log, min(cfg.response.gift_prices))
    figures.update(
        cs.room_figures(rooms.table(), t0, t0 + cfg.horizon_s, np.mean(rooms.n_streamers))
    )
    figures.update(sim_days=days, wall_s=time.perf_counter() - start)
    return figures


_LOG_COLUMNS = (
    "user_id",
    "streamer_id",
    "live_id",
    "timestamp_ms",
    "hour",
    "is_click",
    "watch_time_ms",
    "like",
    "comment",
    "follow",
    "gift_price",
)


def _log_figures(log: pd.DataFrame, lowest_price: float) -> dict[str, float]:
    out: dict[str, float] = {}
    out.update(cs.interaction_figures(log))
    out.update(cs.watch_figures(log))
    out.update(cs.gift_figures(log, lowest_price))
    out.update(cs.watch_rhythm_figures(log))
    out.update(cs.concentration_figures(log))
    out.update(cs.return_figures(log))
    return out


def _fmt(value: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if kind == "pct":
        return f"{100 * value:.2f} %" if value < 0.1 else f"{100 * value:.1f} %"
    if kind == "ratio":
        return f"{value:.2f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def format_calibration_table(figures: dict[str, float]) -> str:
    """A Markdown table: each figure, the simulated value and KuaiLive's."""
    lines = ["| fact | figure | simulated | KuaiLive |", "| --- | --- | --- | --- |"]
    last = None
    for section, label, key, kind in ROWS:
        shown = section if section != last else ""
        last = section
        real = KUAILIVE.get(key, (None, "—"))[1]
        lines.append(f"| {shown} | {label} | {_fmt(figures.get(key), kind)} | {real} |")
    days = figures.get("sim_days", float("nan"))
    lines.append("")
    lines.append(
        f"Simulated {days:g} day(s): {figures.get('exposures', 0):,.0f} exposures, "
        f"{figures.get('clicks', 0):,.0f} clicks, {figures.get('gifts', 0):,.0f} gifts, "
        f"{figures.get('rooms_started', 0):,.0f} broadcasts started; rooms per streamer "
        f"extrapolated from {days:g} day(s) to 21; {figures.get('wall_s', 0):.0f} s wall."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description="Simulate a world and compare it with KuaiLive.")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-hour", type=float, default=None)
    ap.add_argument("--policy", default="platform", choices=["platform", "random", "popular"])
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    figures = calibrate(
        args.preset, args.days, args.seed, args.start_hour, args.policy, progress=not args.quiet
    )
    print(format_calibration_table(figures))
    return figures


if __name__ == "__main__":
    main()
