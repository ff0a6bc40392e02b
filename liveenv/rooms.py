"""Live rooms: broadcasts with a lifecycle and content that drifts.

Content is a latent vector per 30-second segment. A room's segments are
generated ahead into a ring buffer (``content[slot, g % L]`` holds the segment
of global tick ``g``), so a viewer's whole watch can be answered at the time
of the impression against the content that will really play. Each segment is
a Markov switch between content types (drawn from the streamer's category
mix) and a random walk within a type.

Gaussian noise (the drift steps of the content and the per-segment noise of
the observed embedding) comes from a per-world table of ``BANK_ROWS`` normal
vectors, centred and whitened (exactly zero mean and identity covariance),
indexed by one random integer per segment: the same distribution to second
order at a thirtieth of the cost of drawing 16 fresh normals per segment.

The rooms do not depend on the viewers (nobody's watching changes a room), so
they are simulated in *blocks* of ``block`` ticks (30 minutes by default): at
the first tick of a block, :meth:`Rooms.prepare_block` opens the slots of the
broadcasts that start during the block, extends every room's content so that
``max_watch_segments`` segments beyond the block are known, and draws the
observed embedding and the live statistics of every room for every tick of
the block. :meth:`Rooms.enter_tick` then only flips rooms on and off and
points ``t.obs`` / ``t.stats`` at the tick's column (no copy). All of it uses
the rooms' own random stream, so the same seed gives the same rooms whatever
the recommender does (common random numbers across policies).
"""

from __future__ import annotations

import numpy as np

from liveenv.config import EnvConfig
from liveenv.population import Archetypes
from liveenv.rhythm import SEGMENT_S, user_rhythm
from liveenv.schedule import BroadcastPlan
from liveenv.soa import SoA

PHASES = ("warmup", "peak", "decline")
BLOCK_TICKS = 60  # ticks simulated per block of the room process (30 minutes)
BANK_ROWS = 1 << 16  # normal vectors in a world's noise table
STAT_SCALE = np.array([0.02, 0.01, 0.002])  # like, comment, gift rate per unit of quality x mood


class Rooms:
    """A pool of room slots (struct of arrays) holding the broadcasts live now.

    A slot holds one broadcast from the block in which it starts until the
    block after it ends; ``live`` says whether it is on air at the current tick.
    """

    def __init__(
        self, cfg: EnvConfig, arch: Archetypes, capacity: int, block: int = BLOCK_TICKS
    ) -> None:
        self.cfg, self.arch, self.block = cfg, arch, int(block)
        self.ahead = cfg.response.max_watch_segments
        self.ring = self.ahead + self.block + 2
        d, o = cfg.latent_dim, cfg.obs_dim
        self.t = SoA(
            capacity,
            {
                "live": ((), np.bool_, False),
                "room_id": ((), np.int64, -1),
                "streamer": ((), np.int64, -1),
                "start_t": ((), np.float64, 0.0),
                "end_t": ((), np.float64, 0.0),
                "start_tick": ((), np.int64, -1),
                "end_tick": ((), np.int64, -1),  # first tick off air; < block start: free
                "type": ((), np.int32, 0),
                "walk": ((d,), np.float32, 0.0),
                "anchor": ((d,), np.float32, 0.0),
                "noise": ((o,), np.float32, 0.0),
                "content": ((self.ring, d), np.float32, 0.0),
                "bias": ((self.ring,), np.float32, 0.0),
                "log_quality": ((), np.float32, 0.0),
            },
        )
        self.t.n = self.t.capacity  # every row is a slot; `live` says which are used
        self._protos = arch.type_protos.astype(np.float32)
        self._bank: np.ndarray | None = None  # drawn from the rooms' stream on first use
        self.next_room_id = 0
        self.block_start = -1  # first tick of the prepared block
        self._busy_tick = np.zeros(0, dtype=np.int64)  # per streamer: first tick it is free
        self._live = np.zeros(0, dtype=np.int64)
        self._starts: dict[int, np.ndarray] = {}
        self._ends: dict[int, np.ndarray] = {}
        self._alloc_blocks()
        self.t.obs, self.t.stats = self._obs_blk[:, 0], self._stats_blk[:, 0]

    def _alloc_blocks(self) -> None:
        cap, g = self.t.capacity, self.block
        self._obs_blk = np.zeros((cap, g, self.cfg.obs_dim), dtype=np.float32)
        self._stats_blk = np.zeros((cap, g, 4), dtype=np.float32)

    def nbytes(self) -> int:
        return self.t.nbytes() + self._obs_blk.nbytes + self._stats_blk.nbytes

    # ----- per tick -------------------------------------------------------
    def live_slots(self) -> np.ndarray:
        """Sorted slots on air at the current tick (do not modify)."""
        return self._live

    def enter_tick(self, tick: int, streamers: SoA) -> None:
        """Open and close the rooms of ``tick``; point ``t.obs``/``t.stats`` at it."""
        t, j = self.t, tick - self.block_start
        ends, starts = self._ends.pop(j, None), self._starts.pop(j, None)
        if ends is not None:
            t.live[ends] = False
            streamers.room[t.streamer[ends]] = -1
        if starts is not None:
            t.live[starts] = True
            streamers.room[t.streamer[starts]] = t.room_id[starts]
            streamers.n_broadcasts[t.streamer[starts]] += 1
        if ends is not None or starts is not None:
            self._live = np.flatnonzero(t.live)
        t.obs, t.stats = self._obs_blk[:, j], self._stats_blk[:, j]

    # ----- per block ------------------------------------------------------
    def prepare_block(
        self,
        b0: int,
        plan: BroadcastPlan,
        streamers: SoA,
        rng: np.random.Generator,
        mean_centre: np.ndarray,
    ) -> None:
        """Simulate the rooms of ticks ``b0 .. b0 + block - 1`` (see the module doc)."""
        g, t = self.block, self.t
        self.block_start = b0
        on_air = self._live  # on air at the tick before the block (some end at b0)
        carried = on_air[t.end_tick[on_air] > b0]
        st, start_t, end_t, s_tick, e_tick = self._accept(b0, plan, streamers.n)
        slots = self._free_slots(len(st), b0)
        n = len(slots)
        t.room_id[slots] = self.next_room_id + np.arange(n)
        self.next_room_id += n
        t.streamer[slots], t.start_t[slots], t.end_t[slots] = st, start_t, end_t
        t.start_tick[slots], t.end_tick[slots] = s_tick, e_tick
        t.log_quality[slots] = np.log(streamers.quality[st])
        t.noise[slots] = rng.standard_normal((n, self.cfg.obs_dim)).astype(np.float32) * (
            self.cfg.streamers.room_noise / np.sqrt(self.cfg.obs_dim)
        )
        # content must be known up to `ahead` ticks past the block, or to the room's end
        last = np.minimum(b0 + g - 1 + self.ahead, t.end_tick - 1)
        first_old = b0 + self.ahead  # the previous block generated up to just before it
        grow = carried[last[carried] >= first_old]
        self._extend(grow, np.full(len(grow), first_old), last[grow], False, streamers, rng)
        self._extend(slots, s_tick, last[slots], True, streamers, rng)
        self._observe_block(np.concatenate([carried, slots]), b0, streamers, rng, mean_centre)
        self._starts = _group_by(slots, s_tick - b0)
        ending = np.concatenate([on_air, slots])
        ending = ending[t.end_tick[ending] < b0 + g]
        self._ends = _group_by(ending, t.end_tick[ending] - b0)

    def _accept(self, b0: int, plan: BroadcastPlan, n_streamers: int):
        """Broadcasts starting in the block, one at a time per streamer."""
        st, start, end = plan.pop_before((b0 + self.block - 1) * SEGMENT_S + 1e-6)
        s_tick = np.maximum(np.ceil(start / SEGMENT_S).astype(np.int64), b0)
        e_tick = np.ceil(end / SEGMENT_S).astype(np.int64)
        if len(self._busy_tick) < n_streamers:
            grown = np.zeros(n_streamers, dtype=np.int64)
            grown[: len(self._busy_tick)] = self._busy_tick
            self._busy_tick = grown
        busy, keep = self._busy_tick, np.zeros(len(st), dtype=bool)
        for i, (s, a, e) in enumerate(
            zip(st.tolist(), s_tick.tolist(), e_tick.tolist(), strict=True)
        ):
            if e > a and a >= busy[s]:  # the plan spaces broadcasts, so this rarely refuses
                keep[i] = True
                busy[s] = e
        return st[keep], start[keep], end[keep], s_tick[keep], e_tick[keep]

    def _free_slots(self, count: int, b0: int) -> np.ndarray:
        free = np.flatnonzero(self.t.end_tick < b0)
        if len(free) < count:
            self.t.n = self.t.capacity
            self.t.append(count - len(free) + self.t.capacity)
            self.t.n = self.t.capacity
            self._alloc_blocks()
            free = np.flatnonzero(self.t.end_tick < b0)
        return free[:count]

    def _extend(
        self,
        slots: np.ndarray,
        first: np.ndarray,
        last: np.ndarray,
        fresh: bool,
        streamers: SoA,
        rng: np.random.Generator,
    ) -> None:
        """Generate the segments of ticks ``first[i] .. last[i]`` of each room.

        A ``fresh`` room starts with a content switch and no drift; otherwise the
        room continues from its stored type, walk and anchor. Rooms that are not
        fresh share ``first``, so their segments are written as one rectangle
        (columns past a room's ``last`` land on ring entries of ticks long past).
        Arrays are laid out (segment, room, dim) so the walk's running sum is
        one vector add per segment."""
        n = len(slots)
        if n == 0:
            return
        scfg, d, L, t = self.cfg.streamers, self.cfg.latent_dim, self.ring, self.t
        count = last - first + 1  # segments each room needs
        m = int(count.max())
        st = t.streamer[slots]
        switch = rng.random((m, n)) < scfg.content_switch_prob
        walk = self._normals(rng, (m, n), d)  # (m, n, d) steps, then their running sum
        walk *= np.float32(scfg.drift_rate / np.sqrt(d))
        if fresh:
            switch[0] = True
        else:
            walk[0] += t.walk[slots]
        if n * d >= 512:  # many rooms: one vector add per segment beats numpy's cumsum
            for c in range(1, m):
                walk[c] += walk[c - 1]
        else:
            np.cumsum(walk, axis=0, out=walk)
        sw = np.flatnonzero(switch.ravel())
        picked = np.zeros(m * n, dtype=np.int32)
        picked[sw] = _draw_types(streamers.mix[st[sw % n]], rng.random((len(sw), 1)))[:, 0]
        at = np.maximum.accumulate(np.where(switch, np.arange(m)[:, None], -1), axis=0)
        has = at >= 0
        flat = (np.maximum(at, 0) * n + np.arange(n)).ravel()  # where the last switch was
        types = np.where(has, picked[flat].reshape(m, n), t.type[slots])
        anchor = np.where(
            has[..., None], walk.reshape(m * n, d)[flat].reshape(m, n, d), t.anchor[slots]
        )
        latent = self._protos[types]  # (m, n, d)
        latent += np.float32(scfg.style_weight) * streamers.style[st]
        latent += walk
        latent -= anchor
        latent *= (
            1.0 / np.maximum(np.sqrt(np.einsum("mnd,mnd->mn", latent, latent)), 1e-12)[..., None]
        )
        col = np.arange(m)
        if fresh:
            cols, rows = np.nonzero(col[:, None] < count[None, :])
            ticks = first[rows] + cols
            t.content[slots[rows], ticks % L] = latent[cols, rows]
            t.bias[slots[rows], ticks % L] = self.segment_bias(slots[rows], ticks)
        else:
            ticks = first[0] + col
            t.content[slots[None, :], (ticks % L)[:, None]] = latent
            t.bias[slots[None, :], (ticks % L)[:, None]] = self.segment_bias(
                slots[None, :], ticks[:, None]
            )
        end, r = count - 1, np.arange(n)
        t.type[slots], t.walk[slots], t.anchor[slots] = types[end, r], walk[end, r], anchor[end, r]

    def _observe_block(
        self,
        slots: np.ndarray,
        b0: int,
        streamers: SoA,
        rng: np.random.Generator,
        mean_centre: np.ndarray,
    ) -> None:
        """Observed embeddings and live statistics of ``slots`` for every tick of the block."""
        cfg, t, g, o = self.cfg, self.t, self.block, self.cfg.obs_dim
        n = len(slots)
        if n == 0:
            return
        ticks = b0 + np.arange(g)
        latent = t.content[slots[:, None], (ticks % self.ring)[None, :]]  # (n, g, d)
        seen = self._normals(rng, (n, g), o)
        seen *= np.float32(cfg.streamers.obs_noise / np.sqrt(o))
        seen += latent @ self.arch.projection.T
        seen += t.noise[slots][:, None, :]
        seen *= 1.0 / np.maximum(np.sqrt(np.einsum("ngo,ngo->ng", seen, seen)), 1e-12)[..., None]
        self._obs_blk[slots] = seen
        st = t.streamer[slots]
        now = ticks * SEGMENT_S
        prog = self.progress(slots[:, None], now[None, :])
        mood = np.exp(2.0 * (latent @ mean_centre.astype(np.float32)) + phase_penalty(prog, cfg))
        expected = 0.05 * streamers.fans[st][:, None] * user_rhythm(now)[None, :] * mood
        stats = np.empty((n, g, 4), dtype=np.float32)
        stats[..., 0] = np.log1p(rng.poisson(expected))
        noise = rng.standard_normal((n, g, 3), dtype=np.float32)
        noise *= np.float32(0.3)
        stats[..., 1:] = np.exp(noise, out=noise)
        stats[..., 1:] *= (streamers.quality[st][:, None] * mood)[..., None]
        stats[..., 1:] *= STAT_SCALE.astype(np.float32)
        stats[..., 3] *= streamers.gift_pull[st][:, None]  # rooms that pull gifts show it
        self._stats_blk[slots] = stats

    def _normals(self, rng: np.random.Generator, shape: tuple[int, int], dim: int) -> np.ndarray:
        """``(*shape, dim)`` float32 standard normal vectors from the noise table."""
        if self._bank is None or self._bank.shape[1] < dim:
            d = max(dim, self.cfg.latent_dim, self.cfg.obs_dim)
            z = rng.standard_normal((BANK_ROWS, d))
            z -= z.mean(axis=0)
            chol = np.linalg.cholesky(z.T @ z / BANK_ROWS)
            self._bank = np.ascontiguousarray(np.linalg.solve(chol, z.T).T, dtype=np.float32)
        idx = rng.integers(0, BANK_ROWS, shape, dtype=np.int32)
        return np.take(self._bank[:, :dim], idx, axis=0)

    # ----- content ---------------------------------------------------------
    def segment_bias(self, slots: np.ndarray, ticks: np.ndarray) -> np.ndarray:
        """Quality + lifecycle appeal of the segments starting at global ``ticks``."""
        progress = self.progress(slots, ticks * SEGMENT_S)
        return self.cfg.response.quality_weight * self.t.log_quality[slots] + phase_penalty(
            progress, self.cfg
        )

    def current_latent(self, slots: np.ndarray, tick: int) -> np.ndarray:
        return self.t.content[slots, tick % self.ring]

    # ----- lifecycle phase -------------------------------------------------
    def progress(self, slots: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """Share of the planned broadcast elapsed at ``t``."""
        start, end = self.t.start_t[slots], self.t.end_t[slots]
        return np.clip((t - start) / np.maximum(end - start, SEGMENT_S), 0.0, 1.0)

    def phase(self, slots: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """0 warm-up, 1 peak, 2 decline (see :data:`PHASES`)."""
        return phase_of(self.progress(slots, t), self.cfg)


def _group_by(slots: np.ndarray, key: np.ndarray) -> dict[int, np.ndarray]:
    """``{k: slots with key k}`` (each group sorted by slot)."""
    if len(slots) == 0:
        return {}
    order = np.lexsort((slots, key))
    slots, key = slots[order], key[order]
    cut = np.flatnonzero(np.diff(key)) + 1
    return {int(k[0]): s for k, s in zip(np.split(key, cut), np.split(slots, cut), strict=True)}


def phase_of(progress: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    s = cfg.streamers
    return np.where(
        progress < s.warmup_share, 0, np.where(progress < s.decline_start, 1, 2)
    ).astype(np.int8)


def phase_penalty(progress: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    """Appeal lost to the lifecycle: ramps in warm-up, none at peak, grows in decline."""
    s = cfg.streamers
    warm = np.clip(1.0 - progress / max(s.warmup_share, 1e-9), 0.0, 1.0)
    decline = np.clip((progress - s.decline_start) / max(1.0 - s.decline_start, 1e-9), 0.0, 1.0)
    return -cfg.response.phase_weight * (warm + decline)


def _draw_types(mix: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Content types drawn from each row's category mix with uniforms ``u`` (n, m)."""
    cdf = np.cumsum(mix, axis=1)  # (n, T)
    cdf[:, -1] = 1.0
    return (u[:, :, None] > cdf[:, None, :]).sum(axis=2).astype(np.int32)
