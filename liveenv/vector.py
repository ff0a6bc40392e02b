"""The live-streaming world as a Gymnasium ``VectorEnv`` of independent worlds."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, create_empty_array

from liveenv.config import EnvConfig
from liveenv.env import LiveStreamEnv
from liveenv.objectives import N_OBJECTIVES

#: Per-request info keys gathered into arrays (besides ``feedback``), with their dtypes.
STEP_INFO: dict[str, Any] = {
    "clicked_slot": np.int64,
    "watch_s": np.float64,
    "invalid_action": np.bool_,
    "user_id": np.int64,
    "time_s": np.float64,
    "hour": np.float64,
    "n_live": np.int64,
}
RESET_INFO = ("user_id", "time_s", "hour", "n_live")


class LiveVectorEnv(VectorEnv):
    """
    ## Description

    `num_envs` independent copies of :class:`~liveenv.env.LiveStreamEnv`, each
    its own world (lane ``i`` is reset with ``seed + i``, as Gymnasium's
    ``SyncVectorEnv`` does), stepped together with batched observations,
    rewards and infos, and batched `action_masks()` for maskable algorithms.

    Why independent worlds and not :class:`~liveenv.batched.BatchedLiveEnv`:
    the batched path answers the requests of one 30-s tick of *one* world, so
    its batch size varies from tick to tick and its requests are not
    independent episodes (they share rooms, statistics, follows, the clock and
    one horizon). A ``VectorEnv`` needs a fixed number of sub-environments,
    each with its own episode and reset; lanes that are worlds of their own
    give exactly that, with each lane's trajectory bit for bit the single
    env's for the same seed and actions. The speed comes from one loop without
    wrappers or checkers writing straight into preallocated batch arrays
    (``benchmarks/vec_speed.py`` measures it against SB3's ``DummyVecEnv``).

    ## Action Space

    `batch_space` of the single env's action space: `MultiDiscrete([R] * N)`
    for one room per request (a slate of `K`: `(N, K)`).

    ## Observation Space

    The single env's `Dict`, each entry with a leading `num_envs` axis.

    ## Rewards, Episode End, Autoreset

    As in the single env, per lane. `metadata["autoreset_mode"]` is
    `NEXT_STEP` by default: the step after a lane's truncation resets it
    (reward 0, not terminated nor truncated). `autoreset_mode=SAME_STEP`
    resets it in the same step and puts the last observation and info in
    `info["final_obs"]` and `info["final_info"]` (with their `_`-masks).

    ## Info

    Arrays over lanes: `feedback` `(N, 6)`, `clicked_slot`, `watch_s`,
    `invalid_action`, `user_id`, `time_s`, `hour`, `n_live`, each with its
    `_key` mask (False on lanes that were reset in that step, where only
    `user_id`, `time_s`, `hour` and `n_live` are given).

    ## Arguments

    `gymnasium.make_vec("liveenv/Default-v0", num_envs=8, vectorization_mode="vector_entry_point")`,
    or `LiveVectorEnv(num_envs, config=None, render_mode=None, autoreset_mode=NEXT_STEP, **overrides)`.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "rgb_array"],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        config: EnvConfig | str | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **overrides: Any,
    ) -> None:
        if not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid: must be an integer >= 1")
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(
                f"autoreset_mode={mode.value!r} is not supported; allowed: "
                f"{[AutoresetMode.NEXT_STEP.value, AutoresetMode.SAME_STEP.value]}"
            )
        overrides.pop("max_episode_steps", None)  # set by make_vec only when the spec has one
        self.envs = [LiveStreamEnv(config, render_mode, **overrides) for _ in range(int(num_envs))]
        first = self.envs[0]
        self.num_envs, self.config, self.render_mode = int(num_envs), first.config, render_mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.reward_space = first.reward_space
        self._obs = create_empty_array(self.single_observation_space, self.num_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)

    # ----- Gymnasium API ----------------------------------------------------
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the lanes: every lane, or those of ``options["reset_mask"]``.

        ``seed``: ``None`` (fresh entropy), an int (lane ``i`` gets ``seed + i``)
        or one seed per lane. Other ``options`` go to every reset lane
        (e.g. ``{"reward_weights": ...}``).
        """
        seeds = self._seeds(seed)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        lanes = range(self.num_envs) if mask is None else np.flatnonzero(self._check_mask(mask))
        info = self._new_info(step=False)
        for i in lanes:
            obs, lane = self.envs[i].reset(seed=seeds[i], options=options or None)
            self._write(i, obs)
            self._autoreset[i] = False
            self._reset_info(info, i, lane)
        return self._copy_obs(), info

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        acts = np.asarray(actions)
        if acts.shape[:1] != (self.num_envs,):
            raise ValueError(
                f"actions has shape {acts.shape}: expected a leading axis of "
                f"num_envs={self.num_envs}"
            )
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        info = self._new_info(step=True)
        same_step = self.autoreset_mode == AutoresetMode.SAME_STEP
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:  # NEXT_STEP: this step resets the lane
                obs, lane = env.reset()
                self._write(i, obs)
                self._reset_info(info, i, lane)
                continue
            a = acts[i]
            obs, rewards[i], terminated[i], truncated[i], lane = env.step(
                int(a) if a.ndim == 0 else a
            )
            self._step_info(info, i, lane)
            if same_step and (terminated[i] or truncated[i]):
                info.setdefault("final_obs", np.full(self.num_envs, None, dtype=object))
                info.setdefault("_final_obs", np.zeros(self.num_envs, dtype=np.bool_))
                info.setdefault("final_info", np.full(self.num_envs, None, dtype=object))
                info.setdefault("_final_info", np.zeros(self.num_envs, dtype=np.bool_))
                info["final_obs"][i], info["_final_obs"][i] = obs, True
                info["final_info"][i], info["_final_info"][i] = lane, True
                obs, _ = env.reset()
            self._write(i, obs)
        if not same_step:
            self._autoreset = terminated | truncated
        return self._copy_obs(), rewards, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """``(num_envs, max_rooms)`` bool valid slots per lane (``(N, K * max_rooms)``
        for a slate)."""
        return np.stack([env.action_masks() for env in self.envs])

    def oracle_utilities(self) -> np.ndarray:
        """Privileged: ``(num_envs, max_rooms)`` true expected reward per lane and slot
        (``-inf`` on empty slots); each lane's cached per request."""
        return np.stack([env.oracle_utilities() for env in self.envs])

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call (or read) ``name`` on every lane's env."""
        out = []
        for env in self.envs:
            attr = getattr(env, name)
            out.append(attr(*args, **kwargs) if callable(attr) else attr)
        return tuple(out)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(getattr(env, name) for env in self.envs)

    def set_attr(self, name: str, values: Any) -> None:
        """Set ``name`` on every lane: one value for all, or a list of one per lane."""
        if not isinstance(values, list | tuple):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(
                f"set_attr({name!r}): {len(values)} values for num_envs={self.num_envs} lanes"
            )
        for env, value in zip(self.envs, values, strict=True):
            setattr(env, name, value)

    def render(self) -> tuple[Any, ...] | None:
        if self.render_mode is None:
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()

    # ----- internals --------------------------------------------------------
    def _seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"seed has {len(seeds)} entries: expected one per lane (num_envs={self.num_envs})"
            )
        return seeds

    def _check_mask(self, mask: Any) -> np.ndarray:
        if (
            not isinstance(mask, np.ndarray)
            or mask.dtype != np.bool_
            or mask.shape != (self.num_envs,)
        ):
            raise ValueError(
                f"options['reset_mask'] must be a bool array of shape "
                f"({self.num_envs},), got {mask!r}"
            )
        if not mask.any():
            raise ValueError("options['reset_mask'] resets no lane: at least one must be True")
        return mask

    def _write(self, i: int, obs: dict[str, np.ndarray]) -> None:
        for key, buf in self._obs.items():
            buf[i] = obs[key]

    def _copy_obs(self) -> dict[str, np.ndarray]:
        return {key: buf.copy() for key, buf in self._obs.items()}

    def _new_info(self, step: bool) -> dict[str, Any]:
        n, info = self.num_envs, {}
        keys = STEP_INFO if step else {k: STEP_INFO[k] for k in RESET_INFO}
        if step:
            info["feedback"], info["_feedback"] = np.zeros((n, N_OBJECTIVES)), np.zeros(n, bool)
        for key, dtype in keys.items():
            info[key], info[f"_{key}"] = np.zeros(n, dtype=dtype), np.zeros(n, dtype=np.bool_)
        return info

    @staticmethod
    def _reset_info(info: dict[str, Any], i: int, lane: dict[str, Any]) -> None:
        for key in RESET_INFO:
            info[key][i], info[f"_{key}"][i] = lane[key], True

    def _step_info(self, info: dict[str, Any], i: int, lane: dict[str, Any]) -> None:
        info["feedback"][i], info["_feedback"][i] = lane["feedback"], True
        for key in STEP_INFO:
            info[key][i], info[f"_{key}"][i] = lane[key], True
