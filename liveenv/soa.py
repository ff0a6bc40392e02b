"""A growable struct-of-arrays table (users, streamers, rooms)."""

from __future__ import annotations

import numpy as np


class SoA:
    """Named numpy columns sharing one row count, grown by half when full.

    Columns are plain attributes (``table.interest[rows]``); ``n`` is the
    number of rows in use, capacity grows as rows are appended.
    """

    def __init__(self, capacity: int, columns: dict[str, tuple[tuple[int, ...], type, float]]):
        self._spec = columns
        self.n = 0
        self.capacity = max(1, int(capacity))
        for name, (shape, dtype, fill) in columns.items():
            setattr(self, name, np.full((self.capacity, *shape), fill, dtype=dtype))

    def append(self, count: int) -> np.ndarray:
        """Reserve ``count`` new rows (filled with defaults); return their indices."""
        need = self.n + count
        if need > self.capacity:
            new_cap = max(need, self.capacity + self.capacity // 2)  # grow by half
            for name, (shape, dtype, fill) in self._spec.items():
                old = getattr(self, name)
                new = np.full((new_cap, *shape), fill, dtype=dtype)
                new[: self.n] = old[: self.n]
                setattr(self, name, new)
            self.capacity = new_cap
        rows = np.arange(self.n, need)
        self.n = need
        return rows

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self._spec)
