"""Plain, loop-by-loop reference of :mod:`liveenv.response` for the tests.

Slow and obvious on purpose: one impression at a time, one boundary at a
time, sequential Bernoulli leave decisions written as the cumulative-hazard
draw the fast path uses (the two are the same distribution; this form lets
the tests compare draw for draw).

:func:`expected_feedback_reference` is the oracle's expectation as a numpy
loop over chunks of boundaries (the fast path before the numba kernel of
:mod:`liveenv.oracle`); it stays the reference the kernel is tested against
and the ``"reference"`` backend the benchmarks time it with.
"""

from __future__ import annotations

import math

import numpy as np

from liveenv.config import EnvConfig
from liveenv.objectives import N_OBJECTIVES
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
    bounce_probability,
    click_probability,
    hold_bias,
    interaction_rates,
    interaction_rates_grid,
    leave_hazard,
)
from liveenv.rhythm import SEGMENT_S


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def appeal_reference(imp: Impressions, i: int, k: int, cfg: EnvConfig) -> float:
    tick = math.floor(imp.t[i] / SEGMENT_S)
    pos = (tick + k) % imp.content.shape[1]
    seg = imp.content[imp.slot[i], pos]
    a = sum(float(x) * float(y) for x, y in zip(imp.vec[i], seg, strict=True))
    return a + float(imp.bias[imp.slot[i], pos]) + imp.follow_bonus * float(imp.followed[i])


def room_bias_reference(
    seg_start: float, start: float, end: float, quality: float, cfg: EnvConfig
) -> float:
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
    hit = [
        u[c] < 1 - math.exp(-rate * minutes)
        for c, rate in zip((U_LIKE, U_COMMENT, U_FOLLOW, U_GIFT), rates, strict=True)
    ]
    price = 0.0
    if hit[3]:
        cdf = np.cumsum(r.gift_price_probs)
        price = r.gift_prices[
            min(int(np.searchsorted(cdf, u[U_PRICE], side="right")), len(cdf) - 1)
        ]
    return np.array([1.0, minutes, hit[0], hit[1], hit[2], price])


def expected_feedback_reference(imp: Impressions, cfg: EnvConfig, tol: float = 1e-7) -> np.ndarray:
    """``(B, 6)`` exact expected feedback of each impression: the plain numpy loop
    that :mod:`liveenv.oracle`'s kernel is compared against (and was the fast path).

    The expectation runs over click, bounce and the leave boundary; the
    survival sum stops once every row's survival is below ``tol``.
    """
    b, r = len(imp.t), cfg.response
    rows = np.arange(b)
    a0 = imp.appeal(rows, 0, 1)[:, 0]
    tau, n_b, full = imp.first_boundary, imp.n_boundaries(cfg), imp.full_watch_s(cfg)
    # bounce: W = min(Exp(mu), cut)
    mu, cut = r.bounce_mean_s, np.minimum(tau, full)
    lam = interaction_rates(imp, a0, cfg) / 60.0  # (B, 4) per second
    decay = lam + 1.0 / mu
    surv_b = np.exp(-decay * cut[:, None])
    bounce_inter = 1.0 - ((1.0 / mu) / decay * (1.0 - surv_b) + surv_b)
    bounce_w = mu * (1.0 - np.exp(-cut / mu))
    # staying: leave at boundary k with prob S_{k-1} h_k, else watch to the end
    stay_w, stay_inter = np.zeros(b), np.zeros((b, 4))
    surv, a_sum = np.ones(b), a0.astype(np.float64)
    hold = hold_bias(imp.gift_pull, cfg)
    k, chunk = 1, 8
    while k <= max(int(n_b.max(initial=0)), 0) and surv.max() > tol:
        k1 = min(k + chunk, r.max_watch_segments + 1)
        ks = np.arange(k, k1)
        a = imp.appeal(rows, k, k1)  # (B, c)
        valid = ks[None, :] <= n_b[:, None]
        h = np.where(valid, leave_hazard(a, cfg, hold), 0.0)
        s_prev = surv[:, None] * np.concatenate([np.ones((b, 1)), np.cumprod(1 - h, 1)[:, :-1]], 1)
        p_leave = s_prev * h  # (B, c)
        mean_prev = (
            a_sum[:, None] + np.concatenate([np.zeros((b, 1)), np.cumsum(a, 1)[:, :-1]], 1)
        ) / ks
        w_k = tau[:, None] + SEGMENT_S * (ks - 1)
        stay_w += (p_leave * w_k).sum(1)
        lam_k = interaction_rates_grid(imp, mean_prev, cfg) / 60.0  # (B, c, 4)
        stay_inter += (p_leave[..., None] * (1 - np.exp(-lam_k * w_k[..., None]))).sum(1)
        surv = surv * np.prod(1 - h, axis=1)
        a_sum = a_sum + np.where(valid, a, 0.0).sum(1)
        k, chunk = k1, chunk * 2
    mean_end = a_sum / (n_b + 1)
    lam_end = interaction_rates(imp, mean_end, cfg) / 60.0
    stay_w += surv * full
    stay_inter += surv[:, None] * (1 - np.exp(-lam_end * full[:, None]))
    p_b = bounce_probability(a0, cfg)
    watch = p_b * bounce_w + (1 - p_b) * stay_w
    inter = p_b[:, None] * bounce_inter + (1 - p_b[:, None]) * stay_inter
    mean_price = float(np.dot(r.gift_prices, r.gift_price_probs))
    pc = click_probability(a0, cfg)
    out = np.empty((b, N_OBJECTIVES))
    out[:, 0] = pc
    out[:, 1] = pc * watch / 60.0
    out[:, 2:5] = pc[:, None] * inter[:, :3]
    out[:, 5] = pc * inter[:, 3] * mean_price
    return out
