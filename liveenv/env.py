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

OBS_HIGH = 1e4  # finite bound of unbounded-looking features (values are clipped to it)


def _feedback_high(cfg: EnvConfig) -> np.ndarray:
    r = cfg.response
    return np.array([1, r.max_watch_min, 1, 1, 1, max(r.gift_prices)], dtype=np.float32)


def check_slate(action: Any, k: int, max_rooms: int) -> np.ndarray:
    """``action`` as a ``(k,)`` int64 slate, or ``TypeError`` / ``ValueError``
    naming it: ``k == 1`` takes an integer scalar (not bool), ``k > 1`` a 1-D
    integer array of length ``k``; every slot in ``[0, max_rooms)``."""
    allowed = f"slots are integers in [0, {max_rooms})"
    if k == 1:
        ok = type(action) is int or isinstance(action, np.integer)
        if not ok and isinstance(action, np.ndarray) and action.shape == ():
            ok = action.dtype.kind in "iu"
        if not ok:
            raise TypeError(
                f"action={action!r} is invalid: must be an integer scalar (int or numpy "
                f"integer, not bool); {allowed}"
            )
        slate = np.array([int(action)], dtype=object)  # no wrap-around of huge values
    else:
        try:
            arr = np.asarray(action)
        except ValueError:  # ragged nested sequences
            arr = np.asarray(None)
        if arr.dtype.kind not in "iu":
            raise TypeError(
                f"action={action!r} is invalid: must be a 1-D integer array of {k} slots "
                f"(not bool, float or str); {allowed}"
            )
        if arr.shape != (k,):
            raise ValueError(
                f"action={action!r} is invalid: must be a 1-D integer array of shape ({k},), "
                f"got shape {arr.shape}; {allowed}"
            )
        slate = arr
    bad = slate[(slate < 0) | (slate >= max_rooms)]
    if len(bad):
        raise ValueError(
            f"action slot {int(bad[0])} is out of range: slots must be in [0, {max_rooms})"
        )
    return slate.astype(np.int64, copy=False)


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
    distinct slots. Only slots with `room_mask == 1` hold a live room;
    `action_masks()` gives the mask for maskable algorithms (sb3-contrib's
    `MaskablePPO`), which then never pick another slot.

    Actions are checked strictly; nothing is coerced:

    | action | accepted | otherwise |
    |---|---|---|
    | `Discrete` | a Python `int` or numpy integer (or a 0-d integer array) in `[0, max_rooms)` | `TypeError` for `bool`, float, `str`, arrays with a shape; `ValueError` out of range |
    | slate (`K > 1`) | a 1-D integer array (or list of ints) of length `K`, each in `[0, max_rooms)` | `TypeError` for non-integer dtypes (`bool`, float, `str`); `ValueError` for another shape or out of range |

    An action inside the action space that shows no live room (a slot with
    `room_mask == 0`, or a slate that repeats a slot) is handled by the config
    field `masked_action`:

    * `"skip"` (the default): a no-op. The request is answered with nothing:
      zero feedback, so reward 0, the lowest there is (weights are >= 0); the
      user's visit ends; `info["invalid_action"]` is True and `info` keeps its
      keys (`clicked_slot`, `room_id`, `streamer_id` = -1, `phase` and
      `streamer_cohort` = `"none"`). Agents and the env checkers that sample the
      whole action space can run, and a learner sees such actions as worthless.
    * `"raise"`: a `ValueError` naming the slot and the live range (strict use:
      a policy that must never pick a masked slot, e.g. in evaluation).

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

    With `users.past_days=d > 0` (default 2) the platform has run before: `reset(seed=s)`
    starts the day (at `start_hour`) after `d` days of the world's own
    dynamics under a good but imperfect past recommender (`liveenv.past`).
    Returning users arrive with their history (`history_*`, times before the
    start), their follows (`room_followed`), drifted interests, boredom and
    return rates; streamers have the fans they earned. The past depends on
    `world_seed` and the config only: it is built once per process and world
    (the first reset pays for it) and copied at each reset. Users and streamers
    who join during the episode have none; logs record the past as rows of
    their own (`agents.logs.past_rows`). `users.past_days=0` starts from a blank
    platform (no history, no follows, the drawn fans). Boredom fades
    while a user is away (`users.boredom_recovery_per_day`) and follows lapse
    (`users.follow_lapse_per_day`), so days of a multi-day episode look alike.

    ## Rewards

    The weighted sum `w . f` of the impression's feedback vector
    `f = (click, watch minutes, like, comment, follow, gift value)`, a float.
    `info["feedback"]` holds `f` (float64); `reward_space` is its `Box`. Weights
    come from the config and can be changed with
    `reset(options={"reward_weights": ...})`; each must be a finite number in
    `[0, inf)`, else `ValueError` naming it.

    With `reward_mode="vector"` (the ids `liveenv/<Preset>-MO-v0`), `step`
    returns `f` itself as a float32 array of shape (6,) in `reward_space`, as
    MO-Gymnasium expects: `mo_gymnasium.wrappers.LinearReward(env, weight=w)`
    gives back the scalar reward and `MORecordEpisodeStatistics` the vector
    return. The MO ids are registered without Gymnasium's passive checker
    (as `mo_gymnasium.make` does), which warns on any non-scalar reward.

    ## Starting State

    `reset(seed=...)` starts at `start_hour` of day 0 of a platform with a past
    (returning users with histories and follows, streamers with fans), at the
    first recommendation request; `options` may be `None` or a dict with the
    only key `"reward_weights"` (else `TypeError` / `ValueError`).

    ## Episode End

    Never terminated (the platform does not end). Truncated when the next
    request falls after `horizon_hours` of simulated time.

    ## Arguments

    `gymnasium.make("liveenv/Default-v0", config=None, render_mode=None, **overrides)`;
    presets: Default, ColdStart, FastDrift, NoDrift, ShortLifecycle, GiftTradeoff, Large,
    each also as `liveenv/<Preset>-MO-v0` (`reward_mode="vector"`).
    `overrides` are dotted config fields, e.g. `**{"users.n_users": 5000}`,
    `masked_action="raise"`, `reward_mode="vector"`. `render_mode` must be `None`
    or one of `metadata["render_modes"]` (`"ansi"`, `"rgb_array"`), else `ValueError`.

    ## Seeding

    `config.world_seed` (default 0) fixes the platform: its users, streamers,
    interest clusters and the latent -> observed projection. `reset(seed=...)`
    drives everything that happens on it (broadcasts, content, arrivals,
    responses), so models trained on the logs of one seed are evaluated on
    unseen days of the same platform. `world_seed=None` draws a whole new
    platform from the reset seed (domain randomisation).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        config: EnvConfig | str | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if config is None or isinstance(config, str):
            config = make_config(config or "default", **overrides)
        elif overrides:
            config = config.replace(**overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; allowed: {self.metadata['render_modes']}"
            )
        self.config, self.render_mode = config, render_mode
        # plain integer actions of one live room take the lean path; anything else
        # (slates, masked slots, bad actions) the general one, with its checks
        self._one_room = config.slate_size == 1
        self._vector = config.reward_mode == "vector"
        self.weights = config.weight_vector
        self.observation_space = self._observation_space(config)
        r, k = config.max_rooms, config.slate_size
        self.action_space = spaces.Discrete(r) if k == 1 else spaces.MultiDiscrete([r] * k)
        high = _feedback_high(config)
        self.reward_space = spaces.Box(np.zeros(N_OBJECTIVES, np.float32), high, dtype=np.float32)
        self.world: World | None = None
        self._last: dict[str, Any] = {}
        self._request = 0  # requests served so far by this instance (the oracle's cache key)
        self._oracle_key: tuple[int, str] | None = None
        self._oracle_fb = np.zeros((0, N_OBJECTIVES))

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
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self.weights = weights_from_reset_options(options, self.weights)
        super().reset(seed=seed)
        self.world = World(self.config, self.np_random)
        self._next()
        return self._obs(), self._info_base()

    def step(
        self, action: Any
    ) -> tuple[dict[str, np.ndarray], float | np.ndarray, bool, bool, dict[str, Any]]:
        w = self.world
        if w is None:
            raise RuntimeError("call reset() before step()")
        user, now = self._user_id, self._now
        # the lean path: one live room, one request (bool is an int but no slot)
        row = -1
        if self._one_room and (type(action) is int or isinstance(action, np.integer)):
            row = int(action)
        if 0 <= row < len(w.table_slots):
            served = serve_one(w, user, now, row)
            fb = np.array(served.feedback)
            info = self._one_info(served, row, fb)
            slate = row
        else:
            slate = self._check_action(action)
            if slate is None:  # shows no live room, under masked_action="skip"
                end_session_one(w, user)
                fb, slate = np.zeros(N_OBJECTIVES), np.asarray(action)
                info = self._invalid_info(fb)
            else:
                served = w.serve(self._user, self._time, slate[None, :])
                fb = served.feedback[0]
                info = self._step_info(served, slate)
        scalar = float(fb @ self.weights)
        reward = fb.astype(np.float32) if self._vector else scalar
        self._last = {"slate": slate, "feedback": fb, "user": user, "reward": scalar}
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
    def oracle_expected_feedback(self, slots: Any = None) -> np.ndarray:
        """``(max_rooms, 6)`` true expected feedback of each slot for the current
        request (zeros on empty slots). Privileged: never part of the observation.

        Computed once per request (:mod:`liveenv.oracle`) and cached, so the
        oracle policy and the expected-return recorder of the same request share
        it; every call returns a fresh copy. ``slots`` (ints): only those rows,
        ``(len(slots), 6)``, from the cache when the request's table is there,
        else computed for those rooms alone (what a recorder of the chosen
        room's expected return needs)."""
        from liveenv.oracle import backend

        key = (self._request, backend())
        if slots is not None:
            rows = np.atleast_1d(np.asarray(slots, dtype=np.int64))
            if self._oracle_key == key and key[1] != "reference":
                return self._oracle_fb[rows]
            out = np.zeros((len(rows), N_OBJECTIVES))
            live = (rows >= 0) & (rows < self.world.n_live)
            if live.any():
                out[live] = self.world.expected_feedback(self._user_id, self._now, rows[live])
            return out
        if self._oracle_key != key or key[1] == "reference":  # reference: the old path, no cache
            out = np.zeros((self.config.max_rooms, N_OBJECTIVES))
            n = self.world.n_live
            out[:n] = self.world.expected_feedback(self._user_id, self._now)
            self._oracle_key, self._oracle_fb = key, out
        return self._oracle_fb.copy()

    def oracle_utilities(self) -> np.ndarray:
        """``(max_rooms,)`` true expected reward per slot (-inf on empty slots)."""
        util = self.oracle_expected_feedback() @ self.weights
        util[self.world.n_live :] = -np.inf
        return util

    # ----- internals --------------------------------------------------------
    def _next(self) -> None:
        self._user_id, self._now = self.world.next_request()
        self._request += 1

    @property
    def _user(self) -> np.ndarray:
        return np.array([self._user_id])

    @property
    def _time(self) -> np.ndarray:
        return np.array([self._now])

    def _check_action(self, action: Any) -> np.ndarray | None:
        """The slate of a valid action; ``None`` for an action in the action space
        that shows no live room under ``masked_action="skip"``; else an error
        naming the action and what is allowed (see the Action Space section)."""
        slate = check_slate(action, self.config.slate_size, self.config.max_rooms)
        n_live, k = self.world.n_live, self.config.slate_size
        masked = slate[slate >= n_live]
        repeated = k > 1 and len(np.unique(slate)) != k
        if not len(masked) and not repeated:
            return slate
        if self.config.masked_action == "skip":
            return None
        if len(masked):
            raise ValueError(
                f"action slot {int(masked[0])} is masked: only slots [0, {n_live}) hold live rooms now"
            )
        raise ValueError(f"action={slate.tolist()}: the slots of a slate must be distinct")

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

    def _invalid_info(self, fb: np.ndarray) -> dict[str, Any]:
        """The info of an action that showed no live room: the keys of a served
        one, with nothing shown."""
        return {
            "feedback": fb,
            "objectives": dict.fromkeys(OBJECTIVES, 0.0),
            "clicked_slot": -1,
            "room_id": -1,
            "streamer_id": -1,
            "phase": "none",
            "streamer_cohort": "none",
            "served_user_cohort": USER_COHORTS[self._cohort(self._user_id, self._now)],
            "invalid_action": True,
            "watch_s": 0.0,
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
