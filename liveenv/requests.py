"""Pending recommendation requests, earliest first.

A heap of ``(time, user)``: every user in a visit has exactly one pending
request (the next one of the visit), so the heap holds as many entries as
there are users in a visit.
"""

from __future__ import annotations

import heapq

import numpy as np


class RequestQueue:
    """Pending requests ordered by time (ties by user id)."""

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
