"""What the compiled kernels share: the backend switch, lazy compilation and the
per-impression pieces both the oracle (:mod:`liveenv.oracle`) and the serve
kernel (:mod:`liveenv.serve_kernel`) compute.

Each kernel is plain Python that numba compiles on first use
(:class:`LazyKernel`), with the helpers below compiled beside it; until then
everything is plain Python, so importing :mod:`liveenv` never imports numba.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from liveenv.rhythm import SEGMENT_S

BACKENDS = ("kernel", "reference")


class Backend:
    """Which of a kernel and its numpy reference runs: ``"kernel"`` unless the
    environment variable ``env_var`` says ``"reference"`` at import or
    :meth:`use` says otherwise for a block."""

    def __init__(self, what: str, env_var: str) -> None:
        self.what, self.env_var = what, env_var
        self._name = os.environ.get(env_var, "kernel")

    def check(self, name: str) -> str:
        if name not in BACKENDS:
            raise ValueError(f"{self.what} backend {name!r} is unknown; allowed: {list(BACKENDS)}")
        return name

    def get(self) -> str:
        return self.check(self._name)

    @contextmanager
    def use(self, name: str) -> Iterator[None]:
        """Use ``name`` inside the block; also set the environment variable, so
        worker processes spawned inside it use the same backend."""
        old, old_env = self._name, os.environ.get(self.env_var)
        self._name = self.check(name)
        os.environ[self.env_var] = name
        try:
            yield
        finally:
            self._name = old
            if old_env is None:
                os.environ.pop(self.env_var, None)
            else:
                os.environ[self.env_var] = old_env


class LazyKernel:
    """``fn`` compiled by numba on the first call (cached on disk), then called; the
    shared helpers it calls (:data:`HELPERS`) are compiled with it."""

    def __init__(self, fn: Callable[..., None]) -> None:
        self.fn = fn
        self._compiled: Callable[..., None] | None = None

    def __call__(self, *args: Any) -> None:
        if self._compiled is None:
            self._compiled = _compile(self.fn)
        self._compiled(*args)


def _compile(fn: Callable[..., None]) -> Callable[..., None]:
    import numba

    jit = numba.njit(cache=True, nogil=True, error_model="numpy")
    names = {h.__name__: jit(h) for h in HELPERS}
    bound = types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__)
    bound.__qualname__ = fn.__qualname__
    return jit(bound)


def watch_window(t: float, end_t: float, max_seg: int) -> tuple[int, float, int, float]:
    """``(tick, tau, n_b, full)`` of an impression at ``t`` in a room ending at ``end_t``:
    its 30-s tick, the seconds to the first boundary (in (0, 30]), the boundaries a
    watch can reach and the longest watch (seconds)."""
    seg = SEGMENT_S
    tick = np.int64(np.floor(t / seg))
    tau = (tick + 1) * seg - t
    rest = max(end_t - t - tau, 0.0)
    n_b = min(np.int64(np.ceil(rest / seg)), max_seg)
    full = max(min(end_t - t, tau + seg * (max_seg - 1)), 0.0)
    return tick, tau, n_b, full


def segment_appeal(
    vec: Any, content: Any, bias: Any, i: int, s: int, pos: int, fol: float
) -> float:
    """Appeal of room ``s``'s segment at ring position ``pos`` to viewer ``i``
    (float64 dot product of their vectors, plus the room's bias and follow bonus)."""
    acc = 0.0
    for j in range(content.shape[2]):
        acc += np.float64(vec[i, j]) * np.float64(content[s, pos, j])
    return acc + np.float64(bias[s, pos]) + fol


def hold_logit(leave_bias: float, hold_cost: float, gift_pull: float) -> float:
    """Leave logit at zero appeal: gift-pulling rooms hold viewers less."""
    return leave_bias + hold_cost * np.log(gift_pull) if hold_cost != 0.0 else leave_bias


#: The helpers the kernels call, compiled with each kernel.
HELPERS = (watch_window, segment_appeal, hold_logit)
