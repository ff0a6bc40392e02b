"""The live-streaming world as a Gymnasium environment."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from liveenv.config import EnvConfig
from liveenv.objectives import N_OBJECTIVES, OBJECTIVES, weights_from_reset_options
from liveenv.population import USER_FEATURES
from liveenv.presets import make_config
from liveenv.render import render_ansi, render_rgb
from liveenv.rhythm import DAY_S, SEGMENT_S, TIME_FEATURES
from liveenv.rooms import PHASES
from liveenv.single import OneServed, end_session_one, observe_one, serve_one
from liveenv.world import ROOM_STAT_COLUMNS, STREAMER_COHORTS, USER_COHORTS, World

_INTEGERS = (int, np.integer)
OBS_HIGH = 1e4  # finite bound of unbounded-looking features (values are clipped to it)


def _feedback_high(cfg: EnvConfig) -> np.ndarray:
    r = cfg.response
    return np.array([1, r.max_watch_min, 1, 1, 1, max(r.gift_prices)], dtype=np.float32)


class LiveStreamEnv(gym.Env):
    """
    ## Description

    A live-streaming platform. Streamers go live and off; each live room's
    content drifts in 30-second segments. Users arrive on a daily rhythm and
    ask for a room to watch; they click or swipe away, watch segment by
    segment (leaving when the *current* content stops suiting them), and may
    like, comment, follow or send a gift. New users and streamers keep joining.

    One `step` answers one recommendation request of one user; SimPy then
    advances the simulated clock to the next request.

    ## Action Space

    `Discrete(max_rooms)`: the slot of a live room in the observation's room
    table; with `slate_size = K > 1`, `MultiDiscrete([max_rooms] * K)` of
    distinct slots. Only slots with `room_mask == 1` are valid;
    `action_masks()` gives the mask for maskable algorithms.

    ## Observation Space

    A flat `Dict` of fixed-shape arrays (`H = users.history_len`,
    `R = max_rooms`, `o = obs_dim`):

    | key | shape | meaning |
    |---|---|---|
    | `user` | (20,) | demographics one-hot, new-user flag, log visits, log age, follows |
    | `history_streamer` | (H,) | streamer id of past clicked rooms, -1 padding, newest last |
    | `history_content` | (H, o) | observed content embedding at the time |
    | `history_feedback` | (H, 6) | feedback vector of each past impression |
    | `history_age` | (H,) | log(1 + hours since the event) |
    | `history_mask` | (H,) | 1 where the history slot is real |
    | `rooms` | (R, 2o + 6) | observed 30-s embedding, pooled streamer embedding, log viewers, like/comment/gift rates, hours live, new-streamer flag |
    | `room_followed` | (R,) | 1 where the user follows the room's streamer |
    | `room_streamer` | (R,) | streamer id per slot, -1 empty |
    | `room_mask` | (R,) | 1 where a live room sits |
    | `time` | (4,) | sin/cos of hour of day and day of week |

    The latent interests and content vectors are never observed.

    ## Starting State

    The platform has run before: `reset(seed=s)` starts the day (at
    `start_hour`) after `users.past_days` days (default 2) of the world's own
    dynamics under a good but imperfect past recommender (`liveenv.past`).
    Returning users arrive with their history (`history_*`, times before the
    start), their follows (`room_followed`), drifted interests, boredom and
    return rates; streamers have the fans they earned. The past depends on
    `world_seed` and the config only: it is built once per process and world
    (the first reset pays for it) and copied at each reset. Users and streamers
    who join during the episode have none. `users.past_days=0` starts from a
    blank platform (no history, no follows, the drawn fans). Boredom fades
    while a user is away (`users.boredom_recovery_per_day`) and follows lapse
    (`users.follow_lapse_per_day`), so days of a multi-day episode look alike.

    ## Rewards

    The weighted sum `w . f` of the impression's feedback vector
    `f = (click, watch minutes, like, comment, follow, gift value)`.
    `info["feedback"]` holds `f`; `reward_space` is its `Box`. Weights come
    from the config and can be changed with `reset(options={"reward_weights": ...})`.

    ## Episode End

    A masked slot raises `ValueError` (config `masked_action="raise"`), or with
    `masked_action="skip"` shows nothing: zero feedback and the visit ends.

    Never terminated (the platform does not end). Truncated when the next
    request falls after `horizon_hours` of simulated time.

    ## Arguments

    `gymnasium.make("liveenv/Default-v0", config=None, render_mode=None, **overrides)`;
    presets: Default, ColdStart, FastDrift, NoDrift, ShortLifecycle, GiftTradeoff, Large.
    `overrides` are dotted config fields, e.g. `**{"users.n_users": 5000}`.

    ## Seeding

    `config.world_seed` (default 0) fixes the platform: its users, streamers,
    interest clusters and the latent -> observed projection. `reset(seed=...)`
    drives everything that happens on it (broadcasts, content, arrivals,
    responses), so models trained on the logs of one seed are evaluated on
    unseen days of the same platform. `world_seed=None` draws a whole new
    platform from the reset seed (domain randomisation).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, config: EnvConfig | str | None = None, render_mode: str | None = None,
                 **overrides: Any) -> None:  # fmt: skip
        if config is None or isinstance(config, str):
            config = make_config(config or "default", **overrides)
        elif overrides:
            config = config.replace(**overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; allowed: {self.metadata['render_modes']}"
            )
        self.config, self.render_mode = config, render_mode
        # plain integer actions of one room take the lean path; anything else (slates,
        # arrays, masked or out-of-range slots) the general one, with its errors
        self._one_room = config.slate_size == 1
        self.weights = config.weight_vector
        self.observation_space = self._observation_space(config)
        r, k = config.max_rooms, config.slate_size
        self.action_space = spaces.Discrete(r) if k == 1 else spaces.MultiDiscrete([r] * k)
        high = _feedback_high(config)
        self.reward_space = spaces.Box(np.zeros(N_OBJECTIVES, np.float32), high, dtype=np.float32)
        self.world: World | None = None
        self._last: dict[str, Any] = {}

    @staticmethod
    def _observation_space(cfg: EnvConfig) -> spaces.Dict:
        h, r, o = cfg.users.history_len, cfg.max_rooms, cfg.obs_dim
        big = np.iinfo(np.int32).max
        f32 = np.float32

        def box(shape: tuple[int, ...], lo: float, hi: float) -> spaces.Box:
            return spaces.Box(lo, hi, shape, dtype=f32)

        fb_high = np.broadcast_to(_feedback_high(cfg), (h, N_OBJECTIVES)).astype(f32)

        return spaces.Dict(
            {
                "user": box((USER_FEATURES,), 0.0, OBS_HIGH),
                "history_streamer": spaces.Box(-1, big, (h,), dtype=np.int64),
                "history_content": box((h, o), -1.0, 1.0),
                "history_feedback": spaces.Box(np.zeros_like(fb_high), fb_high, dtype=f32),
                "history_age": box((h,), 0.0, OBS_HIGH),
                "history_mask": spaces.MultiBinary(h),
                "rooms": box((r, 2 * o + len(ROOM_STAT_COLUMNS)), -1.0, OBS_HIGH),
                "room_followed": spaces.MultiBinary(r),
                "room_streamer": spaces.Box(-1, big, (r,), dtype=np.int64),
                "room_mask": spaces.MultiBinary(r),
                "time": box((TIME_FEATURES,), -1.0, 1.0),
            }
        )

    # ----- Gymnasium API ----------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.weights = weights_from_reset_options(options, self.weights)
        self.world = World(self.config, self.np_random)
        self._next()
        return self._obs(), self._info_base()

    def step(self, action):
        w = self.world
        if w is None:
            raise RuntimeError("call reset() before step()")
        user, now = self._user_id, self._now
        row = int(action) if self._one_room and isinstance(action, _INTEGERS) else -1
        if 0 <= row < len(w.table_slots):  # the lean path: one live room, one request
            served = serve_one(w, user, now, row)
            fb = np.array(served.feedback)
            reward = float(fb @ self.weights)
            info = self._one_info(served, row, fb)
            slate = row
        else:
            slate = self._check_action(action)
            if slate.max() >= w.n_live:  # masked slot under masked_action="skip"
                end_session_one(w, user)
                fb, reward = np.zeros(N_OBJECTIVES), 0.0
                info = {"feedback": fb, "invalid_action": True, "clicked_slot": -1}
            else:
                served = w.serve(self._user, self._time, slate[None, :])
                fb = served.feedback[0]
                reward = float(fb @ self.weights)
                info = self._step_info(served, slate)
        self._last = {"slate": slate, "feedback": fb, "user": user, "reward": reward}
        self._next()
        truncated = self._now >= w.t0 + self.config.horizon_s
        info.update(self._info_base())
        return self._obs(), reward, False, truncated, info

    def action_masks(self) -> np.ndarray:
        """Valid slots: ``(max_rooms,)`` bool, or ``(K * max_rooms,)`` for a slate."""
        mask = np.zeros(self.config.max_rooms, dtype=bool)
        mask[: self.world.n_live if self.world else 0] = True
        return np.tile(mask, self.config.slate_size) if self.config.slate_size > 1 else mask

    # ----- privileged oracle ------------------------------------------------
    def oracle_expected_feedback(self) -> np.ndarray:
        """``(max_rooms, 6)`` true expected feedback of each slot for the current
        request (zeros on empty slots). Privileged: never part of the observation."""
        out = np.zeros((self.config.max_rooms, N_OBJECTIVES))
        n = self.world.n_live
        out[:n] = self.world.expected_feedback(self._user_id, self._now)
        return out

    def oracle_utilities(self) -> np.ndarray:
        """``(max_rooms,)`` true expected reward per slot (-inf on empty slots)."""
        util = self.oracle_expected_feedback() @ self.weights
        util[self.world.n_live :] = -np.inf
        return util

    # ----- internals --------------------------------------------------------
    def _next(self) -> None:
        self._user_id, self._now = self.world.next_request()

    @property
    def _user(self) -> np.ndarray:
        return np.array([self._user_id])

    @property
    def _time(self) -> np.ndarray:
        return np.array([self._now])

    def _check_action(self, action: Any) -> np.ndarray:
        slate = np.atleast_1d(np.asarray(action)).astype(np.int64).reshape(-1)
        k, n_live = self.config.slate_size, self.world.n_live
        if slate.shape[0] != k:
            raise ValueError(f"action={action!r}: expected {k} slot(s), got {slate.shape[0]}")
        bad = slate[(slate < 0) | (slate >= self.config.max_rooms)]
        if len(bad):
            raise ValueError(
                f"action slot {int(bad[0])} is out of range: slots must be in [0, {self.config.max_rooms})"
            )
        masked = slate[slate >= n_live]
        if len(masked) and self.config.masked_action == "raise":
            raise ValueError(
                f"action slot {int(masked[0])} is masked: only slots [0, {n_live}) hold live rooms now"
            )
        if len(np.unique(slate)) != k:
            raise ValueError(f"action={slate.tolist()}: the slots of a slate must be distinct")
        return slate

    def _obs(self) -> dict[str, np.ndarray]:
        # rooms, room_streamer, room_mask (and an empty history) are read-only
        # arrays shared by every request of a tick; the rest is the request's own
        return observe_one(self.world, self._user_id, self._now)

    def _info_base(self) -> dict[str, Any]:
        w, t, user = self.world, self._now, self._user_id
        return {
            "user_id": user,
            "user_cohort": USER_COHORTS[self._cohort(user, t)],
            "time_s": t,
            "hour": (t % DAY_S) / 3600.0,
            "n_live": w.n_live,
        }

    def _cohort(self, user: int, t: float) -> int:
        u, ucfg = self.world.users, self.config.users
        if t - float(u.join_t[user]) < ucfg.new_days * DAY_S:
            return 0
        return 2 if float(u.activity[user]) >= ucfg.heavy_visits_per_day else 1

    def _one_info(self, served: OneServed, row: int, fb: np.ndarray) -> dict[str, Any]:
        w, slot, t = self.world, served.slot, self._now
        rt, s = w.rooms.t, self.config.streamers
        streamer = int(rt.streamer[slot])
        start, end = float(rt.start_t[slot]), float(rt.end_t[slot])
        progress = min(max((t - start) / max(end - start, SEGMENT_S), 0.0), 1.0)
        phase = 0 if progress < s.warmup_share else (1 if progress < s.decline_start else 2)
        new = t - float(w.streamers.join_t[streamer]) < s.new_days * DAY_S
        return {
            "feedback": fb,
            "objectives": dict(zip(OBJECTIVES, served.feedback, strict=True)),
            "clicked_slot": row if served.clicked else -1,
            "room_id": int(rt.room_id[slot]),
            "streamer_id": streamer,
            "phase": PHASES[phase],
            "streamer_cohort": STREAMER_COHORTS[0 if new else 1],
            "served_user_cohort": USER_COHORTS[self._cohort(self._user_id, t)],
            "invalid_action": False,
            "watch_s": served.watch_s,
        }

    def _step_info(self, served: Any, slate: np.ndarray) -> dict[str, Any]:
        pos = int(served.clicked_pos[0])
        j = max(pos, 0)
        return {
            "feedback": served.feedback[0].copy(),
            "objectives": dict(zip(OBJECTIVES, served.feedback[0].tolist(), strict=True)),
            "clicked_slot": int(slate[pos]) if pos >= 0 else -1,
            "room_id": int(served.slate_rooms[0, j]),
            "streamer_id": int(served.slate_streamers[0, j]),
            "phase": PHASES[int(served.slate_phase[0, j])],
            "streamer_cohort": STREAMER_COHORTS[0 if served.slate_new_streamer[0, j] else 1],
            "served_user_cohort": USER_COHORTS[int(served.user_cohort[0])],
            "invalid_action": False,
            "watch_s": float(served.watch_s[0]),
        }

    def render(self):
        if self.render_mode is None or self.world is None:
            return None
        if self.render_mode == "ansi":
            return render_ansi(self.world, self._last, self.weights)
        return render_rgb(self.world, self._last)
