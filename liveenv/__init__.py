"""LiveEnv: a SimPy-driven Gymnasium environment of a live-streaming platform.

>>> import gymnasium as gym, liveenv
>>> env = gym.make("liveenv/Default-v0")
>>> mo_env = gym.make("liveenv/Default-MO-v0")  # reward: the (6,) feedback vector
>>> envs = gym.make_vec("liveenv/Default-v0", num_envs=8, vectorization_mode="vector_entry_point")
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gymnasium.envs.registration import register, registry

from liveenv.config import EnvConfig, ResponseConfig, StreamerConfig, UserConfig
from liveenv.env import LiveStreamEnv
from liveenv.objectives import DEFAULT_WEIGHTS, OBJECTIVES, as_weight_vector
from liveenv.presets import ENV_IDS, MO_ENV_IDS, PRESETS, make_config

try:
    __version__: str = version("liveenv-workbench")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

for _preset, _env_id in ENV_IDS.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="liveenv.env:LiveStreamEnv",
            kwargs={"config": _preset},
            vector_entry_point="liveenv.vector:LiveVectorEnv",
            disable_env_checker=False,
        )
# Vector rewards: registered without Gymnasium's passive checker, which warns on any
# reward that is not a scalar (mo_gymnasium.make disables it for the same reason).
for _preset, _env_id in MO_ENV_IDS.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="liveenv.env:LiveStreamEnv",
            kwargs={"config": _preset, "reward_mode": "vector"},
            disable_env_checker=True,
        )

__all__ = [
    "DEFAULT_WEIGHTS",
    "ENV_IDS",
    "MO_ENV_IDS",
    "OBJECTIVES",
    "PRESETS",
    "EnvConfig",
    "LiveStreamEnv",
    "ResponseConfig",
    "StreamerConfig",
    "UserConfig",
    "__version__",
    "as_weight_vector",
    "make_config",
]
