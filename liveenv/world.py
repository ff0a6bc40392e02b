"""The live-streaming world: SimPy decides *when*, numpy decides *what*.

One SimPy process drives struct-of-arrays state: the 30-second clock. At each
tick the rooms move on (:mod:`liveenv.rooms` simulates them in blocks of
ticks) and the candidate table of the tick is chosen; every ``ARRIVAL_TICKS``
ticks users arrive for a visit on a daily rhythm, and every ``GROWTH_TICKS``
ticks new users and creators join. There is no other event, so a request
never waits on SimPy unless a tick falls before it. Recommendation requests
wait in a queue (:mod:`liveenv.requests`);
:meth:`World.next_request` / :meth:`World.next_requests` advance the clock to
the next ones and :meth:`World.serve` (a batch) or :func:`liveenv.single.serve_one`
(one request, the lean path of the Gymnasium env) answer them.

Random streams, all derived from the ``rng`` given to the world: the world's
archetypes and first population come from ``rng`` itself; the rooms (plan,
content, observations, statistics, table sampling, new creators) from
``rooms_rng``; arrivals and new users from ``users_rng``; served requests from
:attr:`World.draws` (one row per request, see :mod:`liveenv.draws`). So the
rooms are the same under every recommender for a given seed. The platform's
past (``users.past_days``, :mod:`liveenv.past`) comes from a stream of its own
seeded by ``world_seed`` and is carried into the world before its first event.

Concurrency (batches): a request is answered at its own time against the
room table of its own tick, and a batch never crosses a tick. ``clock`` is
the time of the latest request answered. With ``postpone=True`` a follow-up
request that would fall before the clock (its visit's previous request was
answered together with later ones) is moved by whole 30-s segments to just
after it: the world's clock never runs backwards. With one request at a time
this never happens, so the single env and a batch of one are the same.

Why one module of about 500 lines: it is one class, the world's state and the
clock that moves it, whose methods read and write the same arrays; the parts
with a concept of their own already live beside it (rooms, population,
requests, history, response, past, draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from liveenv.config import EnvConfig
from liveenv.draws import DrawStream
from liveenv.history import HistoryStore
from liveenv.objectives import N_OBJECTIVES
from liveenv.past import past_of
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
)
from liveenv.requests import BatchQueue, RequestQueue
from liveenv.response import (
    N_UNIFORMS,
    U_CLICK,
    U_CONTINUE,
    U_GAP,
    Impressions,
    click_probability,
    expected_feedback,
)
from liveenv.rhythm import DAY_S, SEGMENT_S, rhythm_at, time_features
from liveenv.rooms import Rooms
from liveenv.schedule import BroadcastPlan
from liveenv.serve_kernel import sample_feedback

USER_COHORTS = ("new", "light", "heavy")
STREAMER_COHORTS = ("new", "established")
#: Room features in the observation: observed segment embedding, pooled
#: streamer embedding, then these named columns.
ROOM_STAT_COLUMNS = (
    "log_viewers",
    "like_rate",
    "comment_rate",
    "gift_rate",
    "hours_live",
    "new_streamer",
)
EXAMINE_DECAY = 0.7  # chance of looking one slate position further down
GROWTH_TICKS = 20  # new users and creators join every 10 minutes
ARRIVAL_TICKS = 2  # users arrive for a visit every minute (at random times within it)


#: Demographics (age, gender, region) -> one row of the one-hot block of the user features.
_DEMO_CODE = np.array([N_GENDER * N_REGION, N_REGION, 1])
_DEMO_ONE_HOT = np.zeros((N_AGE * N_GENDER * N_REGION, N_AGE + N_GENDER + N_REGION), np.float32)
for _a in range(N_AGE):
    for _g in range(N_GENDER):
        for _r in range(N_REGION):
            _DEMO_ONE_HOT[
                _a * N_GENDER * N_REGION + _g * N_REGION + _r,
                [_a, N_AGE + _g, N_AGE + N_GENDER + _r],
            ] = 1.0


def _repeat_view(a: np.ndarray, b: int) -> np.ndarray:
    """``a`` seen ``b`` times along a new first axis, without a copy (read-only)."""
    return np.ndarray((b, *a.shape), a.dtype, a, 0, (0, *a.strides))


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

    def __init__(
        self,
        cfg: EnvConfig,
        rng: np.random.Generator,
        postpone: bool = True,
        batched: bool = False,
        grow: bool = True,
    ) -> None:
        self.cfg, self.rng, self.postpone, self.grow = cfg, rng, postpone, grow
        self.t0 = float(np.floor(cfg.start_hour * 3600.0 / SEGMENT_S) * SEGMENT_S)
        # the platform (archetypes, initial users and streamers) from cfg.world_seed,
        # everything that happens on it from rng
        platform = rng if cfg.world_seed is None else np.random.default_rng(cfg.world_seed)
        self.arch = Archetypes.draw(cfg, platform)
        self.users = new_user_table(cfg)
        self.streamers = new_streamer_table(cfg)
        self._add_initial_population(platform)
        seeds = rng.integers(0, 2**62, size=3)
        self.rooms_rng, self.users_rng, serve_rng = (np.random.default_rng(int(s)) for s in seeds)
        drift = cfg.users.interest_drift / np.sqrt(cfg.latent_dim)  # per request, per dim
        self.draws = DrawStream(serve_rng, N_UNIFORMS + cfg.slate_size, cfg.latent_dim, drift)
        self.history = HistoryStore(cfg.users.history_len, cfg.obs_dim)
        self.follows: dict[int, set[int]] = {}
        if cfg.users.past_days > 0:  # the platform has run before (see liveenv.past)
            past_of(cfg, platform).apply(self)
        self.queue = BatchQueue() if batched else RequestQueue()
        self.clock = -np.inf  # time of the latest request answered
        self.sim = simpy.Environment(initial_time=self.t0)
        self.rooms = Rooms(cfg, self.arch, capacity=self._room_capacity())
        self.plan = BroadcastPlan(cfg)
        self.tick = self.tick0 = int(round(self.t0 / SEGMENT_S))
        self._mean_centre = self.arch.cluster_centres.mean(axis=0)
        self._activity_cdf = np.cumsum(self.users.activity[: self.users.n])
        self._parts_tick, self._pos_tick = -1, -1
        for day in (self.t0 - DAY_S, self.t0):
            self.plan.plan_day(day, self.streamers, self._alive_streamers(), self.rooms_rng)
        self._on_tick()
        self.sim.process(self._clock())

    # ----- population -------------------------------------------------------
    def _add_initial_population(self, rng: np.random.Generator) -> None:
        ucfg, scfg, t0 = self.cfg.users, self.cfg.streamers, self.t0
        n_new = int(round(ucfg.n_users * ucfg.initial_new_share))
        join = t0 - np.concatenate(
            [
                rng.uniform(0, ucfg.new_days * DAY_S, n_new),
                ucfg.new_days * DAY_S + rng.exponential(90 * DAY_S, ucfg.n_users - n_new),
            ]
        )
        add_users(self.users, ucfg.n_users, join, self.cfg, self.arch, rng)
        n_new = int(round(scfg.n_streamers * scfg.initial_new_share))
        join = t0 - np.concatenate(
            [
                rng.uniform(0, scfg.new_days * DAY_S, n_new),
                scfg.new_days * DAY_S + rng.exponential(180 * DAY_S, scfg.n_streamers - n_new),
            ]
        )
        add_streamers(self.streamers, scfg.n_streamers, join, self.cfg, self.arch, rng)

    def _room_capacity(self) -> int:
        s = self.cfg.streamers
        mean_live_h = s.duration_median_min / 60 * np.exp(s.duration_sigma**2 / 2)
        return int(max(64, 3 * s.n_streamers * s.broadcasts_per_day * mean_live_h / 24))

    def _alive_streamers(self) -> np.ndarray:
        return np.arange(self.streamers.n)

    # ----- the clock --------------------------------------------------------
    def _clock(self):
        while True:
            yield self.sim.timeout(SEGMENT_S)
            self.tick += 1
            self._on_tick()

    def _on_tick(self) -> None:
        tick, now, rooms = self.tick, self.tick * SEGMENT_S, self.rooms
        if rooms.block_start < 0 or tick >= rooms.block_start + rooms.block:
            block_end = (tick + rooms.block) * SEGMENT_S
            while self.plan.planned_until < block_end:
                self.plan.plan_day(
                    self.plan.planned_until, self.streamers, self._alive_streamers(), self.rooms_rng
                )
            rooms.prepare_block(tick, self.plan, self.streamers, self.rooms_rng, self._mean_centre)
        rooms.enter_tick(tick, self.streamers)
        live = rooms.live_slots()
        if len(live) > self.cfg.max_rooms:
            live = np.sort(self.rooms_rng.choice(live, self.cfg.max_rooms, replace=False))
        self.table_slots = live
        self.next_tick_t = now + SEGMENT_S
        if self.grow and tick > self.tick0 and (tick - self.tick0) % GROWTH_TICKS == 0:
            self._grow(now)
        if (tick - self.tick0) % ARRIVAL_TICKS == 0:
            self._arrivals(now, ARRIVAL_TICKS * SEGMENT_S)

    def _arrivals(self, now: float, every: float) -> None:
        """Users who start a visit in ``[now, now + every)``."""
        u, ucfg, rng = self.users, self.cfg.users, self.users_rng
        total = float(self._activity_cdf[-1]) if len(self._activity_cdf) else 0.0
        lam = total * ucfg.return_boost_max * rhythm_at(now) * every / DAY_S
        n = int(rng.poisson(lam))
        if n:
            draw = rng.random((3, n))  # who, whether they come back now, when in the tick
            draw[0].sort()  # sorted keys walk the activity table in order (cache friendly)
            pick = np.searchsorted(self._activity_cdf, draw[0] * total, side="right")
            np.minimum(pick, u.n - 1, out=pick)
            boost = u.return_boost[pick] * (1 + 0.1 * np.minimum(u.n_follows[pick], 10))
            keep = (draw[1] * ucfg.return_boost_max < boost) & ~u.in_session[pick]
            pick, first = np.unique(pick[keep], return_index=True)
            self._start_sessions(pick, now + every * draw[2, keep][first])

    def _grow(self, now: float) -> None:
        ucfg, scfg, every = self.cfg.users, self.cfg.streamers, GROWTH_TICKS * SEGMENT_S
        n = self.users_rng.poisson(ucfg.new_users_per_day * every / DAY_S)
        if n:
            rows = add_users(self.users, n, np.full(n, now), self.cfg, self.arch, self.users_rng)
            top = self._activity_cdf[-1] if len(self._activity_cdf) else 0.0
            more = top + np.cumsum(self.users.activity[rows])
            self._activity_cdf = np.concatenate([self._activity_cdf, more])
            self._start_sessions(rows, now + self.users_rng.uniform(0, every, n))
        m = self.rooms_rng.poisson(scfg.new_streamers_per_day * every / DAY_S)
        if m:
            rows = add_streamers(
                self.streamers, m, np.full(m, now), self.cfg, self.arch, self.rooms_rng
            )
            self.plan.plan_first(rows, now, self.rooms_rng)

    # ----- the room table of the tick ---------------------------------------
    def table_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``rooms`` (R, F) float32, ``room_streamer`` (R,) int64 and ``room_mask``
        (R,) int8 of this tick: read-only arrays, new every tick."""
        if self._parts_tick != self.tick:
            slots, n, r = self.table_slots, self.n_live, self.cfg.max_rooms
            streamer = np.full(r, -1, dtype=np.int64)
            streamer[:n] = self.rooms.t.streamer[slots]
            mask = np.zeros(r, dtype=np.int8)
            mask[:n] = 1
            parts = (self._room_table(slots, self.tick * SEGMENT_S), streamer, mask)
            for a in parts:
                a.setflags(write=False)
            self._parts, self._parts_tick = parts, self.tick
        return self._parts

    @property
    def table(self) -> np.ndarray:
        return self.table_parts()[0]

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

    def table_position(self) -> dict[int, int]:
        """``{streamer: slot in this tick's table}``."""
        if self._pos_tick != self.tick:
            st = self.rooms.t.streamer[self.table_slots].tolist()
            self._pos, self._pos_tick = {s: i for i, s in enumerate(st)}, self.tick
        return self._pos

    @property
    def n_live(self) -> int:
        return len(self.table_slots)

    # ----- requests ---------------------------------------------------------
    def _start_sessions(self, users: np.ndarray, times: np.ndarray) -> None:
        u = self.users
        self._recover(users, times)
        u.in_session[users] = True
        u.visits[users] += 1
        u.session_requests[users] = 0
        u.session_value[users] = 0.0
        self.queue.push_many(times, users)

    def _recover(self, users: np.ndarray, times: np.ndarray) -> None:
        """While users are away their boredom fades (``exp(-rate * days away)``)
        and each follow lapses with chance ``1 - exp(-lapse * days away)``."""
        u, ucfg = self.users, self.cfg.users
        last = u.last_visit_t[users]  # -inf: no visit yet (nothing to recover from)
        away = np.where(last > -np.inf, times - last, 0.0) * (1.0 / DAY_S)
        if ucfg.boredom_recovery_per_day > 0:
            u.boredom[users] *= np.exp(-ucfg.boredom_recovery_per_day * away).astype(np.float32)[
                :, None
            ]
        if ucfg.follow_lapse_per_day > 0:
            has = np.flatnonzero(u.n_follows[users] > 0)
            if len(has):
                keep = np.exp(-ucfg.follow_lapse_per_day * away[has])
                self._lapse_follows(users[has], keep)
        u.last_visit_t[users] = times

    def _lapse_follows(self, users: np.ndarray, keep: np.ndarray) -> None:
        """Each follow of ``users[i]`` stays with chance ``keep[i]``."""
        for user, p in zip(users.tolist(), keep.tolist(), strict=True):
            followed = sorted(self.follows[user])
            gone = self.users_rng.random(len(followed)) >= p
            if gone.any():
                kept = {s for s, g in zip(followed, gone.tolist(), strict=True) if not g}
                self.follows[user] = kept
                self.users.n_follows[user] = len(kept)

    def _advance_to_next_request(self) -> None:
        queue, step = self.queue, self.sim.step
        while queue.next_time() >= self.next_tick_t:
            step()

    def next_request(self) -> tuple[int, float]:
        """Advance the clock to the next request; return ``(user, time)``."""
        self._advance_to_next_request()
        time, user = self.queue.pop()
        self.clock = max(self.clock, time)
        return user, time

    def next_requests(self, max_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Advance the clock to the next pending requests and take up to ``max_n``
        of them (in time order) that fall before the next tick.

        With ``postpone`` and ``max_n > 1``, a batch that takes the last pending
        request of its tick moves the clock to the tick's end: the tick is
        answered as a whole, and follow-ups that would fall in it wait for the
        next one (one batch per tick)."""
        self._advance_to_next_request()
        users, times = self.queue.pop_before(self.next_tick_t, max_n)
        self.clock = max(self.clock, float(times[-1]))
        if self.postpone and max_n > 1 and self.queue.next_time() >= self.next_tick_t:
            self.clock = self.next_tick_t
        return users, times

    # ----- what a recommender may observe -----------------------------------
    def user_features(self, users: np.ndarray, now: np.ndarray) -> np.ndarray:
        """``(B, USER_FEATURES)`` demographics one-hot and activity summaries."""
        u = self.users
        b = len(users)
        out = np.empty((b, USER_FEATURES), dtype=np.float32)
        k = N_AGE + N_GENDER + N_REGION
        out[:, :k] = _DEMO_ONE_HOT[u.demo[users] @ _DEMO_CODE]
        age_s = now - u.join_t[users]
        out[:, k] = age_s < self.cfg.users.new_days * DAY_S
        out[:, k + 1] = np.log1p(u.visits[users]) / 5.0  # < 5 for any int32 count
        out[:, k + 2] = np.log1p(np.maximum(age_s, 0) / DAY_S) / 3.0
        out[:, k + 3] = np.minimum(u.n_follows[users], 10) / 10.0
        return out

    def observe(self, users: np.ndarray, now: np.ndarray) -> dict[str, np.ndarray]:
        """The observation of each request, batched: every key has a leading
        ``B`` axis; ``rooms``, ``room_streamer`` and ``room_mask`` are read-only
        broadcast views of this tick's table."""
        b = len(users)
        table, streamer, mask = self.table_parts()
        obs = self.history.gather(users, now)
        obs.update(
            user=self.user_features(users, now),
            rooms=_repeat_view(table, b),
            room_followed=self.followed_mask(users).view(np.int8),
            room_streamer=_repeat_view(streamer, b),
            room_mask=_repeat_view(mask, b),
            time=time_features(now),
        )
        return obs

    def followed_mask(self, users: np.ndarray) -> np.ndarray:
        """``(B, max_rooms)`` bool: the user follows the streamer of that table slot."""
        out = np.zeros((len(users), self.cfg.max_rooms), dtype=bool)
        has = np.flatnonzero(self.users.n_follows[users] > 0)
        if len(has):
            pos = self.table_position()
            for i in has.tolist():
                cols = [pos[s] for s in self.follows[int(users[i])] if s in pos]
                out[i, cols] = True
        return out

    def cohort(self, users: np.ndarray, now: np.ndarray) -> np.ndarray:
        return user_cohort(self.users.activity[users], now - self.users.join_t[users], self.cfg)

    # ----- answering requests -----------------------------------------------
    def impressions(self, users: np.ndarray, times: np.ndarray, slots: np.ndarray) -> Impressions:
        """The :class:`Impressions` of ``users`` at ``times`` shown pool ``slots``."""
        u, rt, w_b = self.users, self.rooms.t, self.cfg.response.boredom_weight
        st = rt.streamer[slots]
        followed = np.zeros(len(users), dtype=bool)
        for i in np.flatnonzero(u.n_follows[users] > 0).tolist():
            followed[i] = int(st[i]) in self.follows[int(users[i])]
        return Impressions(
            t=times,
            vec=u.interest[users] - w_b * u.boredom[users],
            like_prop=u.like_prop[users],
            comment_prop=u.comment_prop[users],
            gift_prop=u.gift_prop[users],
            followed=followed,
            gift_pull=self.streamers.gift_pull[st],
            end_t=rt.end_t[slots],
            slot=slots,
            content=rt.content,
            bias=rt.bias,
            follow_bonus=self.cfg.response.follow_bonus,
        )

    def expected_feedback(
        self, user: int, time: float, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Privileged: ``(n_live, 6)`` true expected feedback of each table room
        (``rows``: of those table rows only, ``(len(rows), 6)``)."""
        slots = self.table_slots if rows is None else self.table_slots[rows]
        n = len(slots)
        imp = self.impressions(np.full(n, user), np.full(n, time), slots)
        return expected_feedback(imp, self.cfg)

    def expected_feedback_batch(self, users: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Privileged: ``(B, n_live, 6)`` true expected feedback of each table room for
        each request ``(users[i], times[i])`` of one tick, in one kernel call."""
        slots = self.table_slots
        b, n = len(users), len(slots)
        u, rt, w_b = self.users, self.rooms.t, self.cfg.response.boredom_weight
        st = rt.streamer[slots]
        rep = np.repeat(np.asarray(users, dtype=np.int64), n)
        imp = Impressions(
            t=np.repeat(np.asarray(times, dtype=np.float64), n),
            vec=u.interest[rep] - w_b * u.boredom[rep],
            like_prop=u.like_prop[rep],
            comment_prop=u.comment_prop[rep],
            gift_prop=u.gift_prop[rep],
            followed=self.followed_mask(np.asarray(users))[:, :n].reshape(-1),
            gift_pull=np.tile(self.streamers.gift_pull[st], b),
            end_t=np.tile(rt.end_t[slots], b),
            slot=np.tile(slots, b),
            content=rt.content,
            bias=rt.bias,
            follow_bonus=self.cfg.response.follow_bonus,
        )
        return expected_feedback(imp, self.cfg).reshape(b, n, -1)

    def serve(self, users: np.ndarray, times: np.ndarray, slate: np.ndarray) -> Served:
        """Show each user the table rooms ``slate[i]`` (B, K) and apply the outcome."""
        b, k = slate.shape
        cfg = self.cfg
        u, drift = self.draws.take(b)
        slots = self.table_slots[slate]  # (B, K)
        if k == 1:
            shown = slots[:, 0]
            imp = self.impressions(users, times, shown)
            a0 = imp.appeal(None, 0, 1)[:, 0]
            clicked = u[:, U_CLICK] < click_probability(a0, cfg)
            pos = clicked.astype(np.int64) - 1
        else:
            imp_all = self.impressions(np.repeat(users, k), np.repeat(times, k), slots.reshape(-1))
            a0k = imp_all.appeal(None, 0, 1)[:, 0].reshape(b, k)
            examine = EXAMINE_DECAY ** np.arange(k)
            hit = u[:, U_CLICK : U_CLICK + k] < examine * click_probability(a0k, cfg)
            clicked = hit.any(axis=1)
            pos = np.where(clicked, hit.argmax(axis=1), -1)
            chosen = np.where(clicked, pos, 0)
            imp = imp_all.take(np.arange(b) * k + chosen)
            a0, shown = a0k[np.arange(b), chosen], slots[np.arange(b), chosen]
        fb, watch = sample_feedback(imp, a0, clicked, u, cfg)
        self._apply(users, times, shown, fb, watch, clicked, u, drift)
        rt = self.rooms.t
        return Served(
            feedback=fb,
            clicked_pos=pos,
            watch_s=watch,
            slate_rooms=rt.room_id[slots],
            slate_streamers=rt.streamer[slots],
            slate_phase=self.rooms.phase(slots, times[:, None]),
            slate_new_streamer=(times[:, None] - self.streamers.join_t[rt.streamer[slots]])
            < cfg.streamers.new_days * DAY_S,
            user_cohort=self.cohort(users, times),
        )

    def _apply(
        self,
        users: np.ndarray,
        times: np.ndarray,
        slots: np.ndarray,
        fb: np.ndarray,
        watch: np.ndarray,
        clicked: np.ndarray,
        u: np.ndarray,
        drift: np.ndarray,
    ) -> None:
        """The lasting effects of the served batch on users, follows and sessions."""
        ucfg, us, rt = self.cfg.users, self.users, self.rooms.t
        st = rt.streamer[slots]
        c = np.flatnonzero(clicked)
        if len(c):
            uc, sc = users[c], slots[c]
            self.history.append(uc, st[c], rt.obs[sc], fb[c], times[c])
            seg = rt.content[sc, (times[c] // SEGMENT_S).astype(np.int64) % self.rooms.ring]
            us.boredom[uc] = (1 - ucfg.boredom_rate) * us.boredom[uc] + ucfg.boredom_rate * seg
            for i in np.flatnonzero(fb[:, 4] > 0).tolist():
                self.add_follow(int(users[i]), int(st[i]))
        x = us.interest[users] + drift  # drift: normals scaled by the draw stream
        x *= (1.0 / np.sqrt(np.einsum("nd,nd->n", x, x)))[:, None]
        us.interest[users] = x
        sat = np.log1p(fb[:, 1]) + fb[:, 2] + fb[:, 3] + 2 * fb[:, 4] + (fb[:, 5] > 0)
        us.session_requests[users] += 1
        us.session_value[users] += sat
        p_go_on = ucfg.session_continue * np.where(clicked, 1.0, 0.8)
        go_on = (u[:, U_CONTINUE] < p_go_on) & (
            us.session_requests[users] < ucfg.max_session_requests
        )
        nxt = np.flatnonzero(go_on)
        gap = -ucfg.gap_mean_s * np.log1p(-u[nxt, U_GAP])
        t_next = times[nxt] + watch[nxt] + gap + 1e-3
        if self.postpone:
            behind = t_next < self.clock
            if behind.any():
                late = self.clock - t_next[behind]
                t_next[behind] += SEGMENT_S * np.maximum(np.ceil(late / SEGMENT_S), 1.0)
        self.queue.push_many(t_next, users[nxt])
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
            + self.rooms.nbytes()
            + self.history.nbytes()
        )


__all__ = [
    "N_OBJECTIVES",
    "ROOM_STAT_COLUMNS",
    "STREAMER_COHORTS",
    "USER_COHORTS",
    "Served",
    "World",
]
