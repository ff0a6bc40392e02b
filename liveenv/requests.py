"""Pending recommendation requests, earliest first.

Every user in a visit has exactly one pending request (the next one of the
visit), so the queue holds as many entries as there are users in a visit.
Two implementations with one interface: :class:`RequestQueue`, a heap, for
one request at a time (the Gymnasium env), and :class:`BatchQueue`, numpy
arrays, for the batched path (a batch takes every request of a tick with a
few vectorised calls). Both hand out requests in time order.
"""

from __future__ import annotations

import heapq

import numpy as np


class RequestQueue:
    """Pending requests as a heap of ``(time, user)`` (ties by user id)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def next_time(self) -> float:
        """Time of the earliest pending request (``inf`` when none)."""
        return self._heap[0][0] if self._heap else float("inf")

    def push(self, time: float, user: int) -> None:
        heapq.heappush(self._heap, (time, user))

    def push_many(self, times: np.ndarray, users: np.ndarray) -> None:
        heap = self._heap
        if len(times) > len(heap):
            heap.extend(zip(times.tolist(), users.tolist(), strict=True))
            heapq.heapify(heap)
            return
        push = heapq.heappush
        for item in zip(times.tolist(), users.tolist(), strict=True):
            push(heap, item)

    def pop(self) -> tuple[float, int]:
        return heapq.heappop(self._heap)

    def pop_before(self, limit: float, max_n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``max_n`` earliest requests with time ``< limit``: ``(users, times)``."""
        heap, pop, out = self._heap, heapq.heappop, []
        while heap and heap[0][0] < limit and len(out) < max_n:
            out.append(pop(heap))
        if not out:
            return np.empty(0, dtype=np.int64), np.empty(0)
        times, users = zip(*out, strict=True)
        return np.array(users, dtype=np.int64), np.array(times, dtype=np.float64)


class BatchQueue:
    """Pending requests as unsorted arrays; :meth:`pop_before` sorts what it takes."""

    def __init__(self) -> None:
        self._t = np.empty(0)
        self._u = np.empty(0, dtype=np.int64)
        self._next = float("inf")

    def __len__(self) -> int:
        return len(self._t)

    def next_time(self) -> float:
        return self._next

    def push(self, time: float, user: int) -> None:
        self.push_many(np.array([time]), np.array([user], dtype=np.int64))

    def push_many(self, times: np.ndarray, users: np.ndarray) -> None:
        if len(times):
            self._t = np.concatenate([self._t, times])
            self._u = np.concatenate([self._u, users])
            self._next = min(self._next, float(times.min()))

    def pop(self) -> tuple[float, int]:
        users, times = self.pop_before(float("inf"), 1)
        return float(times[0]), int(users[0])

    def pop_before(self, limit: float, max_n: int) -> tuple[np.ndarray, np.ndarray]:
        take = self._t < limit
        idx = np.flatnonzero(take)
        if len(idx) > max_n:
            idx = idx[np.argsort(self._t[idx], kind="stable")[:max_n]]
            take = np.zeros(len(self._t), dtype=bool)
            take[idx] = True
        else:
            idx = idx[np.argsort(self._t[idx], kind="stable")]
        users, times = self._u[idx], self._t[idx]
        keep = ~take
        self._t, self._u = self._t[keep], self._u[keep]
        self._next = float(self._t.min()) if len(self._t) else float("inf")
        return users, times
