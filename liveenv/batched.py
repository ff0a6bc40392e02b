"""A native batched path: many concurrent requests served per call with numpy.

:class:`BatchedLiveEnv` answers, per :meth:`step`, the pending requests of the
current 30-s tick (at most ``batch_size``, earliest first) with one vectorised
call. This is what to use to generate large logs or to evaluate a policy fast.

Semantics against the single env (:class:`~liveenv.env.LiveStreamEnv`):

* the same in both: each request is answered at its own time against the room
  table of its own tick (a batch never crosses a tick, so ``rooms``,
  ``room_streamer`` and ``room_mask`` are one shared table); the rooms
  themselves (plan, content, observed embeddings, statistics, table sampling)
  come from their own random stream and are identical for a given seed
  whatever the batch size or the policy; users, arrivals and the response
  model are the same code;
* ``batch_size=1``: the same trajectory bit for bit for the same seed and
  actions (one request at a time never needs what follows);
* larger batches, ``postpone=True`` (the default): the requests of a batch are
  answered together, so the next request of a visit answered in the batch
  exists only after the batch. When it would fall before the latest request
  of the batch (the clock), it moves forward by whole 30-s segments to just
  after the clock: such a user waits up to one tick longer for the next
  recommendation. Nothing else changes; the tests compare rates (click,
  watch, requests, visits) across batch sizes over several seeds;
* ``postpone=False``: follow-ups keep their own time and are answered in the
  next batch of the same tick (several small batches per tick: exact timing,
  lower throughput);
* the per-request random numbers are rows of one stream taken in serving
  order, so the draws of a given request differ between batch sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveenv.config import EnvConfig
from liveenv.objectives import N_OBJECTIVES, weights_from_reset_options
from liveenv.presets import make_config
from liveenv.rhythm import DAY_S
from liveenv.rooms import phase_of
from liveenv.single import observe_one, serve_one
from liveenv.world import World


class BatchedLiveEnv:
    """Serve batches of concurrent requests; not a Gymnasium env (variable batch).

    ``reset(seed)`` returns ``(obs, info)`` where every key of ``obs`` has a
    leading batch axis ``B <= batch_size`` (``rooms``, ``room_streamer`` and
    ``room_mask`` are read-only broadcast views of one shared table). ``step``
    takes ``(B,)`` slots (or ``(B, K)`` slates) and returns the next batch's
    ``obs``, ``(B,)`` rewards of the answered batch, ``truncated`` and a dict
    of per-request arrays (feedback, cohorts, phase, times, users).

    Actions are checked as the single env checks them, vectorised: an integer
    array of shape ``(B,)`` (``(B, K)`` for slates), no coercion of bool, float
    or str. Masked slots are always refused (there is no ``masked_action="skip"``
    here: this is not a Gymnasium env, and no checker samples its actions).
    """

    def __init__(
        self,
        config: EnvConfig | str | None = None,
        batch_size: int = 1024,
        postpone: bool = True,
        **overrides: Any,
    ) -> None:
        if config is None or isinstance(config, str):
            config = make_config(config or "default", **overrides)
        elif overrides:
            config = config.replace(**overrides)
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is invalid: must be an integer >= 1")
        self.config, self.batch_size, self.postpone = config, int(batch_size), bool(postpone)
        self.weights = config.weight_vector
        self.world: World | None = None
        self._batch = 0  # batches taken so far (the oracle's cache key)
        self._oracle_key: tuple[int, str] | None = None
        self._oracle_fb = np.zeros((0, 0, N_OBJECTIVES))

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        self.weights = weights_from_reset_options(options, self.weights)
        # the same seeding as gymnasium.Env.reset, so batch_size=1 matches the single env
        from gymnasium.utils.seeding import np_random

        rng, _ = np_random(seed)
        self.world = World(self.config, rng, postpone=self.postpone, batched=self.batch_size > 1)
        self._take()
        return self._observe(), self._info()

    def action_masks(self) -> np.ndarray:
        """``(B, max_rooms)`` bool: the live slots (the same for the whole batch)."""
        mask = np.zeros(self.config.max_rooms, dtype=bool)
        mask[: self.world.n_live] = True
        return np.broadcast_to(mask, (len(self._users), self.config.max_rooms))

    def step(self, actions: np.ndarray):
        w = self.world
        if w is None:
            raise RuntimeError("call reset() before step()")
        slate = self._check_actions(actions)
        n_live = w.n_live
        if slate.shape == (1, 1):
            info = self._serve_one(int(slate[0, 0]))
            rewards = np.array([float(info["feedback"][0] @ self.weights)])
        else:
            served = w.serve(self._users, self._times, slate)
            rewards = served.feedback @ self.weights
            info = {
                "user_id": self._users,
                "time_s": self._times,
                "feedback": served.feedback,
                "clicked_pos": served.clicked_pos,
                "watch_s": served.watch_s,
                "room_id": served.slate_rooms,
                "streamer_id": served.slate_streamers,
                "phase": served.slate_phase,
                "new_streamer": served.slate_new_streamer,
                "user_cohort": served.user_cohort,
            }
        info["n_live"] = n_live
        self._take()
        truncated = bool(self._times[0] >= w.t0 + self.config.horizon_s)
        return self._observe(), rewards, truncated, info

    def oracle_expected_feedback(self) -> np.ndarray:
        """Privileged: ``(B, n_live, 6)`` true expected feedback per request and room,
        the whole batch in one kernel call, cached until the next :meth:`step`."""
        from liveenv.oracle import backend

        key = (self._batch, backend())
        if self._oracle_key != key or key[1] == "reference":  # reference: the old path, no cache
            self._oracle_fb = self.world.expected_feedback_batch(self._users, self._times)
            self._oracle_key = key
        return self._oracle_fb.copy()

    def oracle_utilities(self) -> np.ndarray:
        """Privileged: ``(B, max_rooms)`` true expected reward per request and slot
        (``-inf`` on empty slots)."""
        fb = self.oracle_expected_feedback()
        out = np.full((fb.shape[0], self.config.max_rooms), -np.inf)
        out[:, : fb.shape[1]] = fb @ self.weights
        return out

    # ----- internals --------------------------------------------------------
    def _check_actions(self, actions: Any) -> np.ndarray:
        """``(B, K)`` int64 slates, or an error naming the bad action: ``actions`` must
        be an integer array of shape ``(B,)`` (``K == 1``) or ``(B, K)`` (not bool,
        float or str) whose slots are live and, within a slate, distinct."""
        b, k, n_live = len(self._users), self.config.slate_size, self.world.n_live
        arr = np.asarray(actions)
        shape = (b,) if k == 1 else (b, k)
        if arr.dtype.kind not in "iu":
            raise TypeError(
                f"actions (dtype {arr.dtype}) are invalid: must be an integer array "
                f"of shape {shape} (not bool, float or str) of live slots in "
                f"[0, {n_live})"
            )
        if arr.shape != shape:
            raise ValueError(
                f"actions of shape {arr.shape} are invalid: must be an integer "
                f"array of shape {shape}, {k} slot(s) per request"
            )
        slate = arr.reshape(b, k)
        if b and (slate.min() < 0 or slate.max() >= n_live):
            bad = slate[(slate < 0) | (slate >= n_live)][0]
            raise ValueError(
                f"action slot {int(bad)} is masked or out of range: live slots are [0, {n_live})"
            )
        if k > 1:
            s = np.sort(slate, axis=1)
            rep = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
            if len(rep):
                raise ValueError(
                    f"actions[{int(rep[0])}]={slate[rep[0]].tolist()} is invalid: "
                    "the slots of a slate must be distinct"
                )
        return slate.astype(np.int64, copy=False)

    def _take(self) -> None:
        self._users, self._times = self.world.next_requests(self.batch_size)
        self._batch += 1

    def _observe(self) -> dict[str, np.ndarray]:
        if len(self._users) == 1:  # the single env's path, so batch_size=1 matches it
            obs = observe_one(self.world, int(self._users[0]), float(self._times[0]))
            return {k: v[None] for k, v in obs.items()}
        return self.world.observe(self._users, self._times)

    def _serve_one(self, row: int) -> dict[str, Any]:
        w, user, now = self.world, int(self._users[0]), float(self._times[0])
        served = serve_one(w, user, now, row)
        rt, slot = w.rooms.t, np.array([[served.slot]])
        streamer = rt.streamer[slot]
        new_days = self.config.streamers.new_days * DAY_S
        return {
            "user_id": self._users,
            "time_s": self._times,
            "feedback": np.array([served.feedback]),
            "clicked_pos": np.array([0 if served.clicked else -1]),
            "watch_s": np.array([served.watch_s]),
            "room_id": rt.room_id[slot],
            "streamer_id": streamer,
            "phase": phase_of(w.rooms.progress(slot, now), w.cfg),
            "new_streamer": now - w.streamers.join_t[streamer] < new_days,
            "user_cohort": w.cohort(self._users, self._times),
        }

    def _info(self) -> dict[str, Any]:
        return {"user_id": self._users, "time_s": self._times, "n_live": self.world.n_live}
