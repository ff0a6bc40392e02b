"""Live rooms: broadcasts with a lifecycle and content that drifts.

Content is a latent vector per 30-second segment. A room's next segments are
generated ahead into a ring buffer (``content[slot, g % L]`` holds the segment
of global tick ``g``), so a viewer's whole watch can be answered at the time
of the impression against the content that will really play. Each clock tick
appends one segment per live room: a Markov switch between content types
(drawn from the streamer's category mix) and a random walk within a type.
"""

from __future__ import annotations

import numpy as np

from liveenv.config import EnvConfig
from liveenv.population import Archetypes, unit
from liveenv.rhythm import SEGMENT_S
from liveenv.soa import SoA

PHASES = ("warmup", "peak", "decline")


class Rooms:
    """A pool of room slots (struct of arrays) holding the broadcasts live now."""

    def __init__(self, cfg: EnvConfig, arch: Archetypes, capacity: int):
        self.cfg, self.arch = cfg, arch
        self.ring = cfg.response.max_watch_segments + 2
        d, o = cfg.latent_dim, cfg.obs_dim
        self.t = SoA(
            capacity,
            {
                "live": ((), np.bool_, False),
                "room_id": ((), np.int64, -1),
                "streamer": ((), np.int64, -1),
                "start_t": ((), np.float64, 0.0),
                "end_t": ((), np.float64, 0.0),
                "type": ((), np.int32, 0),
                "walk": ((d,), np.float32, 0.0),
                "anchor": ((d,), np.float32, 0.0),
                "noise": ((o,), np.float32, 0.0),
                "content": ((self.ring, d), np.float32, 0.0),
                "bias": ((self.ring,), np.float32, 0.0),
                "log_quality": ((), np.float32, 0.0),
                "obs": ((o,), np.float32, 0.0),
                "stats": ((4,), np.float32, 0.0),
            },
        )
        self.t.n = self.t.capacity  # every row is a slot; `live` says which are used
        self.next_room_id = 0

    # ----- lifecycle -----------------------------------------------------
    def live_slots(self) -> np.ndarray:
        return np.flatnonzero(self.t.live)

    def start(
        self, streamers: np.ndarray, start_t: np.ndarray, end_t: np.ndarray, tick: int,
        mix: np.ndarray, style: np.ndarray, quality: np.ndarray, rng: np.random.Generator,
    ) -> np.ndarray:  # fmt: skip
        """Open rooms for ``streamers`` and generate their content from ``tick``."""
        slots = self._free_slots(len(streamers))
        t = self.t
        t.live[slots] = True
        t.room_id[slots] = self.next_room_id + np.arange(len(slots))
        self.next_room_id += len(slots)
        t.streamer[slots], t.start_t[slots], t.end_t[slots] = streamers, start_t, end_t
        t.log_quality[slots] = np.log(quality)
        t.noise[slots] = rng.standard_normal((len(slots), self.cfg.obs_dim)) * (
            self.cfg.streamers.room_noise / np.sqrt(self.cfg.obs_dim)
        )
        self._fill(slots, tick, mix, style, rng)
        return slots

    def end_due(self, now: float) -> np.ndarray:
        """Close every live room whose broadcast has ended by ``now``."""
        done = np.flatnonzero(self.t.live & (self.t.end_t <= now))
        self.t.live[done] = False
        return done

    def _free_slots(self, count: int) -> np.ndarray:
        free = np.flatnonzero(~self.t.live)
        if len(free) < count:
            self.t.n = self.t.capacity
            self.t.append(count - len(free) + self.t.capacity)
            self.t.n = self.t.capacity
            free = np.flatnonzero(~self.t.live)
        return free[:count]

    # ----- content -------------------------------------------------------
    def _fill(self, slots: np.ndarray, tick: int, mix: np.ndarray, style: np.ndarray,
              rng: np.random.Generator) -> None:  # fmt: skip
        """Generate the ring's ``L`` segments (global ticks ``tick .. tick+L-1``)."""
        scfg, n, d, L = self.cfg.streamers, len(slots), self.cfg.latent_dim, self.ring
        cand = _draw_types(mix, rng.random((n, L)))  # (n, L) type if a switch happens here
        switch = rng.random((n, L)) < scfg.content_switch_prob
        switch[:, 0] = True
        last = np.maximum.accumulate(np.where(switch, np.arange(L), 0), axis=1)  # (n, L)
        types = np.take_along_axis(cand, last, axis=1)
        walk = np.cumsum(rng.standard_normal((n, L, d)) * (scfg.drift_rate / np.sqrt(d)), axis=1)
        anchor = np.take_along_axis(walk, last[..., None], axis=1)
        latent = self._latent(types, style[:, None, :], walk - anchor)  # (n, L, d)
        ticks = tick + np.arange(L)
        order = ticks % L
        self.t.content[slots[:, None], order[None, :]] = latent
        self.t.bias[slots[:, None], order[None, :]] = self.segment_bias(
            slots[:, None], ticks[None, :]
        )
        self.t.type[slots] = types[:, -1]
        self.t.walk[slots] = walk[:, -1]
        self.t.anchor[slots] = anchor[:, -1]

    def advance(self, tick: int, mix: np.ndarray, style: np.ndarray, slots: np.ndarray,
                rng: np.random.Generator) -> None:  # fmt: skip
        """Append the segment of global tick ``tick + L - 1`` to every live room."""
        scfg, n, d = self.cfg.streamers, len(slots), self.cfg.latent_dim
        if n == 0:
            return
        t = self.t
        switch = rng.random(n) < scfg.content_switch_prob
        new_type = _draw_types(mix, rng.random((n, 1)))[:, 0]
        types = np.where(switch, new_type, t.type[slots])
        walk = t.walk[slots] + rng.standard_normal((n, d)).astype(np.float32) * (
            scfg.drift_rate / np.sqrt(d)
        )
        anchor = np.where(switch[:, None], walk, t.anchor[slots])
        t.type[slots], t.walk[slots], t.anchor[slots] = types, walk, anchor
        g = tick + self.ring - 1
        t.content[slots, g % self.ring] = self._latent(types, style, walk - anchor)
        t.bias[slots, g % self.ring] = self.segment_bias(slots, np.int64(g))

    def segment_bias(self, slots: np.ndarray, ticks: np.ndarray) -> np.ndarray:
        """Quality + lifecycle appeal of the segments starting at global ``ticks``."""
        progress = self.progress(slots, ticks * SEGMENT_S)
        return self.cfg.response.quality_weight * self.t.log_quality[slots] + phase_penalty(
            progress, self.cfg
        )

    def _latent(self, types: np.ndarray, style: np.ndarray, drift: np.ndarray) -> np.ndarray:
        base = self.arch.type_protos[types] + self.cfg.streamers.style_weight * style
        return unit(base + drift).astype(np.float32)

    def current_latent(self, slots: np.ndarray, tick: int) -> np.ndarray:
        return self.t.content[slots, tick % self.ring]

    def observe(self, slots: np.ndarray, tick: int, rng: np.random.Generator) -> None:
        """Refresh the observed (noisy, projected) embedding of the current segment."""
        o = self.cfg.obs_dim
        latent = self.current_latent(slots, tick)
        noise = rng.standard_normal((len(slots), o)) * (self.cfg.streamers.obs_noise / np.sqrt(o))
        self.t.obs[slots] = unit(latent @ self.arch.projection.T + self.t.noise[slots] + noise)

    # ----- lifecycle phase -------------------------------------------------
    def progress(self, slots: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """Share of the planned broadcast elapsed at ``t``."""
        start, end = self.t.start_t[slots], self.t.end_t[slots]
        return np.clip((t - start) / np.maximum(end - start, SEGMENT_S), 0.0, 1.0)

    def phase(self, slots: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """0 warm-up, 1 peak, 2 decline (see :data:`PHASES`)."""
        return phase_of(self.progress(slots, t), self.cfg)


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
