"""The oracle's exact expected feedback, as a numba kernel.

:func:`expected_feedback` gives the ``(B, 6)`` expected feedback vector of a
batch of impressions (click, watch minutes, like, comment, follow, gift value),
the expectation taken over click, bounce and the leave boundary. It is what
the privileged oracle (:meth:`liveenv.env.LiveStreamEnv.oracle_utilities`)
and the expected-return estimator of the evaluation read.

The kernel walks each impression on its own: boundary after boundary, it adds
the chance of leaving there times what a viewer who leaves there collects, and
stops as soon as that impression's survival (the chance of still watching) is
below ``tol`` or the room ends or the watch cap is reached. The rest of the
survival mass watches to the end. The plain numpy reference
(:func:`liveenv.reference.expected_feedback_reference`) keeps every impression
of the batch going until the *slowest* one's survival drops below ``tol``, in
chunks of whole boundaries; with ``tol=0`` both sum every boundary and agree
to rounding (the tests compare them).

The backend is ``"kernel"`` unless the environment variable ``LIVEENV_ORACLE``
is ``"reference"`` when this module is imported, or :func:`use_backend`
switches it (the benchmarks compare both in one run). The environments cache
the kernel's answer per request (:meth:`liveenv.env.LiveStreamEnv.oracle_expected_feedback`);
under ``"reference"`` they compute it at every call, as before the kernel. numba is imported on the
first call only, and the compiled kernel is cached on disk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveenv.config import EnvConfig
from liveenv.kernels import Backend, LazyKernel, hold_logit, segment_appeal, watch_window
from liveenv.objectives import N_OBJECTIVES
from liveenv.response import Impressions
from liveenv.rhythm import SEGMENT_S

#: Default survival below which the kernel stops an impression's boundary sum:
#: the mass left (always < tol) is counted as a full watch, so the error of one
#: impression is below ``tol`` times its longest watch (240 min by default).
KERNEL_TOL = 1e-10

_ENV_VAR = "LIVEENV_ORACLE"
_BACKEND = Backend("oracle", _ENV_VAR)
#: The backend in use now, and a block that uses another (``kernels.Backend``).
backend, use_backend = _BACKEND.get, _BACKEND.use


def expected_feedback(imp: Impressions, cfg: EnvConfig, tol: float | None = None) -> np.ndarray:
    """``(B, 6)`` exact expected feedback of each impression (the oracle's view).

    ``tol``: survival below which an impression's boundary sum stops
    (:data:`KERNEL_TOL` for the kernel, ``1e-7`` for the reference by default).
    """
    if backend() == "reference":
        from liveenv.reference import expected_feedback_reference

        return expected_feedback_reference(imp, cfg, 1e-7 if tol is None else tol)
    return expected_feedback_kernel(imp, cfg, KERNEL_TOL if tol is None else tol)


def expected_feedback_kernel(
    imp: Impressions, cfg: EnvConfig, tol: float = KERNEL_TOL
) -> np.ndarray:
    """:func:`expected_feedback` through the numba kernel, whatever the backend."""
    r = cfg.response
    b = len(imp.t)
    out = np.empty((b, N_OBJECTIVES))
    if b == 0:
        return out
    params = np.array(
        [
            r.click_bias,
            r.click_slope,
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
            float(np.dot(r.gift_prices, r.gift_price_probs)),
            float(imp.follow_bonus),
        ],
        dtype=np.float64,
    )
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
        np.ascontiguousarray(imp.content),
        np.ascontiguousarray(imp.bias),
        params,
        int(r.max_watch_segments),
        float(tol),
        out,
    )
    return out


def _expected_rows(
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
    params: Any,
    max_seg: int,
    tol: float,
    out: Any,
) -> None:
    """Fill ``out`` (B, 6) row by row; the numba-compiled body (plain Python too)."""
    click_bias, click_slope, bounce_bias, bounce_slope = params[0], params[1], params[2], params[3]
    mu, leave_bias, leave_slope, hold_cost = params[4], params[5], params[6], params[7]
    eng, mean_price, follow_bonus = params[12], params[13], params[14]
    ring = content.shape[1]
    seg = SEGMENT_S
    base = np.empty(4)
    inter = np.empty(4)
    stay = np.empty(4)
    for i in range(len(t)):
        s = slot[i]
        tick, tau, n_b, full = watch_window(t[i], end_t[i], max_seg)
        fol = follow_bonus if followed[i] else 0.0
        base[0] = params[8] * like_prop[i]
        base[1] = params[9] * comment_prop[i]
        base[2] = 0.0 if followed[i] else params[10]
        base[3] = params[11] * gift_prop[i] * gift_pull[i]
        hold = hold_logit(leave_bias, hold_cost, gift_pull[i])
        # appeal of the segment playing at the request
        pos = tick % ring
        a0 = segment_appeal(vec, content, bias, i, s, pos, fol)
        # bounce: W = min(Exp(mu), cut)
        cut = min(tau, full)
        boost = np.exp(eng * a0) / 60.0
        bounce_w = mu * (1.0 - np.exp(-cut / mu))
        for j in range(4):
            lam = base[j] * boost
            decay = lam + 1.0 / mu
            surv_b = np.exp(-decay * cut)
            inter[j] = 1.0 - ((1.0 / mu) / decay * (1.0 - surv_b) + surv_b)
        p_b = 1.0 / (1.0 + np.exp(-(bounce_bias - bounce_slope * a0)))
        for j in range(4):
            inter[j] *= p_b
        # staying: leave at boundary k with prob S_{k-1} h_k, else watch to the end
        surv, a_sum, stay_w = 1.0, a0, 0.0
        stay[:] = 0.0
        k = 1
        while k <= n_b and surv > tol:
            pos += 1
            if pos == ring:
                pos = 0
            a = segment_appeal(vec, content, bias, i, s, pos, fol)
            h = 1.0 / (1.0 + np.exp(-(hold - leave_slope * a)))
            p_leave = surv * h
            w_k = tau + seg * (k - 1)
            stay_w += p_leave * w_k
            boost = np.exp(eng * (a_sum / k)) / 60.0
            for j in range(4):
                if base[j] != 0.0:  # most viewers never gift: skip their exp
                    stay[j] += p_leave * (1.0 - np.exp(-base[j] * boost * w_k))
            surv *= 1.0 - h
            a_sum += a
            k += 1
        boost = np.exp(eng * (a_sum / (n_b + 1))) / 60.0
        stay_w += surv * full
        for j in range(4):
            stay[j] += surv * (1.0 - np.exp(-base[j] * boost * full))
        pc = 1.0 / (1.0 + np.exp(-(click_bias + click_slope * a0)))
        watch = p_b * bounce_w + (1.0 - p_b) * stay_w
        out[i, 0] = pc
        out[i, 1] = pc * watch / 60.0
        for j in range(3):
            out[i, 2 + j] = pc * (inter[j] + (1.0 - p_b) * stay[j])
        out[i, 5] = pc * (inter[3] + (1.0 - p_b) * stay[3]) * mean_price


_KERNEL = LazyKernel(_expected_rows)
