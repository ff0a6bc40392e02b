"""Each user's recent interactions, kept only for users who have any."""

from __future__ import annotations

import numpy as np

from liveenv.objectives import N_OBJECTIVES
from liveenv.soa import SoA


class HistoryStore:
    """A ring of the last ``length`` clicked impressions per active user.

    Rows are allocated on a user's first interaction, so memory grows with the
    users who interact, not with the population.
    """

    def __init__(self, length: int, obs_dim: int, capacity: int = 1024):
        self.length = length
        self.row_of: dict[int, int] = {}
        self.t = SoA(
            capacity,
            {
                "streamer": ((length,), np.int64, -1),
                "content": ((length, obs_dim), np.float32, 0.0),
                "feedback": ((length, N_OBJECTIVES), np.float32, 0.0),
                "time": ((length,), np.float64, 0.0),
                "count": ((), np.int64, 0),
            },
        )

    def rows(self, users: np.ndarray, create: bool) -> np.ndarray:
        out = np.empty(len(users), dtype=np.int64)
        for i, u in enumerate(users.tolist()):
            r = self.row_of.get(u, -1)
            if r < 0 and create:
                r = int(self.t.append(1)[0])
                self.row_of[u] = r
            out[i] = r
        return out

    def append(self, users: np.ndarray, streamer: np.ndarray, content: np.ndarray,
               feedback: np.ndarray, time: np.ndarray) -> None:  # fmt: skip
        rows = self.rows(users, create=True)
        pos = self.t.count[rows] % self.length
        self.t.streamer[rows, pos] = streamer
        self.t.content[rows, pos] = content
        self.t.feedback[rows, pos] = feedback
        self.t.time[rows, pos] = time
        self.t.count[rows] += 1

    def gather(self, users: np.ndarray, now: np.ndarray) -> dict[str, np.ndarray]:
        """Oldest-to-newest, right-aligned (padding first) history of ``users``."""
        _b, h = len(users), self.length
        rows = self.rows(users, create=False)
        has = rows >= 0
        r = np.where(has, rows, 0)
        count = np.where(has, self.t.count[r], 0)
        # position j (0..h-1, newest last) holds event count-h+j
        ev = count[:, None] - h + np.arange(h)[None, :]
        valid = ev >= 0
        pos = np.where(valid, ev % h, 0)
        rr = r[:, None]
        age_h = (now[:, None] - self.t.time[rr, pos]) / 3600.0
        return {
            "history_streamer": np.where(valid, self.t.streamer[rr, pos], -1),
            "history_content": np.where(valid[..., None], self.t.content[rr, pos], 0.0).astype(
                np.float32
            ),
            "history_feedback": np.where(valid[..., None], self.t.feedback[rr, pos], 0.0).astype(
                np.float32
            ),
            "history_age": np.where(valid, np.log1p(np.maximum(age_h, 0.0)), 0.0).astype(
                np.float32
            ),
            "history_mask": valid.astype(np.int8),
        }

    def nbytes(self) -> int:
        return self.t.nbytes()
