"""How a viewer answers one impression: pure functions of the world's state.

For a batch of ``B`` impressions (one user, one room each):

* appeal of segment ``k`` (the one that plays after the ``k``-th 30-s boundary)
  ``a_k = u.c_k - w_b (b.c_k) + w_f followed + w_q log(quality) + phase_k``,
  the lifecycle term taken at the segment's start;
* click with ``sigmoid(click_bias + click_slope a_0)``;
* a clicked viewer bounces in the first seconds with
  ``sigmoid(bounce_bias - bounce_slope a_0)`` (watch ~ Exp(bounce_mean_s),
  cut at the first boundary), otherwise leaves at boundary ``k`` with hazard
  ``sigmoid(leave_bias + gift_hold_cost log(gift_pull) - leave_slope a_k)``:
  content that drifts away from the viewer after the click makes the viewer
  leave, and rooms that pull gifts (PK battles, selling) hold viewers less;
* the watch ends at the room's end or after ``max_watch_segments`` at most;
* like, comment, follow and gift each happen with ``1 - exp(-rate W)`` where
  ``W`` is the watch in minutes and the rate grows with ``exp(slope * mean
  appeal watched)``; the gift rate is also multiplied by the streamer's
  ``gift_pull``; a gift's price comes from the configured price table.

Without gift pull (``gift_pull_sigma = 0``, every pull 1) every objective rises
with the same appeal, so the rooms rank almost alike for gifts and for watch
time. A streamer's ``gift_pull`` (with ``gift_hold_cost > 0``) pulls the
objectives apart: such rooms draw more gifts per minute watched but keep
viewers for fewer minutes (``benchmarks/gift_tradeoff.py`` measures it).

Randomness enters only through the uniforms passed in (columns ``U_*``), so
the fast vectorised path and the plain reference (:func:`sample_reference`)
can be compared draw for draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liveenv.config import EnvConfig
from liveenv.objectives import N_OBJECTIVES
from liveenv.rhythm import SEGMENT_S

U_BOUNCE, U_BOUNCE_T, U_LEAVE, U_LIKE, U_COMMENT, U_FOLLOW, U_GIFT, U_PRICE = range(8)
U_CONTINUE, U_GAP, U_CLICK = 8, 9, 10
#: Uniforms used by one impression besides the per-slot click uniforms.
N_UNIFORMS = U_CLICK


@dataclass
class Impressions:
    """A batch of impressions: who sees which room when (arrays of length B).

    ``vec = interest - boredom_weight * boredom`` is the viewer's taste vector;
    ``bias[slot, g % L]`` holds the room's quality and lifecycle term for the
    segment of global tick ``g``, generated with the content.
    """

    t: np.ndarray  # (B,) request time, seconds
    vec: np.ndarray  # (B, d) interest minus weighted boredom
    like_prop: np.ndarray  # (B,)
    comment_prop: np.ndarray  # (B,)
    gift_prop: np.ndarray  # (B,)
    followed: np.ndarray  # (B,) bool: viewer follows the room's streamer
    gift_pull: np.ndarray  # (B,) gift pull of the room's streamer (1: none)
    end_t: np.ndarray  # (B,) broadcast end
    slot: np.ndarray  # (B,) room slot in the content ring
    content: np.ndarray  # (S, L, d) the rooms' content ring (read only)
    bias: np.ndarray  # (S, L) the rooms' quality + lifecycle ring (read only)
    follow_bonus: float = 0.0

    @property
    def tick(self) -> np.ndarray:
        return (self.t // SEGMENT_S).astype(np.int64)

    @property
    def first_boundary(self) -> np.ndarray:
        """Seconds from the request to the first 30-s boundary, in (0, 30]."""
        return (self.tick + 1) * SEGMENT_S - self.t

    def n_boundaries(self, cfg: EnvConfig) -> np.ndarray:
        """Boundaries a viewer can pass before the room ends or the cap."""
        rest = self.end_t - self.t - self.first_boundary
        n = np.ceil(np.maximum(rest, 0.0) / SEGMENT_S).astype(np.int64)
        return np.minimum(n, cfg.response.max_watch_segments)

    def full_watch_s(self, cfg: EnvConfig) -> np.ndarray:
        """Watch of a viewer who passes every boundary (room end or cap); 0 when the
        broadcast ended within the tick of the request (the table lists a room until the
        tick after its end)."""
        cap = self.first_boundary + SEGMENT_S * (cfg.response.max_watch_segments - 1)
        return np.maximum(np.minimum(self.end_t - self.t, cap), 0.0)

    def take(self, rows: np.ndarray) -> Impressions:
        """The impressions at ``rows`` (the rings are shared, not copied)."""
        return Impressions(
            t=self.t[rows],
            vec=self.vec[rows],
            like_prop=self.like_prop[rows],
            comment_prop=self.comment_prop[rows],
            gift_prop=self.gift_prop[rows],
            followed=self.followed[rows],
            gift_pull=self.gift_pull[rows],
            end_t=self.end_t[rows],
            slot=self.slot[rows],
            content=self.content,
            bias=self.bias,
            follow_bonus=self.follow_bonus,
        )

    def appeal(
        self, rows: np.ndarray | None, k0: int, k1: int, tick: np.ndarray | None = None
    ) -> np.ndarray:
        """``(len(rows), k1-k0)`` appeal of segments ``k0..k1-1`` after the request
        (``rows=None``: every impression; ``tick``: ``self.tick[rows]`` if known)."""
        if rows is None:
            slot, vec, followed = self.slot[:, None], self.vec, self.followed[:, None]
        else:
            slot, vec, followed = self.slot[rows, None], self.vec[rows], self.followed[rows, None]
        if tick is None:
            tick = self.tick if rows is None else self.tick[rows]
        idx = (tick[:, None] + np.arange(k0, k1)) % self.content.shape[1]
        match = np.einsum("nd,nkd->nk", vec, self.content[slot, idx])
        return match + self.bias[slot, idx] + self.follow_bonus * followed


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def click_probability(appeal0: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    return sigmoid(cfg.response.click_bias + cfg.response.click_slope * appeal0)


def bounce_probability(appeal0: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    return sigmoid(cfg.response.bounce_bias - cfg.response.bounce_slope * appeal0)


def leave_hazard(
    appeal: np.ndarray, cfg: EnvConfig, bias: float | np.ndarray | None = None
) -> np.ndarray:
    """Hazard of leaving at a boundary; ``bias``: the leave logit at zero appeal
    (:func:`hold_bias`), ``leave_bias`` when not given."""
    bias = cfg.response.leave_bias if bias is None else bias
    return sigmoid(bias - cfg.response.leave_slope * appeal)


def hold_bias(gift_pull: np.ndarray, cfg: EnvConfig) -> float | np.ndarray:
    """``(n, 1)`` leave logit at zero appeal, ``leave_bias + gift_hold_cost log(gift_pull)``,
    of rooms with these gift pulls; the plain ``leave_bias`` when the cost is 0."""
    r = cfg.response
    if r.gift_hold_cost == 0.0:
        return r.leave_bias
    log_pull = np.log(np.asarray(gift_pull, dtype=np.float64))
    return (r.leave_bias + r.gift_hold_cost * log_pull)[:, None]


def interaction_rates(imp: Impressions, mean_appeal: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    """``(B, 4)`` per-minute rates of like, comment, follow, gift."""
    return interaction_rates_grid(imp, mean_appeal[:, None], cfg)[:, 0, :]


def gift_price(u: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    cdf = np.cumsum(cfg.response.gift_price_probs)
    idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
    return np.asarray(cfg.response.gift_prices, dtype=np.float64)[idx]


def sample_watch(
    imp: Impressions, rows: np.ndarray, appeal0: np.ndarray, u: np.ndarray, cfg: EnvConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Watch seconds and mean appeal watched for the clicked ``rows``.

    ``u`` holds each row's uniforms. The leave boundary is the first ``k``
    whose cumulative hazard ``sum -log(1 - h_j)`` reaches ``-log(u_leave)``.
    """
    r, max_watch = cfg.response, cfg.response.max_watch_segments
    imp = imp.take(rows)
    tick, tau = imp.tick, imp.first_boundary  # tau: to the first boundary, in (0, 30]
    n_b, full = imp.n_boundaries(cfg), imp.full_watch_s(cfg)
    watch = np.minimum(np.minimum(-r.bounce_mean_s * np.log1p(-u[:, U_BOUNCE_T]), tau), full)
    mean_a = appeal0.astype(np.float64)
    stay = u[:, U_BOUNCE] >= bounce_probability(appeal0, cfg)  # did not bounce
    watch[stay] = full[stay]  # until the end, unless the viewer leaves at a boundary
    alive = np.flatnonzero(stay & (n_b > 0))
    need = -np.log(np.maximum(u[alive, U_LEAVE], 1e-300))
    hazard_sum = np.zeros(len(alive))
    appeal_sum = mean_a[alive]
    k, chunk = 1, 16  # boundaries 1..16 first (most viewers leave by then)
    while len(alive):
        nb = n_b[alive]
        k1 = min(k + chunk, int(nb.max()) + 1)
        a = imp.appeal(alive, k, k1, tick[alive])  # (m, c)
        ks = np.arange(k, k1)
        valid = ks <= nb[:, None]
        bias = hold_bias(imp.gift_pull[alive], cfg)
        h = np.logaddexp(0.0, bias - r.leave_slope * a)  # -log(1 - leave_hazard)
        h *= valid
        cum_h = np.cumsum(h, axis=1)
        cum_h += hazard_sum[:, None]
        hit = cum_h >= need[:, None]
        hit &= valid
        left = hit.any(axis=1)
        done = ~left & (nb < k1)  # passed every boundary before the room's end or the cap
        if left.any():
            li = np.flatnonzero(left)
            j = hit[li].argmax(axis=1)
            idx = alive[li]
            watch[idx] = tau[idx] + SEGMENT_S * (ks[j] - 1)
            before = np.cumsum(a[li], axis=1)[np.arange(len(li)), np.maximum(j - 1, 0)]
            mean_a[idx] = (appeal_sum[li] + np.where(j > 0, before, 0.0)) / ks[j]
        if done.any():
            di = np.flatnonzero(done)
            idx = alive[di]
            mean_a[idx] = (appeal_sum[di] + (a[di] * valid[di]).sum(axis=1)) / (n_b[idx] + 1)
        keep = np.flatnonzero(~(left | done))
        alive, need = alive[keep], need[keep]
        hazard_sum, appeal_sum = cum_h[keep, -1], appeal_sum[keep] + a[keep].sum(axis=1)
        k, chunk = k1, max_watch  # the long watches left: all their boundaries at once
    return watch, mean_a


def sample_feedback(
    imp: Impressions, appeal0: np.ndarray, clicked: np.ndarray, u: np.ndarray, cfg: EnvConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(B, 6)`` feedback vectors (see :data:`liveenv.objectives.OBJECTIVES`)
    and ``(B,)`` watch seconds, for impressions already decided to be clicked or not."""
    b = len(imp.t)
    fb = np.zeros((b, N_OBJECTIVES))
    watch_s = np.zeros(b)
    rows = np.flatnonzero(clicked)
    if len(rows) == 0:
        return fb, watch_s
    ur = u[rows]
    w, mean_a = sample_watch(imp, rows, appeal0[rows], ur, cfg)
    minutes = w / 60.0
    rates = interaction_rates_of(
        imp.like_prop[rows],
        imp.comment_prop[rows],
        imp.gift_prop[rows],
        imp.followed[rows],
        mean_a,
        cfg,
        imp.gift_pull[rows],
    )
    p = -np.expm1(-rates * minutes[:, None])  # (n, 4)
    happened = ur[:, U_LIKE : U_GIFT + 1] < p
    out = fb[rows]
    out[:, 0] = 1.0
    out[:, 1] = minutes
    out[:, 2:5] = happened[:, :3]
    out[:, 5] = np.where(happened[:, 3], gift_price(ur[:, U_PRICE], cfg), 0.0)
    fb[rows] = out
    watch_s[rows] = w
    return fb, watch_s


def interaction_rates_of(
    like_prop: np.ndarray,
    comment_prop: np.ndarray,
    gift_prop: np.ndarray,
    followed: np.ndarray,
    mean_appeal: np.ndarray,
    cfg: EnvConfig,
    gift_pull: np.ndarray,
) -> np.ndarray:
    """``(n, 4)`` per-minute rates of like, comment, follow, gift of ``n`` viewers
    (``gift_pull``: of the rooms' streamers)."""
    r = cfg.response
    out = np.empty((len(mean_appeal), 4))
    out[:, 0] = r.like_per_min * like_prop
    out[:, 1] = r.comment_per_min * comment_prop
    out[:, 2] = r.follow_per_min * ~followed
    out[:, 3] = r.gift_per_min * gift_prop
    out[:, 3] *= gift_pull
    out *= np.exp(r.engagement_slope * mean_appeal)[:, None]
    return out


def expected_feedback(imp: Impressions, cfg: EnvConfig, tol: float | None = None) -> np.ndarray:
    """``(B, 6)`` exact expected feedback of each impression (the oracle's view).

    The expectation runs over click, bounce and the leave boundary; computed by
    :func:`liveenv.oracle.expected_feedback` (a numba kernel, or the numpy
    reference :func:`liveenv.reference.expected_feedback_reference` when that
    backend is chosen).
    """
    from liveenv.oracle import expected_feedback as _expected

    return _expected(imp, cfg, tol)


def interaction_rates_grid(imp: Impressions, mean_appeal: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    """:func:`interaction_rates` for a ``(B, c)`` grid of mean appeals -> ``(B, c, 4)``."""
    r = cfg.response
    boost = np.exp(r.engagement_slope * mean_appeal)[..., None]
    base = np.stack(
        [
            r.like_per_min * imp.like_prop,
            r.comment_per_min * imp.comment_prop,
            r.follow_per_min * ~imp.followed,
            r.gift_per_min * imp.gift_prop * imp.gift_pull,
        ],
        axis=-1,
    )
    return base[:, None, :] * boost
