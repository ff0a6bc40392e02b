"""The live-streaming world: SimPy decides *when*, numpy decides *what*.

A handful of SimPy processes drive struct-of-arrays state: the daily
broadcast planner, the 30-second content clock (rooms end, start, their
content advances, live statistics refresh), user arrivals on a daily rhythm,
and population growth (new users and creators). Recommendation requests wait
in a small pending queue; :meth:`World.next_requests` advances the clock to
the next ones and :meth:`World.serve` answers a batch of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from liveenv.config import EnvConfig
from liveenv.history import HistoryStore
from liveenv.objectives import N_OBJECTIVES
from liveenv.population import (
    N_AGE,
    N_GENDER,
    N_REGION,
    USER_FEATURES,
    Archetypes,
    add_streamers,
    add_users,
    new_streamer_table,
    new_user_table,
    user_cohort,
)  # fmt: skip
from liveenv.response import (
    N_UNIFORMS,
    U_CLICK,
    U_CONTINUE,
    U_GAP,
    Impressions,
    click_probability,
    expected_feedback,
    sample_feedback,
)  # fmt: skip
from liveenv.rhythm import DAY_S, SEGMENT_S, time_features, user_rhythm
from liveenv.rooms import Rooms, phase_penalty
from liveenv.schedule import BroadcastPlan

USER_COHORTS = ("new", "light", "heavy")
STREAMER_COHORTS = ("new", "established")
#: Room features in the observation: observed segment embedding, pooled
#: streamer embedding, then these named columns.
ROOM_STAT_COLUMNS = ("log_viewers", "like_rate", "comment_rate", "gift_rate", "hours_live",
                     "new_streamer")  # fmt: skip
EXAMINE_DECAY = 0.7  # chance of looking one slate position further down


@dataclass
class Served:
    """What happened to a batch of served requests."""

    feedback: np.ndarray  # (B, 6) of the clicked room (zeros when nothing clicked)
    clicked_pos: np.ndarray  # (B,) position in the slate that was clicked, -1 none
    watch_s: np.ndarray  # (B,)
    slate_rooms: np.ndarray  # (B, K) room ids shown
    slate_streamers: np.ndarray  # (B, K)
    slate_phase: np.ndarray  # (B, K) lifecycle phase of each shown room
    slate_new_streamer: np.ndarray  # (B, K) bool
    user_cohort: np.ndarray  # (B,)


class World:
    """One simulated platform. All randomness comes from ``rng``."""

    def __init__(self, cfg: EnvConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.t0 = float(np.floor(cfg.start_hour * 3600.0 / SEGMENT_S) * SEGMENT_S)
        self.arch = Archetypes.draw(cfg, rng)
        self.users = new_user_table(cfg)
        self.streamers = new_streamer_table(cfg)
        self._add_initial_population()
        self.history = HistoryStore(cfg.users.history_len, cfg.obs_dim)
        self.follows: dict[int, set[int]] = {}
        self._req_t = np.empty(0)
        self._req_u = np.empty(0, dtype=np.int64)
        self.sim = simpy.Environment(initial_time=self.t0)
        self.rooms = Rooms(cfg, self.arch, capacity=self._room_capacity())
        self.plan = BroadcastPlan(cfg)
        self.tick = int(self.t0 // SEGMENT_S)
        self._mean_centre = self.arch.cluster_centres.mean(axis=0)
        self._refresh_activity()
        self.plan.plan_day(self.t0 - DAY_S, self.streamers, self._alive_streamers(), rng)
        self.plan.plan_day(self.t0, self.streamers, self._alive_streamers(), rng)
        self._start_due(self.t0)
        self._refresh_rooms()
        for proc in (self._clock, self._planner, self._arrivals, self._growth):
            self.sim.process(proc())

    # ----- population -------------------------------------------------------
    def _add_initial_population(self) -> None:
        ucfg, scfg, rng, t0 = self.cfg.users, self.cfg.streamers, self.rng, self.t0
        n_new = int(round(ucfg.n_users * ucfg.initial_new_share))
        join = t0 - np.concatenate(
            [rng.uniform(0, ucfg.new_days * DAY_S, n_new),
             ucfg.new_days * DAY_S + rng.exponential(90 * DAY_S, ucfg.n_users - n_new)]
        )  # fmt: skip
        add_users(self.users, ucfg.n_users, join, self.cfg, self.arch, rng)
        n_new = int(round(scfg.n_streamers * scfg.initial_new_share))
        join = t0 - np.concatenate(
            [rng.uniform(0, scfg.new_days * DAY_S, n_new),
             scfg.new_days * DAY_S + rng.exponential(180 * DAY_S, scfg.n_streamers - n_new)]
        )  # fmt: skip
        add_streamers(self.streamers, scfg.n_streamers, join, self.cfg, self.arch, rng)

    def _room_capacity(self) -> int:
        s = self.cfg.streamers
        mean_live_h = s.duration_median_min / 60 * np.exp(s.duration_sigma**2 / 2)
        return int(max(64, 3 * s.n_streamers * s.broadcasts_per_day * mean_live_h / 24))

    def _alive_streamers(self) -> np.ndarray:
        return np.arange(self.streamers.n)

    def _refresh_activity(self) -> None:
        n = self.users.n
        self._activity_cdf = np.cumsum(self.users.activity[:n])

    # ----- SimPy processes --------------------------------------------------
    def _clock(self):
        while True:
            yield self.sim.timeout(SEGMENT_S)
            self.tick += 1
            now = self.sim.now
            self.rooms.end_due(now)
            self.streamers.room[
                self.rooms.t.streamer[~self.rooms.t.live & (self.rooms.t.streamer >= 0)]
            ] = -1
            before = self.rooms.live_slots()
            s = self.streamers
            self.rooms.advance(self.tick, s.mix[self.rooms.t.streamer[before]],
                               s.style[self.rooms.t.streamer[before]], before, self.rng)  # fmt: skip
            self._start_due(now)
            self._refresh_rooms()

    def _planner(self):
        while True:
            day_start = (np.floor(self.sim.now / DAY_S) + 1) * DAY_S
            yield self.sim.timeout(day_start - self.sim.now)
            self.plan.plan_day(day_start, self.streamers, self._alive_streamers(), self.rng)

    def _arrivals(self, every: float = 60.0):
        u, ucfg = self.users, self.cfg.users
        while True:
            now = self.sim.now
            total = self._activity_cdf[-1] if len(self._activity_cdf) else 0.0
            lam = total * ucfg.return_boost_max * float(user_rhythm(now)) * every / DAY_S
            n = self.rng.poisson(lam)
            if n:
                pick = np.searchsorted(self._activity_cdf, self.rng.random(n) * total, side="right")
                pick = np.minimum(pick, u.n - 1)
                boost = u.return_boost[pick] * (1 + 0.1 * np.minimum(u.n_follows[pick], 10))
                keep = self.rng.random(n) * ucfg.return_boost_max < boost
                pick = np.unique(pick[keep & ~u.in_session[pick]])
                self._start_sessions(pick, now + self.rng.uniform(0, every, len(pick)))
            yield self.sim.timeout(every)

    def _growth(self, every: float = 600.0):
        ucfg, scfg = self.cfg.users, self.cfg.streamers
        while True:
            yield self.sim.timeout(every)
            now = self.sim.now
            n = self.rng.poisson(ucfg.new_users_per_day * every / DAY_S)
            if n:
                rows = add_users(self.users, n, np.full(n, now), self.cfg, self.arch, self.rng)
                self._refresh_activity()
                self._start_sessions(rows, now + self.rng.uniform(0, every, n))
            m = self.rng.poisson(scfg.new_streamers_per_day * every / DAY_S)
            if m:
                rows = add_streamers(
                    self.streamers, m, np.full(m, now), self.cfg, self.arch, self.rng
                )
                self.plan.plan_first(rows, now, self.rng)

    # ----- rooms ------------------------------------------------------------
    def _start_due(self, now: float) -> None:
        streamers, start, end = self.plan.pop_due(now, self.streamers.room)
        if len(streamers) == 0:
            return
        s = self.streamers
        slots = self.rooms.start(
            streamers, start, end, self.tick, s.mix[streamers], s.style[streamers],
            s.quality[streamers], self.rng,
        )  # fmt: skip
        s.room[streamers] = self.rooms.t.room_id[slots]
        s.n_broadcasts[streamers] += 1

    def _refresh_rooms(self) -> None:
        """Observed embeddings, live statistics and the candidate table of this tick."""
        live = self.rooms.live_slots()
        rt, now = self.rooms.t, self.sim.now
        self.rooms.observe(live, self.tick, self.rng)
        st = rt.streamer[live]
        latent = self.rooms.current_latent(live, self.tick)
        pop = latent @ self._mean_centre
        q = self.streamers.quality[st]
        mood = np.exp(2.0 * pop + phase_penalty(self.rooms.progress(live, now), self.cfg))
        expected = 0.05 * self.streamers.fans[st] * float(user_rhythm(now)) * mood
        noise = self.rng.lognormal(0.0, 0.3, (len(live), 3))
        rt.stats[live, 0] = np.log1p(self.rng.poisson(expected))
        rt.stats[live, 1:] = np.array([0.02, 0.01, 0.002]) * (q * mood)[:, None] * noise
        if len(live) > self.cfg.max_rooms:
            live = np.sort(self.rng.choice(live, self.cfg.max_rooms, replace=False))
        self.table_slots = live
        self.table = self._room_table(live, now)

    def _room_table(self, slots: np.ndarray, now: float) -> np.ndarray:
        cfg, rt, n = self.cfg, self.rooms.t, len(slots)
        o = cfg.obs_dim
        table = np.zeros((cfg.max_rooms, 2 * o + len(ROOM_STAT_COLUMNS)), dtype=np.float32)
        st = rt.streamer[slots]
        table[:n, :o] = rt.obs[slots]
        table[:n, o : 2 * o] = self.streamers.pooled[st]
        table[:n, 2 * o : 2 * o + 4] = rt.stats[slots]
        table[:n, 2 * o + 4] = (now - rt.start_t[slots]) / 3600.0
        table[:n, 2 * o + 5] = (now - self.streamers.join_t[st]) < cfg.streamers.new_days * DAY_S
        return np.minimum(table, 1e4, out=table)

    # ----- requests ---------------------------------------------------------
    def _start_sessions(self, users: np.ndarray, times: np.ndarray) -> None:
        u = self.users
        u.in_session[users] = True
        u.visits[users] += 1
        u.session_requests[users] = 0
        u.session_value[users] = 0.0
        self._push(users, times)

    def _push(self, users: np.ndarray, times: np.ndarray) -> None:
        self._req_t = np.concatenate([self._req_t, times])
        self._req_u = np.concatenate([self._req_u, users])

    def next_requests(self, max_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Advance the clock to the next pending requests and take up to ``max_n``
        of them (in time order) that come before the next SimPy event."""
        while True:
            limit = self.sim.peek()
            if len(self._req_t) and self._req_t.min() < limit:
                break
            self.sim.step()
        if max_n == 1:
            idx = np.array([int(np.argmin(self._req_t))])
        else:
            idx = np.flatnonzero(self._req_t < limit)
            idx = idx[np.argsort(self._req_t[idx], kind="stable")][:max_n]
        users, times = self._req_u[idx], self._req_t[idx]
        keep = np.ones(len(self._req_t), dtype=bool)
        keep[idx] = False
        self._req_t, self._req_u = self._req_t[keep], self._req_u[keep]
        return users, times

    # ----- what a recommender may observe -----------------------------------
    def user_features(self, users: np.ndarray, now: np.ndarray) -> np.ndarray:
        """``(B, USER_FEATURES)`` demographics one-hot and activity summaries."""
        u = self.users
        b = len(users)
        out = np.zeros((b, USER_FEATURES), dtype=np.float32)
        demo = u.demo[users].astype(np.int64)
        rows = np.arange(b)
        out[rows, demo[:, 0]] = 1.0
        out[rows, N_AGE + demo[:, 1]] = 1.0
        out[rows, N_AGE + N_GENDER + demo[:, 2]] = 1.0
        k = N_AGE + N_GENDER + N_REGION
        age_s = now - u.join_t[users]
        out[:, k] = age_s < self.cfg.users.new_days * DAY_S
        out[:, k + 1] = np.log1p(u.visits[users]) / 5.0  # < 5 for any int32 count
        out[:, k + 2] = np.log1p(np.maximum(age_s, 0) / DAY_S) / 3.0
        out[:, k + 3] = np.minimum(u.n_follows[users], 10) / 10.0
        return out

    def observe(self, users: np.ndarray, now: np.ndarray) -> dict[str, np.ndarray]:
        """The observation of each request, batched: every key has a leading
        ``B`` axis; ``rooms`` is a read-only broadcast view of this tick's table."""
        b, r = len(users), self.cfg.max_rooms
        n = self.n_live
        streamer = np.full(r, -1, dtype=np.int64)
        streamer[:n] = self.rooms.t.streamer[self.table_slots]
        mask = np.zeros(r, dtype=np.int8)
        mask[:n] = 1
        obs = self.history.gather(users, now)
        obs.update(
            user=self.user_features(users, now),
            rooms=np.broadcast_to(self.table, (b, *self.table.shape)),
            room_followed=self.followed_mask(users).astype(np.int8),
            room_streamer=np.broadcast_to(streamer, (b, r)),
            room_mask=np.broadcast_to(mask, (b, r)),
            time=time_features(now),
        )  # fmt: skip
        return obs

    def followed_mask(self, users: np.ndarray) -> np.ndarray:
        """``(B, max_rooms)`` bool: the user follows the streamer of that table slot."""
        out = np.zeros((len(users), self.cfg.max_rooms), dtype=bool)
        st = self.rooms.t.streamer[self.table_slots]
        for i, user in enumerate(users.tolist()):
            f = self.follows.get(user)
            if f:
                out[i, : len(st)] = np.isin(st, np.fromiter(f, dtype=np.int64))
        return out

    def cohort(self, users: np.ndarray, now: np.ndarray) -> np.ndarray:
        return user_cohort(self.users.activity[users], now - self.users.join_t[users], self.cfg)

    @property
    def n_live(self) -> int:
        return len(self.table_slots)

    # ----- answering requests -----------------------------------------------
    def impressions(self, users: np.ndarray, times: np.ndarray, slots: np.ndarray) -> Impressions:
        """The :class:`Impressions` of ``users`` at ``times`` shown pool ``slots``."""
        u, rt, w_b = self.users, self.rooms.t, self.cfg.response.boredom_weight
        st = rt.streamer[slots].tolist()
        followed = np.array(
            [s in self.follows.get(v, ()) for s, v in zip(st, users.tolist(), strict=True)],
            dtype=bool,
        )
        return Impressions(
            t=times, vec=u.interest[users] - w_b * u.boredom[users], like_prop=u.like_prop[users],
            comment_prop=u.comment_prop[users], gift_prop=u.gift_prop[users], followed=followed,
            end_t=rt.end_t[slots], slot=slots, content=rt.content, bias=rt.bias,
            follow_bonus=self.cfg.response.follow_bonus,
        )  # fmt: skip

    def expected_feedback(self, user: int, time: float) -> np.ndarray:
        """Privileged: ``(n_live, 6)`` true expected feedback of each table room."""
        slots = self.table_slots
        n = len(slots)
        imp = self.impressions(np.full(n, user), np.full(n, time), slots)
        return expected_feedback(imp, self.cfg)

    def serve(self, users: np.ndarray, times: np.ndarray, slate: np.ndarray) -> Served:
        """Show each user the table rooms ``slate[i]`` (B, K) and apply the outcome."""
        b, k = slate.shape
        cfg, rng = self.cfg, self.rng
        u = rng.random((b, N_UNIFORMS + k))
        drift = rng.standard_normal((b, cfg.latent_dim)).astype(np.float32)
        slots = self.table_slots[slate]  # (B, K)
        imp_all = self.impressions(np.repeat(users, k), np.repeat(times, k), slots.reshape(-1))
        a0 = imp_all.appeal(np.arange(b * k), 0, 1)[:, 0].reshape(b, k)
        examine = EXAMINE_DECAY ** np.arange(k)
        hit = u[:, U_CLICK : U_CLICK + k] < examine * click_probability(a0, cfg)
        clicked = hit.any(axis=1)
        pos = np.where(clicked, hit.argmax(axis=1), -1)
        chosen = np.where(clicked, pos, 0)
        sel = np.arange(b) * k + chosen
        imp = _take(imp_all, sel)
        fb, watch = sample_feedback(imp, a0[np.arange(b), chosen], clicked, u, cfg)
        self._apply(users, times, slots[np.arange(b), chosen], imp, fb, watch, clicked, u, drift)
        rt = self.rooms.t
        return Served(
            feedback=fb, clicked_pos=pos, watch_s=watch, slate_rooms=rt.room_id[slots],
            slate_streamers=rt.streamer[slots], slate_phase=self.rooms.phase(slots, times[:, None]),
            slate_new_streamer=(times[:, None] - self.streamers.join_t[rt.streamer[slots]])
            < cfg.streamers.new_days * DAY_S,
            user_cohort=self.cohort(users, times),
        )  # fmt: skip

    def _apply(self, users: np.ndarray, times: np.ndarray, slots: np.ndarray, imp: Impressions,
               fb: np.ndarray, watch: np.ndarray, clicked: np.ndarray, u: np.ndarray,
               drift: np.ndarray) -> None:  # fmt: skip
        """The lasting effects of the served batch on users, follows and sessions."""
        ucfg, us = self.cfg.users, self.users
        st = self.rooms.t.streamer[slots]
        c = np.flatnonzero(clicked)
        if len(c):
            self.history.append(users[c], st[c], self.rooms.t.obs[slots[c]], fb[c], times[c])
            seg = self.rooms.current_latent(slots[c], self.tick)
            us.boredom[users[c]] = (1 - ucfg.boredom_rate) * us.boredom[
                users[c]
            ] + ucfg.boredom_rate * seg
            for i in np.flatnonzero(fb[:, 4] > 0):
                self.add_follow(int(users[i]), int(st[i]))
        interest = us.interest[users] + ucfg.interest_drift * drift / np.sqrt(self.cfg.latent_dim)
        us.interest[users] = interest / np.linalg.norm(interest, axis=1, keepdims=True)
        sat = np.log1p(fb[:, 1]) + fb[:, 2] + fb[:, 3] + 2 * fb[:, 4] + (fb[:, 5] > 0)
        us.session_requests[users] += 1
        us.session_value[users] += sat
        p_go_on = ucfg.session_continue * np.where(clicked, 1.0, 0.8)
        go_on = (u[:, U_CONTINUE] < p_go_on) & (
            us.session_requests[users] < ucfg.max_session_requests
        )
        gap = -ucfg.gap_mean_s * np.log1p(-u[:, U_GAP])
        nxt = np.flatnonzero(go_on)
        self._push(users[nxt], times[nxt] + watch[nxt] + gap[nxt] + 1e-3)
        self.end_sessions(users[~go_on])

    def add_follow(self, user: int, streamer: int) -> None:
        """``user`` follows ``streamer`` from now on (raises affinity and return rate)."""
        followed = self.follows.setdefault(user, set())
        if streamer not in followed:
            followed.add(streamer)
            self.users.n_follows[user] += 1

    def end_sessions(self, users: np.ndarray) -> None:
        """End these users' visits; their satisfaction sets how soon they return."""
        us, ucfg = self.users, self.cfg.users
        us.in_session[users] = False
        mean_sat = us.session_value[users] / np.maximum(us.session_requests[users], 1)
        target = np.exp(ucfg.return_sensitivity * (mean_sat - 0.5))
        boost = 0.7 * us.return_boost[users] + 0.3 * target
        us.return_boost[users] = np.clip(boost, ucfg.return_boost_min, ucfg.return_boost_max)

    def nbytes(self) -> int:
        return (
            self.users.nbytes()
            + self.streamers.nbytes()
            + self.rooms.t.nbytes()
            + self.history.nbytes()
        )


def _take(imp: Impressions, rows: np.ndarray) -> Impressions:
    return imp.take(rows)


__all__ = [
    "N_OBJECTIVES",
    "ROOM_STAT_COLUMNS",
    "STREAMER_COHORTS",
    "USER_COHORTS",
    "Served",
    "World",
]
