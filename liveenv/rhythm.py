"""The daily rhythm of the platform and the time features of a request."""

from __future__ import annotations

import numpy as np

DAY_S = 86_400.0
SEGMENT_S = 30.0

#: Relative viewing intensity per hour of day (mean 1): quiet nights, a small
#: peak at noon, the main peak from 19:00 to 23:00.
USER_RHYTHM = np.array(
    [
        0.45,
        0.25,
        0.14,
        0.09,
        0.07,
        0.07,
        0.1,
        0.2,
        0.35,
        0.45,
        0.5,
        0.65,
        0.95,
        0.8,
        0.55,
        0.5,
        0.55,
        0.75,
        1.1,
        1.6,
        2.0,
        2.15,
        1.95,
        1.2,
    ],
)
USER_RHYTHM = USER_RHYTHM / USER_RHYTHM.mean()

TIME_FEATURES = 4


def user_rhythm(t: float | np.ndarray) -> np.ndarray:
    """Viewing intensity at simulated time ``t`` (seconds), interpolated per hour."""
    h = (np.asarray(t, dtype=np.float64) % DAY_S) / 3600.0
    i0 = np.floor(h).astype(np.int64) % 24
    frac = h - np.floor(h)
    return USER_RHYTHM[i0] * (1 - frac) + USER_RHYTHM[(i0 + 1) % 24] * frac


_RHYTHM = USER_RHYTHM.tolist()


def rhythm_at(t: float) -> float:
    """:func:`user_rhythm` of one time, in plain floats."""
    h = (t % DAY_S) / 3600.0
    i0 = int(h)
    frac = h - i0
    i0 %= 24
    return _RHYTHM[i0] * (1 - frac) + _RHYTHM[(i0 + 1) % 24] * frac


def time_features(t: float | np.ndarray) -> np.ndarray:
    """``(..., 4)`` float32: sin/cos of hour of day and of day of week."""
    t = np.asarray(t, dtype=np.float64)
    angle = np.empty((*t.shape, 2, 2))  # (..., day/week, sin/cos)
    angle[..., 0, 0] = (t % DAY_S) * (2 * np.pi / DAY_S)
    angle[..., 1, 0] = (t % (7 * DAY_S)) * (2 * np.pi / (7 * DAY_S))
    angle[..., 1] = angle[..., 0] + np.pi / 2  # cos x = sin(x + pi/2)
    return np.sin(angle, out=angle).reshape(*t.shape, 4).astype(np.float32)


def hour_of_day(t: float | np.ndarray) -> np.ndarray:
    return (np.asarray(t, dtype=np.float64) % DAY_S) / 3600.0
