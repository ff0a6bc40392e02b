"""Minari datasets of episodes in the world of a log (``liveenv export --minari``).

A log holds one row per impression, not the observation the behaviour policy
answered (the whole room table of every live slot, the user's history), so its
episodes cannot be turned into (observation, action, reward) steps after the
fact. The dataset is therefore *simulated anew*: the world the log was recorded
in (its ``liveenv.config`` metadata, with episodes of ``hours`` simulated hours)
under the log's behaviour policy (its ``policy`` column, e.g. ``platform``;
another name of :mod:`agents.logs.behaviour` or the policy registry with
``policy=``), one episode per seed ``seed, seed + 1, ...``. The log itself is
left as it is (``liveenv export --kuailive`` converts it).

Each step stores the env's Dict observation (every key, as the env gives it),
the action (the slot), the reward and ``truncated``; ``infos`` holds per step:

* ``action_mask`` (bool, ``max_rooms``): the valid slots of the request the
  observation at the same index shows (``env.action_masks()``; the env's action
  is a masked ``Discrete``);
* ``feedback`` (float32, 6): the feedback vector of the previous step (zeros at
  the reset), ``clicked_slot`` (-1: none), ``user_id``, ``time_s``, ``n_live``.

The dataset is written with Minari's ``create_dataset_from_buffers`` in its
``parquet`` format (pyarrow, compressed; ``data_format="arrow"`` writes Minari's
uncompressed Arrow files; ``hdf5`` would need h5py), under
``datasets_path/<dataset_id>``; read it with ``MINARI_DATASETS_PATH=datasets_path``
and ``minari.load_dataset(dataset_id)``. Minari's ``DataCollector`` wrapper is
not used: it needs jax (``minari[create]``, an 85 MB jaxlib wheel) only to
append steps to its buffers. The environment is made with ``gymnasium.make`` of
the preset's id and dotted overrides, so ``dataset.recover_environment()`` gives
the same world back.

Size: the observation dominates, with ``4 * max_rooms * (2 * obs_dim + 6)`` bytes
of room table per step (39 kB with the default 256 slots and 16-wide embeddings).
Measured in the demo's world (``default`` with 5,000 users and 400 streamers, at
20:00; 2 episodes of 0.5 h, 4,210 steps): 3.1 kB per step in ``parquet`` (most
room slots are empty, and zeros compress), 43.8 kB per step in ``arrow``; the
summary of every export reports its own bytes per step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.logs.behaviour import resolve_policy, split_action
from agents.logs.reader import log_config, read_log_table
from liveenv.config import EnvConfig
from liveenv.presets import ENV_IDS, make_config

__all__ = ["env_overrides", "export_minari", "minari_available"]


def minari_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("minari") is not None


def env_overrides(config: EnvConfig) -> tuple[str, dict[str, Any]]:
    """``(gym id, dotted overrides)`` with ``gymnasium.make(id, **overrides)`` giving
    ``config`` (its preset's id when it names one, else the default preset's)."""
    preset = config.preset if config.preset in ENV_IDS else "default"
    base = make_config(preset)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        mine, theirs = getattr(config, f.name), getattr(base, f.name)
        if dataclasses.is_dataclass(mine):
            for sub in dataclasses.fields(mine):
                a, b = getattr(mine, sub.name), getattr(theirs, sub.name)
                if a != b:
                    out[f"{f.name}.{sub.name}"] = _plain(a)
        elif mine != theirs:
            out[f.name] = _plain(mine)
    return ENV_IDS[preset], out


def _plain(value: Any) -> Any:
    """A JSON-ready value (Minari stores the env spec as JSON)."""
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "tolist", lambda: v)()))


@contextlib.contextmanager
def _datasets_path(path: Path) -> Iterator[None]:
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _info(env: gym.Env, info: dict[str, Any]) -> dict[str, Any]:
    fb = info.get("feedback")
    return {
        "action_mask": np.asarray(env.unwrapped.action_masks(), dtype=bool),
        "feedback": np.asarray(fb if fb is not None else np.zeros(6), dtype=np.float32),
        "clicked_slot": int(info.get("clicked_slot", -1)),
        "user_id": int(info["user_id"]),
        "time_s": float(info["time_s"]),
        "n_live": int(info["n_live"]),
    }


def _episode(env: gym.Env, policy: Any, seed: int, episode_id: int) -> Any:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    obs, info = env.reset(seed=seed)
    observations = {k: [v] for k, v in obs.items()}
    infos = {k: [v] for k, v in _info(env, info).items()}
    actions, rewards, terms, truncs = [], [], [], []
    truncated = False
    while not truncated:
        action, _ = split_action(policy(obs, env))
        obs, reward, terminated, truncated, info = env.step(action)
        for k, v in obs.items():
            observations[k].append(v)
        for k, v in _info(env, info).items():
            infos[k].append(v)
        actions.append(action)
        rewards.append(float(reward))
        terms.append(bool(terminated))
        truncs.append(bool(truncated))
        truncated = truncated or terminated
    return EpisodeBuffer(
        id=episode_id,
        seed=seed,
        observations=observations,
        actions=actions,
        rewards=rewards,
        terminations=terms,
        truncations=truncs,
        infos=infos,
    )


def export_minari(
    log: str | os.PathLike[str],
    datasets_path: str | os.PathLike[str],
    dataset_id: str = "",
    episodes: int = 2,
    hours: float = 0.5,
    seed: int = 0,
    policy: str = "",
    data_format: str = "parquet",
) -> dict[str, Any]:
    """Simulate ``episodes`` episodes of ``hours`` in the world of ``log`` under its
    behaviour policy (or ``policy``) and write them as the Minari dataset
    ``dataset_id`` (empty: ``liveenv/<preset>/<policy>-v0``) under ``datasets_path``.
    Returns a summary with the steps and the bytes per step on disk."""
    import minari

    if episodes < 1 or not hours > 0:
        raise ValueError(f"episodes={episodes} must be >= 1 and hours={hours} > 0")
    config = log_config(log)
    if not policy:
        first = read_log_table(log, ["policy"]).column(0)  # impressions, not the past
        policy = str(first[0]) if len(first) else "platform"
    env_id, overrides = env_overrides(config)
    overrides["horizon_hours"] = float(hours)
    preset = env_id.split("/")[1].rsplit("-", 1)[0].lower()
    dataset_id = dataset_id or f"liveenv/{preset}/{policy}-v0"
    root = Path(datasets_path)
    root.mkdir(parents=True, exist_ok=True)
    env = gym.make(env_id, **overrides)
    fn, name = resolve_policy(policy, seed)
    try:
        buffers = [_episode(env, fn, seed + i, i) for i in range(episodes)]
        with _datasets_path(root), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # no author e-mail, permalink
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=env,
                algorithm_name=f"liveenv behaviour policy {name!r}",
                author="liveenv-workbench",
                description=(
                    f"{episodes} episodes of {hours:g} simulated hours of {env_id} "
                    f"(the world of the log {Path(log).name}) under the behaviour policy "
                    f"{name!r}, seeds {seed}..{seed + episodes - 1}; infos: action_mask, "
                    "feedback, clicked_slot, user_id, time_s, n_live"
                ),
                data_format=data_format,
            )
    finally:
        env.close()
    path = root / dataset_id
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    steps = int(dataset.total_steps)
    return {
        "dataset_id": dataset_id,
        "path": str(path),
        "env_id": env_id,
        "overrides": overrides,
        "policy": name,
        "episodes": int(dataset.total_episodes),
        "steps": steps,
        "bytes": size,
        "bytes_per_step": size / max(steps, 1),
        "data_format": data_format,
    }
