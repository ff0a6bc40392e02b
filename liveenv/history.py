"""Each user's recent interactions, kept only for users who have any."""

from __future__ import annotations

import numpy as np

from liveenv.objectives import N_OBJECTIVES
from liveenv.soa import SoA

_FIELDS = ("streamer", "content", "feedback", "time", "mask")


class HistoryStore:
    """The last ``length`` clicked impressions per active user, oldest first.

    Each row is kept in observation order (right-aligned, padding first): an
    append shifts the row one place left, so reading a history is one copy.
    Row 0 is the empty history of every user without one; a user's row is
    allocated on the first click, so memory grows with the users who interact,
    not with the population. Padding holds time ``+inf`` (age 0).
    """

    def __init__(self, length: int, obs_dim: int, capacity: int = 1024):
        self.length = length
        self.row_of = np.zeros(0, dtype=np.int64)  # user -> row, 0: none
        self.t = SoA(
            capacity,
            {
                "streamer": ((length,), np.int64, -1),
                "content": ((length, obs_dim), np.float32, 0.0),
                "feedback": ((length, N_OBJECTIVES), np.float32, 0.0),
                "time": ((length,), np.float64, np.inf),
                "mask": ((length,), np.int8, 0),
            },
        )
        self.t.append(1)  # row 0: the empty history
        empty = self.gather(np.zeros(1, dtype=np.int64), np.zeros(1))
        self._empty = {k: _frozen(v[0]) for k, v in empty.items()}

    @property
    def n_rows(self) -> int:
        return self.t.n - 1

    def rows(self, users: np.ndarray) -> np.ndarray:
        """Rows of ``users`` (0 for users without a history)."""
        n = len(self.row_of)
        if n == 0:
            return np.zeros(len(users), dtype=np.int64)
        inside = users < n
        if inside.all():
            return self.row_of[users]
        return np.where(inside, self.row_of[np.minimum(users, n - 1)], 0)

    def _ensure_rows(self, users: np.ndarray) -> np.ndarray:
        top = int(users.max()) + 1
        if top > len(self.row_of):
            grown = np.zeros(max(top, 2 * len(self.row_of)), dtype=np.int64)
            grown[: len(self.row_of)] = self.row_of
            self.row_of = grown
        rows = self.row_of[users]
        new = rows == 0
        if new.any():
            rows[new] = self.t.append(int(new.sum()))
            self.row_of[users[new]] = rows[new]
        return rows

    def append(
        self,
        users: np.ndarray,
        streamer: np.ndarray,
        content: np.ndarray,
        feedback: np.ndarray,
        time: np.ndarray,
    ) -> None:
        """Add one event to each of ``users`` (distinct) as their newest."""
        if len(users) == 0:
            return
        rows = self._ensure_rows(users)
        t = self.t
        for name, value in zip(_FIELDS, (streamer, content, feedback, time, 1), strict=True):
            col = getattr(t, name)
            col[rows, :-1] = col[rows, 1:]
            col[rows, -1] = value

    def append_one(
        self, user: int, streamer: int, content: np.ndarray, feedback: list[float], time: float
    ) -> None:
        """:meth:`append` for one event."""
        if user < len(self.row_of) and self.row_of[user]:
            r = int(self.row_of[user])
        else:
            r = int(self._ensure_rows(np.array([user]))[0])
        t = self.t
        for col, value in (
            (t.streamer, streamer),
            (t.content, content),
            (t.feedback, feedback),
            (t.time, time),
            (t.mask, 1),
        ):
            row = col[r]
            row[:-1] = row[1:]
            row[-1] = value

    def gather_rows(self, rows: np.ndarray, now: np.ndarray) -> dict[str, np.ndarray]:
        t = self.t
        age_h = np.maximum(now[:, None] - t.time[rows], 0.0) * (1.0 / 3600.0)
        return {
            "streamer": t.streamer[rows],
            "content": t.content[rows],
            "feedback": t.feedback[rows],
            "age": np.log1p(age_h).astype(np.float32),
            "mask": t.mask[rows],
        }

    def gather(self, users: np.ndarray, now: np.ndarray) -> dict[str, np.ndarray]:
        """``(B, H, ...)`` oldest-to-newest, right-aligned history of ``users``."""
        return {f"history_{k}": v for k, v in self.gather_rows(self.rows(users), now).items()}

    def gather_one(self, user: int, now: float) -> dict[str, np.ndarray]:
        """The history of one user (fresh arrays)."""
        r = int(self.row_of[user]) if user < len(self.row_of) else 0
        if r == 0:
            return {k: v.copy() for k, v in self._empty.items()}
        t = self.t
        age = np.log1p(np.maximum(now - t.time[r], 0.0) * (1.0 / 3600.0))
        return {
            "history_streamer": t.streamer[r].copy(),
            "history_content": t.content[r].copy(),
            "history_feedback": t.feedback[r].copy(),
            "history_age": age.astype(np.float32),
            "history_mask": t.mask[r].copy(),
        }

    def nbytes(self) -> int:
        return self.t.nbytes() + self.row_of.nbytes


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a
