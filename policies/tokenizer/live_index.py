"""Index of the semantic IDs of the rooms that are live now.

A prefix trie with counts (``prefix -> Counter(next token -> rooms below)``) drives
constrained decoding: ``allowed_next(prefix)`` lists the tokens that keep the prefix
on the path to at least one live room. ``set``/``remove`` cost O(n_levels).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

__all__ = ["LiveSIDIndex"]

SID = tuple[int, ...]


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class LiveSIDIndex:
    """Live rooms and their SIDs, with a prefix trie for constrained decoding.

    Several rooms may share a full SID (collisions); ``rooms_for`` returns all of them.
    """

    def __init__(self, n_levels: int) -> None:
        if not _is_int(n_levels) or n_levels < 1:
            raise ValueError(f"n_levels={n_levels!r} is invalid: must be an integer >= 1")
        self.n_levels = int(n_levels)
        self._reset()

    def _reset(self) -> None:
        self._sid_of: dict[int, SID] = {}
        self._rooms: dict[SID, set[int]] = {}
        self._children: dict[SID, Counter[int]] = {}
        self._allowed_cache: dict[SID, np.ndarray] = {}
        self._table_cache: tuple[np.ndarray, list[list[int]]] | None = None
        self._n_colliding = 0  # live rooms whose full SID has >= 2 rooms

    # ---- validation
    def _check_sid(self, sid: Sequence[int] | np.ndarray) -> SID:
        toks = tuple(np.asarray(sid).reshape(-1).tolist()) if isinstance(sid, np.ndarray) else sid
        if len(toks) != self.n_levels:
            raise ValueError(
                f"SID {tuple(toks)!r} has length {len(toks)}, expected {self.n_levels}"
            )
        for t in toks:
            if not _is_int(t) or t < 0:
                raise ValueError(f"SID {tuple(toks)!r} has token {t!r}: tokens must be ints >= 0")
        return tuple(int(t) for t in toks)

    @staticmethod
    def _check_room(room_id: object) -> int:
        if not _is_int(room_id):
            raise ValueError(f"room_id={room_id!r} is invalid: must be an integer")
        return int(room_id)  # type: ignore[call-overload]

    # ---- mutation
    def set(self, room_id: int, sid: Sequence[int]) -> None:
        """Add a live room, or change the SID of one already live."""
        room, key = self._check_room(room_id), self._check_sid(sid)
        old = self._sid_of.get(room)
        if old == key:
            return
        if old is not None:
            self._detach(room, old)
        self._attach(room, key)

    def remove(self, room_id: int) -> None:
        """Remove a live room; KeyError when it is not in the index."""
        room = self._check_room(room_id)
        if room not in self._sid_of:
            raise KeyError(f"room {room} is not in the live index")
        self._detach(room, self._sid_of[room])

    def update_many(
        self,
        room_ids: Iterable[int] | np.ndarray,
        sids: Iterable[Sequence[int]] | np.ndarray,
        *,
        drop_missing: bool = False,
    ) -> None:
        """Batch refresh: ``set`` each (room, sid) pair (later pairs win on duplicates).

        Everything is validated before the index changes. With ``drop_missing`` the
        index afterwards holds exactly the rooms given (others are removed).
        """
        rooms = [self._check_room(r) for r in np.asarray(room_ids).reshape(-1).tolist()]
        keys = [
            self._check_sid(s) for s in (sids.tolist() if isinstance(sids, np.ndarray) else sids)
        ]
        if len(rooms) != len(keys):
            raise ValueError(f"got {len(rooms)} room_ids but {len(keys)} sids")
        if drop_missing:
            for room in set(self._sid_of) - set(rooms):
                self._detach(room, self._sid_of[room])
        for room, key in zip(rooms, keys, strict=True):
            self.set(room, key)

    def clear(self) -> None:
        """Remove every room."""
        self._reset()

    def _attach(self, room: int, key: SID) -> None:
        self._sid_of[room] = key
        group = self._rooms.setdefault(key, set())
        group.add(room)
        self._n_colliding += 2 if len(group) == 2 else (1 if len(group) > 2 else 0)
        for level in range(self.n_levels):
            prefix = key[:level]
            self._children.setdefault(prefix, Counter())[key[level]] += 1
            self._allowed_cache.pop(prefix, None)
        self._table_cache = None

    def _detach(self, room: int, key: SID) -> None:
        del self._sid_of[room]
        group = self._rooms[key]
        group.discard(room)
        self._n_colliding -= 2 if len(group) == 1 else (1 if len(group) > 1 else 0)
        if not group:
            del self._rooms[key]
        for level in range(self.n_levels):
            prefix = key[:level]
            counter = self._children[prefix]
            counter[key[level]] -= 1
            if counter[key[level]] == 0:
                del counter[key[level]]
                if not counter:
                    del self._children[prefix]
            self._allowed_cache.pop(prefix, None)
        self._table_cache = None

    # ---- queries
    def sid_of(self, room_id: int) -> SID:
        """SID of a live room; KeyError when it is not live."""
        room = self._check_room(room_id)
        if room not in self._sid_of:
            raise KeyError(f"room {room} is not in the live index")
        return self._sid_of[room]

    def rooms_for(self, sid: Sequence[int]) -> list[int]:
        """Sorted live rooms with exactly this full SID (empty list when none)."""
        return sorted(self._rooms.get(self._check_sid(sid), ()))

    def allowed_next(self, prefix: Sequence[int] = ()) -> np.ndarray:
        """Sorted unique int64 tokens that follow ``prefix`` in some live SID.

        ``prefix=()`` gives the level-1 tokens; an unknown prefix gives an empty array.
        The returned array is read-only (it is cached until the prefix changes).
        """
        key = tuple(int(t) for t in prefix)
        if len(key) >= self.n_levels:
            raise ValueError(
                f"prefix {key!r} has length {len(key)}; must be shorter than n_levels="
                f"{self.n_levels}"
            )
        cached = self._allowed_cache.get(key)
        if cached is None:
            counter = self._children.get(key)
            cached = np.array(sorted(counter) if counter else [], dtype=np.int64)
            cached.setflags(write=False)
            self._allowed_cache[key] = cached
        return cached

    def count_under(self, prefix: Sequence[int] = ()) -> int:
        """Number of live rooms whose SID starts with ``prefix``."""
        key = tuple(int(t) for t in prefix)
        if len(key) == 0:
            return len(self._sid_of)
        if len(key) == self.n_levels:
            return len(self._rooms.get(key, ()))
        return self._children.get(key[:-1], Counter()).get(key[-1], 0)

    def as_table(self) -> tuple[np.ndarray, list[list[int]]]:
        """Unique live SIDs sorted lexicographically, (u, n_levels) int64, and their rooms.

        ``rooms[i]`` is the sorted list of rooms of ``table[i]``. The table is read-only.
        """
        if self._table_cache is None:
            keys = sorted(self._rooms)
            table = np.array(keys, dtype=np.int64).reshape(len(keys), self.n_levels)
            table.setflags(write=False)
            self._table_cache = (table, [sorted(self._rooms[k]) for k in keys])
        table, rooms = self._table_cache
        return table, [list(r) for r in rooms]

    @property
    def room_ids(self) -> list[int]:
        """Sorted live room ids."""
        return sorted(self._sid_of)

    @property
    def collision_rate(self) -> float:
        """Share of live rooms whose full SID is shared with another live room."""
        return self._n_colliding / len(self._sid_of) if self._sid_of else 0.0

    def __len__(self) -> int:
        return len(self._sid_of)

    def __contains__(self, room_id: object) -> bool:
        return _is_int(room_id) and int(room_id) in self._sid_of  # type: ignore[call-overload]

    def __iter__(self) -> Iterator[int]:
        return iter(self.room_ids)

    def __repr__(self) -> str:
        return (
            f"LiveSIDIndex(n_levels={self.n_levels}, rooms={len(self)}, "
            f"unique_sids={len(self._rooms)})"
        )
