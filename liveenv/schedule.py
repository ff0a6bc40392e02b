"""When streamers go live: a daily plan of broadcasts (start, length)."""

from __future__ import annotations

import numpy as np

from liveenv.config import EnvConfig
from liveenv.rhythm import DAY_S
from liveenv.soa import SoA


class BroadcastPlan:
    """Planned broadcasts not yet started, kept sorted by start time."""

    def __init__(self, cfg: EnvConfig):
        self.cfg = cfg
        self.start = np.empty(0)
        self.end = np.empty(0)
        self.streamer = np.empty(0, dtype=np.int64)

    def durations(self, n: int, rng: np.random.Generator) -> np.ndarray:
        s = self.cfg.streamers
        minutes = s.duration_median_min * np.exp(s.duration_sigma * rng.standard_normal(n))
        return np.clip(minutes, s.min_duration_min, s.max_duration_min) * 60.0

    def plan_day(self, day_start: float, streamers: SoA, who: np.ndarray,
                 rng: np.random.Generator) -> None:  # fmt: skip
        """Plan the broadcasts of ``who`` for the day beginning at ``day_start``."""
        day0 = np.floor(day_start / DAY_S) * DAY_S
        count = rng.poisson(streamers.rate[who])
        st = np.repeat(who, count)
        hour = streamers.start_hour[st] + streamers.hour_spread[st] * rng.standard_normal(len(st))
        start = day0 + (hour % 24.0) * 3600.0
        self._add(st, start, start + self.durations(len(st), rng))

    def plan_first(self, who: np.ndarray, now: float, rng: np.random.Generator) -> None:
        """New creators go live for the first time within the next two hours."""
        start = now + rng.uniform(0, 7200.0, len(who))
        self._add(who, start, start + self.durations(len(who), rng))

    def _add(self, st: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        self.start = np.concatenate([self.start, start])
        self.end = np.concatenate([self.end, end])
        self.streamer = np.concatenate([self.streamer, st])
        order = np.argsort(self.start, kind="stable")
        self.start, self.end, self.streamer = (
            self.start[order],
            self.end[order],
            self.streamer[order],
        )

    def pop_due(
        self, now: float, live_room: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcasts due by ``now`` that have not ended, one per streamer not live."""
        n = int(np.searchsorted(self.start, now, side="right"))
        st, start, end = self.streamer[:n], self.start[:n], self.end[:n]
        self.streamer, self.start, self.end = self.streamer[n:], self.start[n:], self.end[n:]
        ok = (end > now) & (live_room[st] < 0)
        st, start, end = st[ok], start[ok], end[ok]
        _, first = np.unique(st, return_index=True)
        first = np.sort(first)
        return st[first], start[first], end[first]
