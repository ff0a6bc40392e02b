"""When streamers go live: a daily plan of broadcasts (start, length).

Streamers are creatures of habit. Each day a streamer with rate ``r``
broadcasts ``floor(r)`` times, plus once more with probability ``r - floor(r)``
(rates differ across streamers, gamma-distributed around
``streamers.broadcasts_per_day``), each around its habitual hour. A streamer
cannot broadcast twice at once, so its broadcasts are spaced: taken in time
order, each starts no earlier than the end of the previous one plus a break
(exponential, mean ``streamers.break_mean_min``). The previous day's
broadcasts count too (``busy_until``), so an evening broadcast that runs past
midnight pushes the next day's first one back. This realises the configured
broadcasts per day (before, overlapping broadcasts were dropped when they
came due: about 16 rooms per streamer over 21 days for a configured 26).
"""

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
        self.busy_until = np.empty(0)  # per streamer: end of its last planned broadcast
        self.planned_until = -np.inf  # every day before this time is planned

    def durations(self, n: int, rng: np.random.Generator) -> np.ndarray:
        s = self.cfg.streamers
        minutes = s.duration_median_min * np.exp(s.duration_sigma * rng.standard_normal(n))
        return np.clip(minutes, s.min_duration_min, s.max_duration_min) * 60.0

    def plan_day(
        self, day_start: float, streamers: SoA, who: np.ndarray, rng: np.random.Generator
    ) -> None:
        """Plan the broadcasts of ``who`` for the day beginning at ``day_start``."""
        day0 = np.floor(day_start / DAY_S) * DAY_S
        rate = streamers.rate[who]
        whole = np.floor(rate)
        count = (whole + (rng.random(len(who)) < rate - whole)).astype(np.int64)
        st = np.repeat(who, count)
        hour = streamers.start_hour[st] + streamers.hour_spread[st] * rng.standard_normal(len(st))
        start = day0 + (hour % 24.0) * 3600.0
        self._add_spaced(st, start, self.durations(len(st), rng), rng)
        self.planned_until = max(self.planned_until, day0 + DAY_S)

    def plan_first(self, who: np.ndarray, now: float, rng: np.random.Generator) -> None:
        """New creators go live for the first time within the next two hours."""
        start = now + rng.uniform(0, 7200.0, len(who))
        self._add_spaced(who, start, self.durations(len(who), rng), rng)

    def _add_spaced(
        self, st: np.ndarray, start: np.ndarray, length: np.ndarray, rng: np.random.Generator
    ) -> None:
        """Add broadcasts so that a streamer's never overlap: per streamer, in
        time order, each one moves after the end of the previous one plus a break."""
        brk = rng.exponential(self.cfg.streamers.break_mean_min * 60.0, len(st))
        if len(st) == 0:
            return
        top = int(st.max()) + 1
        if top > len(self.busy_until):
            grown = np.full(top, -np.inf)
            grown[: len(self.busy_until)] = self.busy_until
            self.busy_until = grown
        order = np.lexsort((start, st))
        st, start, length = st[order], start[order], length[order]
        busy, at = self.busy_until, start.tolist()
        for i, (s, b, d) in enumerate(
            zip(st.tolist(), brk[order].tolist(), length.tolist(), strict=True)
        ):
            at[i] = max(at[i], busy[s] + b)
            busy[s] = at[i] + d
        start = np.asarray(at)
        self._add(st, start, start + length)

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

    def pop_before(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remove and return (streamer, start, end) of every broadcast starting before ``t``."""
        n = int(np.searchsorted(self.start, t, side="left"))
        out = self.streamer[:n], self.start[:n], self.end[:n]
        self.streamer, self.start, self.end = self.streamer[n:], self.start[n:], self.end[n:]
        return out
