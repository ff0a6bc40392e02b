"""Plain, loop-by-loop reference of :mod:`liveenv.response` for the tests.

Slow and obvious on purpose: one impression at a time, one boundary at a
time, sequential Bernoulli leave decisions written as the cumulative-hazard
draw the fast path uses (the two are the same distribution; this form lets
the tests compare draw for draw).
"""

from __future__ import annotations

import math

import numpy as np

from liveenv.config import EnvConfig
from liveenv.response import (
    U_BOUNCE,
    U_BOUNCE_T,
    U_COMMENT,
    U_FOLLOW,
    U_GIFT,
    U_LEAVE,
    U_LIKE,
    U_PRICE,
    Impressions,
)  # fmt: skip
from liveenv.rhythm import SEGMENT_S


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def appeal_reference(imp: Impressions, i: int, k: int, cfg: EnvConfig) -> float:
    tick = math.floor(imp.t[i] / SEGMENT_S)
    pos = (tick + k) % imp.content.shape[1]
    seg = imp.content[imp.slot[i], pos]
    a = sum(float(x) * float(y) for x, y in zip(imp.vec[i], seg, strict=True))
    return a + float(imp.bias[imp.slot[i], pos]) + imp.follow_bonus * float(imp.followed[i])


def room_bias_reference(seg_start: float, start: float, end: float, quality: float,
                        cfg: EnvConfig) -> float:  # fmt: skip
    """The quality + lifecycle term of a segment starting at ``seg_start``."""
    r, s = cfg.response, cfg.streamers
    prog = min(max((seg_start - start) / max(end - start, SEGMENT_S), 0.0), 1.0)
    warm = min(max(1.0 - prog / max(s.warmup_share, 1e-9), 0.0), 1.0)
    dec = min(max((prog - s.decline_start) / max(1.0 - s.decline_start, 1e-9), 0.0), 1.0)
    return r.quality_weight * math.log(quality) - r.phase_weight * (warm + dec)


def sample_reference(imp: Impressions, i: int, u: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    """Feedback vector of clicked impression ``i`` with uniforms ``u``."""
    r = cfg.response
    tick = math.floor(imp.t[i] / SEGMENT_S)
    tau = (tick + 1) * SEGMENT_S - imp.t[i]
    rest = imp.end_t[i] - imp.t[i] - tau
    n_b = min(math.ceil(max(rest, 0.0) / SEGMENT_S), r.max_watch_segments)
    full = max(min(imp.end_t[i] - imp.t[i], tau + SEGMENT_S * (r.max_watch_segments - 1)), 0.0)
    a0 = appeal_reference(imp, i, 0, cfg)
    appeals = [a0]
    pull = float(imp.gift_pull[i])
    bias = r.leave_bias + r.gift_hold_cost * math.log(pull)
    if u[U_BOUNCE] < _sig(r.bounce_bias - r.bounce_slope * a0):
        watch = min(-r.bounce_mean_s * math.log1p(-u[U_BOUNCE_T]), tau, full)
    else:
        need, total, watch = -math.log(max(u[U_LEAVE], 1e-300)), 0.0, full
        for k in range(1, n_b + 1):
            a = appeal_reference(imp, i, k, cfg)
            total += -math.log1p(-_sig(bias - r.leave_slope * a))
            if total >= need:
                watch = tau + SEGMENT_S * (k - 1)
                break
            appeals.append(a)
    mean_a = sum(appeals) / len(appeals)
    boost = math.exp(r.engagement_slope * mean_a)
    rates = [
        r.like_per_min * imp.like_prop[i] * boost,
        r.comment_per_min * imp.comment_prop[i] * boost,
        r.follow_per_min * boost * (not imp.followed[i]),
        r.gift_per_min * imp.gift_prop[i] * pull * boost,
    ]
    minutes = watch / 60.0
    hit = [u[c] < 1 - math.exp(-rate * minutes) for c, rate in
           zip((U_LIKE, U_COMMENT, U_FOLLOW, U_GIFT), rates, strict=True)]  # fmt: skip
    price = 0.0
    if hit[3]:
        cdf = np.cumsum(r.gift_price_probs)
        price = r.gift_prices[
            min(int(np.searchsorted(cdf, u[U_PRICE], side="right")), len(cdf) - 1)
        ]
    return np.array([1.0, minutes, hit[0], hit[1], hit[2], price])
