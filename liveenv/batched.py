"""A native batched path: many concurrent requests served per call with numpy.

:class:`BatchedLiveEnv` answers, per :meth:`step`, every pending request that
falls before the next clock event (at most ``batch_size``): requests in one
batch are concurrent, see the same live-room table and are answered with one
vectorised call. This is what to use to generate large logs or to evaluate a
policy fast.

Equivalence with :class:`~liveenv.env.LiveStreamEnv`: with ``batch_size=1``
the two produce the same trajectory bit for bit for the same seed and actions.
With larger batches the random draws are grouped per batch and the requests
of a batch are answered together, so trajectories differ draw by draw while
the world's dynamics and rates are the same (tests compare rates).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveenv.config import EnvConfig
from liveenv.objectives import weights_from_reset_options
from liveenv.presets import make_config
from liveenv.world import World


class BatchedLiveEnv:
    """Serve batches of concurrent requests; not a Gymnasium env (variable batch).

    ``reset(seed)`` returns ``(obs, info)`` where every key of ``obs`` has a
    leading batch axis ``B <= batch_size`` (``rooms``, ``room_streamer`` and
    ``room_mask`` are read-only broadcast views of one shared table). ``step``
    takes ``(B,)`` slots (or ``(B, K)`` slates) and returns the next batch's
    ``obs``, ``(B,)`` rewards of the answered batch, ``truncated`` and a dict
    of per-request arrays (feedback, cohorts, phase, times, users).
    """

    def __init__(self, config: EnvConfig | str | None = None, batch_size: int = 1024,
                 **overrides: Any) -> None:  # fmt: skip
        if config is None or isinstance(config, str):
            config = make_config(config or "default", **overrides)
        elif overrides:
            config = config.replace(**overrides)
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is invalid: must be an integer >= 1")
        self.config, self.batch_size = config, int(batch_size)
        self.weights = config.weight_vector
        self.world: World | None = None

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        self.weights = weights_from_reset_options(options, self.weights)
        # the same seeding as gymnasium.Env.reset, so batch_size=1 matches the single env
        from gymnasium.utils.seeding import np_random

        rng, _ = np_random(seed)
        self.world = World(self.config, rng)
        self._users, self._times = self.world.next_requests(self.batch_size)
        return self.world.observe(self._users, self._times), self._info()

    def action_masks(self) -> np.ndarray:
        """``(B, max_rooms)`` bool: the live slots (the same for the whole batch)."""
        mask = np.zeros(self.config.max_rooms, dtype=bool)
        mask[: self.world.n_live] = True
        return np.broadcast_to(mask, (len(self._users), self.config.max_rooms))

    def step(self, actions: np.ndarray):
        w = self.world
        slate = np.asarray(actions, dtype=np.int64).reshape(len(self._users), -1)
        if slate.shape[1] != self.config.slate_size:
            raise ValueError(f"actions: expected {self.config.slate_size} slot(s) per request, "
                             f"got shape {np.shape(actions)}")  # fmt: skip
        if slate.min(initial=0) < 0 or slate.max(initial=0) >= w.n_live:
            bad = slate[(slate < 0) | (slate >= w.n_live)][0]
            raise ValueError(f"action slot {int(bad)} is masked or out of range: live slots are "
                             f"[0, {w.n_live})")  # fmt: skip
        served = w.serve(self._users, self._times, slate)
        rewards = served.feedback @ self.weights
        info = {
            "user_id": self._users, "time_s": self._times, "feedback": served.feedback,
            "clicked_pos": served.clicked_pos, "watch_s": served.watch_s,
            "room_id": served.slate_rooms, "streamer_id": served.slate_streamers,
            "phase": served.slate_phase, "new_streamer": served.slate_new_streamer,
            "user_cohort": served.user_cohort,
        }  # fmt: skip
        self._users, self._times = w.next_requests(self.batch_size)
        truncated = bool(self._times[0] >= w.t0 + self.config.horizon_s)
        return w.observe(self._users, self._times), rewards, truncated, info

    def oracle_expected_feedback(self) -> np.ndarray:
        """Privileged: ``(B, n_live, 6)`` true expected feedback per request and room."""
        return np.stack([self.world.expected_feedback(int(u), float(t))
                         for u, t in zip(self._users, self._times, strict=True)])  # fmt: skip

    def _info(self) -> dict[str, Any]:
        return {"user_id": self._users, "time_s": self._times, "n_live": self.world.n_live}
