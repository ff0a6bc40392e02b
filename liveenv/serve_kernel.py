"""The batched path's response draws as a numba kernel.

:func:`sample_feedback` answers a batch of impressions whose click is already
decided: for each clicked one, the bounce, the leave boundary (the first
boundary whose cumulative hazard reaches ``-log(u_leave)``), the mean appeal
watched, and the like, comment, follow and gift draws, from the same uniforms
(columns ``U_*`` of :mod:`liveenv.response`) as the plain numpy path
:func:`liveenv.response.sample_feedback`, which stays beside it as the
reference (the ``"reference"`` backend).

Why a kernel: the numpy path gathers the appeal of every boundary of every
viewer still watching, in chunks, with some 60 numpy calls per batch of about
50 clicks; the kernel walks each viewer boundary by boundary and stops where
the viewer leaves (``benchmarks/batched_day.py`` times both).

The two backends agree draw for draw up to rounding: the kernel sums each
appeal's dot product in float64, the numpy path in the content's float32
(``numpy.einsum``), so on float32 content a viewer whose cumulative hazard
lands within rounding of its threshold may leave one boundary apart. With
float64 inputs they agree exactly on every decision
(``tests/liveenv/test_serve_kernel.py``).

The backend is ``"kernel"`` unless the environment variable ``LIVEENV_SERVE``
is ``"reference"`` when this module is imported, or :func:`use_backend`
switches it. numba is imported on the first call only; the compiled kernel is
cached on disk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveenv.config import EnvConfig
from liveenv.kernels import Backend, LazyKernel, hold_logit, segment_appeal, watch_window
from liveenv.objectives import N_OBJECTIVES
from liveenv.response import (
    U_BOUNCE,
    U_BOUNCE_T,
    U_GIFT,
    U_LEAVE,
    U_LIKE,
    U_PRICE,
    Impressions,
)
from liveenv.response import sample_feedback as sample_feedback_reference
from liveenv.rhythm import SEGMENT_S

_ENV_VAR = "LIVEENV_SERVE"
_BACKEND = Backend("serve", _ENV_VAR)
#: The backend in use now, and a block that uses another (``kernels.Backend``).
backend, use_backend = _BACKEND.get, _BACKEND.use


def sample_feedback(
    imp: Impressions, appeal0: np.ndarray, clicked: np.ndarray, u: np.ndarray, cfg: EnvConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(B, 6)`` feedback and ``(B,)`` watch seconds, as
    :func:`liveenv.response.sample_feedback`, through the chosen backend."""
    if backend() == "reference":
        return sample_feedback_reference(imp, appeal0, clicked, u, cfg)
    return sample_feedback_kernel(imp, appeal0, clicked, u, cfg)


def _params(cfg: EnvConfig, follow_bonus: float) -> np.ndarray:
    """``(12,)`` float64 response parameters in the kernel's order."""
    r = cfg.response
    return np.array(
        [
            r.bounce_bias,
            r.bounce_slope,
            r.bounce_mean_s,
            r.leave_bias,
            r.leave_slope,
            r.gift_hold_cost,
            r.like_per_min,
            r.comment_per_min,
            r.follow_per_min,
            r.gift_per_min,
            r.engagement_slope,
            follow_bonus,
        ],
        dtype=np.float64,
    )


def sample_feedback_kernel(
    imp: Impressions, appeal0: np.ndarray, clicked: np.ndarray, u: np.ndarray, cfg: EnvConfig
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample_feedback` through the numba kernel, whatever the backend."""
    b = len(imp.t)
    fb = np.zeros((b, N_OBJECTIVES))
    watch = np.zeros(b)
    if b == 0 or not clicked.any():
        return fb, watch
    r = cfg.response
    _KERNEL(
        np.ascontiguousarray(imp.t, dtype=np.float64),
        np.ascontiguousarray(imp.vec),
        np.ascontiguousarray(imp.like_prop, dtype=np.float64),
        np.ascontiguousarray(imp.comment_prop, dtype=np.float64),
        np.ascontiguousarray(imp.gift_prop, dtype=np.float64),
        np.ascontiguousarray(imp.followed, dtype=np.bool_),
        np.ascontiguousarray(imp.gift_pull, dtype=np.float64),
        np.ascontiguousarray(imp.end_t, dtype=np.float64),
        np.ascontiguousarray(imp.slot, dtype=np.int64),
        imp.content,
        imp.bias,
        np.ascontiguousarray(appeal0, dtype=np.float64),
        np.ascontiguousarray(clicked, dtype=np.bool_),
        np.ascontiguousarray(u, dtype=np.float64),
        _params(cfg, float(imp.follow_bonus)),
        np.cumsum(r.gift_price_probs),
        np.asarray(r.gift_prices, dtype=np.float64),
        int(r.max_watch_segments),
        fb,
        watch,
    )
    return fb, watch


def _feedback_rows(
    t: Any,
    vec: Any,
    like_prop: Any,
    comment_prop: Any,
    gift_prop: Any,
    followed: Any,
    gift_pull: Any,
    end_t: Any,
    slot: Any,
    content: Any,
    bias: Any,
    appeal0: Any,
    clicked: Any,
    u: Any,
    params: Any,
    price_cdf: Any,
    prices: Any,
    max_seg: int,
    fb: Any,
    watch: Any,
) -> None:
    """Fill ``fb`` (B, 6) and ``watch`` (B,) of the clicked rows; the numba-compiled
    body (plain Python too)."""
    bounce_bias, bounce_slope, mu = params[0], params[1], params[2]
    leave_bias, leave_slope, hold_cost = params[3], params[4], params[5]
    eng, follow_bonus = params[10], params[11]
    ring = content.shape[1]
    seg = SEGMENT_S
    rate = np.empty(4)
    for i in range(len(t)):
        if not clicked[i]:
            continue
        s = slot[i]
        tick, tau, n_b, full = watch_window(t[i], end_t[i], max_seg)
        a0 = appeal0[i]
        w = min(min(-mu * np.log1p(-u[i, U_BOUNCE_T]), tau), full)  # a bounce
        mean_a = a0
        p_bounce = 1.0 / (1.0 + np.exp(-(bounce_bias - bounce_slope * a0)))
        if u[i, U_BOUNCE] >= p_bounce:  # stays: to the end unless leaving at a boundary
            w = full
            if n_b > 0:
                fol = follow_bonus if followed[i] else 0.0
                hold = hold_logit(leave_bias, hold_cost, gift_pull[i])
                need = -np.log(max(u[i, U_LEAVE], 1e-300))
                cum, a_sum, pos = 0.0, a0, tick % ring
                k = 1
                while k <= n_b:
                    pos += 1
                    if pos == ring:
                        pos = 0
                    a = segment_appeal(vec, content, bias, i, s, pos, fol)
                    x = hold - leave_slope * a
                    cum += max(x, 0.0) + np.log1p(np.exp(-abs(x)))  # -log(1 - hazard)
                    if cum >= need:
                        w = tau + seg * (k - 1)
                        break
                    a_sum += a
                    k += 1
                mean_a = a_sum / k  # k: boundaries reached + 1 (n_b + 1 when none left)
        minutes = w / 60.0
        boost = np.exp(eng * mean_a)
        rate[0] = params[6] * like_prop[i] * boost
        rate[1] = params[7] * comment_prop[i] * boost
        rate[2] = 0.0 if followed[i] else params[8] * boost
        rate[3] = params[9] * gift_prop[i] * gift_pull[i] * boost
        fb[i, 0] = 1.0
        fb[i, 1] = minutes
        for j in range(3):  # like, comment, follow
            fb[i, 2 + j] = 1.0 if u[i, U_LIKE + j] < -np.expm1(-rate[j] * minutes) else 0.0
        if u[i, U_GIFT] < -np.expm1(-rate[3] * minutes):  # a gift, then its price
            idx = 0
            while idx < len(price_cdf) - 1 and price_cdf[idx] <= u[i, U_PRICE]:
                idx += 1
            fb[i, 5] = prices[idx]
        watch[i] = w


_KERNEL = LazyKernel(_feedback_rows)
