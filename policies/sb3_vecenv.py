"""Stable-Baselines3 ``VecEnv`` over :class:`liveenv.vector.LiveVectorEnv`.

liveenv must not import SB3, so the adapter lives here. It runs the vector
env with ``SAME_STEP`` autoreset, which is SB3's convention: a lane that ends
is reset within the step, its last observation is in
``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]`` marks a
truncation. ``env_method("action_masks")`` answers from one batched call, so
``sb3_contrib.common.maskable.utils.get_action_masks`` and ``MaskablePPO``
work on it.

    >>> from policies.sb3_vecenv import LiveSB3VecEnv
    >>> venv = LiveSB3VecEnv(8, "default", seed=0)
    >>> # MaskablePPO("MultiInputPolicy", venv).learn(10_000)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from liveenv.config import EnvConfig
from liveenv.vector import LiveVectorEnv


class LiveSB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` of ``num_envs`` independent liveenv worlds.

    ``config``/``overrides``: as :class:`~liveenv.env.LiveStreamEnv`. ``seed``:
    the first reset's seed (lane ``i`` gets ``seed + i``); SB3's ``seed()`` and
    ``set_options()`` apply to the next ``reset()`` as usual.
    """

    def __init__(
        self,
        num_envs: int = 1,
        config: EnvConfig | str | None = None,
        seed: int | None = None,
        **overrides: Any,
    ) -> None:
        self.venv = LiveVectorEnv(
            num_envs, config, autoreset_mode=AutoresetMode.SAME_STEP, **overrides
        )
        super().__init__(
            num_envs, self.venv.single_observation_space, self.venv.single_action_space
        )
        if seed is not None:
            self.seed(seed)
        self._actions: np.ndarray | None = None

    # ----- SB3 VecEnv API ---------------------------------------------------
    def reset(self) -> VecEnvObs:
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        options = self._options[0] if self._options and self._options[0] else None
        if options is not None and any(o != options for o in self._options):
            obs = self._reset_lanes_apart()
        else:
            obs, info = self.venv.reset(seed=seeds, options=options)
            self.reset_infos = self._unbatch(info)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(): call step(actions)")
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        infos = self._unbatch(info)
        dones = terminated | truncated
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
        for i, lane in enumerate(infos):
            lane["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "action_masks":  # the bound method, answered in one batched call
            return [self.venv.envs[i].action_masks for i in self._get_indices(indices)]
        return [getattr(self.venv.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for i in self._get_indices(indices):
            setattr(self.venv.envs[i], attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        lanes = list(self._get_indices(indices))
        if method_name == "action_masks" and not method_args and not method_kwargs:
            masks = self.venv.action_masks()
            return [masks[i] for i in lanes]
        return [
            getattr(self.venv.envs[i], method_name)(*method_args, **method_kwargs) for i in lanes
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]  # the lanes are bare envs

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [env.render() if env.render_mode == "rgb_array" else None for env in self.venv.envs]

    def action_masks(self) -> np.ndarray:
        """``(num_envs, max_rooms)`` bool valid slots per lane."""
        return self.venv.action_masks()

    # ----- internals --------------------------------------------------------
    def _reset_lanes_apart(self) -> VecEnvObs:
        """Lanes with different reset options: reset one lane at a time."""
        obs = None
        for i in range(self.num_envs):
            mask = np.zeros(self.num_envs, dtype=np.bool_)
            mask[i] = True
            seed = self._seeds[i]
            seeds = [seed if j == i else None for j in range(self.num_envs)]
            obs, info = self.venv.reset(
                seed=seeds, options={**self._options[i], "reset_mask": mask}
            )
            self.reset_infos[i] = self._unbatch(info)[i]
        return obs

    def _unbatch(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        """Gymnasium's batched info -> SB3's list of per-lane dicts (present keys only)."""
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, values in info.items():
            if key.startswith("_") or key in ("final_obs",):
                continue
            present = info.get(f"_{key}")
            flat = values.ndim == 1 and values.dtype != object
            items = values.tolist() if flat else values  # python scalars, as single envs give
            for i in _lanes(present, self.num_envs):
                out[i][key] = items[i]
        return out


def _lanes(present: np.ndarray | None, n: int) -> Iterable[int]:
    return range(n) if present is None else np.flatnonzero(present).tolist()
