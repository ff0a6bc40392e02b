"""Playing the episodes of an online evaluation (:func:`agents.evaluate.online.evaluate`).

:func:`run_episode` plays one policy from one seed and returns one row per impression
(the reward, the feedback per objective, the :data:`BREAKDOWNS` of the request and,
with ``expected``, the chosen room's expected feedback) and the impression count of
every streamer that was live. The episodes of an evaluation run one after the other
in this process or in spawned worker processes; :class:`EpisodeStore` keeps the
finished ones on disk so that an interrupted evaluation resumes.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liveenv.atomic import atomic_write_bytes
from liveenv.config import EnvConfig
from liveenv.env import LiveStreamEnv
from liveenv.objectives import OBJECTIVES
from policies.base import Policy

BREAKDOWNS = ("user_cohort", "streamer_cohort", "phase", "hour")
#: Expected feedback of the chosen room per objective (``expected=True``).
EXPECTED_OBJECTIVES = tuple(f"expected_{k}" for k in OBJECTIVES)

__all__ = [
    "BREAKDOWNS",
    "EXPECTED_OBJECTIVES",
    "Episode",
    "EpisodeStore",
    "play_episodes",
    "play_episodes_parallel",
    "run_episode",
]


def _policy_seed(seed: int, name: str) -> int:
    """A per-policy seed derived from the run seed, stable across processes."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())])
    return int(ss.generate_state(1)[0])


def run_episode(
    policy: Policy,
    env: LiveStreamEnv,
    seed: int,
    max_steps: int | None,
    bar: Any = None,
    expected: bool = False,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Play ``policy`` from ``env.reset(seed=seed)`` for at most ``max_steps``
    steps (``None``: to the end of the episode).

    Returns ``(impressions, exposure)``: one row per impression, and the
    impression count of every streamer that was live at some request.
    ``expected``: also record ``expected_return``, the env's true expected
    reward of the chosen room, and its expected feedback per objective
    (``expected_click``, ...; privileged; one room per request only).
    """
    if expected and env.config.slate_size != 1:
        raise ValueError("expected=True needs slate_size == 1 (no slate-level oracle)")
    obs, info = env.reset(seed=seed)
    policy.reset(_policy_seed(seed, policy.name))
    priv = env if policy.requires_env else None
    rows: list[tuple[Any, ...]] = []
    feedback: list[np.ndarray] = []
    shown: list[np.ndarray] = []
    expect: list[np.ndarray] = []
    seen = np.zeros(1024, dtype=bool)
    limit = np.inf if max_steps is None else max_steps
    while len(rows) < limit:
        live = obs["room_streamer"][obs["room_mask"].astype(bool)]
        if len(live) and live.max() >= len(seen):
            seen = np.concatenate([seen, np.zeros(2 * int(live.max()) + 1 - len(seen), bool)])
        seen[live] = True
        action = policy.act(obs, env=priv).action(0)
        if expected:
            # the chosen room(s) alone: (6,) for one room, (K, 6) for a slate
            fb = env.unwrapped.oracle_expected_feedback(np.atleast_1d(action))
            expect.append(fb if np.ndim(action) else fb[0])
        shown.append(obs["room_streamer"][np.atleast_1d(action)])
        hour = int(info["hour"]) % 24
        obs, reward, terminated, truncated, info = env.step(action)
        feedback.append(info["feedback"])
        rows.append(
            (reward, info["served_user_cohort"], info["streamer_cohort"], info["phase"], hour)
        )
        if bar is not None:
            bar.update(1)
        if terminated or truncated:
            break
    frame = pd.DataFrame(rows, columns=["weighted_return", *BREAKDOWNS])
    frame[list(OBJECTIVES)] = np.asarray(feedback, dtype=np.float64).reshape(-1, len(OBJECTIVES))
    if expected:
        fb = np.asarray(expect, dtype=np.float64).reshape(-1, len(OBJECTIVES))
        frame["expected_return"] = fb @ np.asarray(env.unwrapped.weights, dtype=np.float64)
        frame[list(EXPECTED_OBJECTIVES)] = fb
    counts = np.bincount(np.concatenate(shown), minlength=len(seen)) if shown else np.zeros(0)
    return frame, counts[np.flatnonzero(seen)] if len(counts) else counts


Episode = tuple[tuple[str, int], tuple[pd.DataFrame, np.ndarray]]


class EpisodeStore:
    """Finished episodes on disk, one ``(impressions, exposure)`` pair per (policy, seed):
    ``<policy>-<crc>__<seed>.parquet`` and its ``.exposure.npy``, each written
    atomically, the table last (its presence marks the episode done)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _stem(self, name: str, seed: int) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60]
        return self.folder / f"{safe}-{zlib.crc32(name.encode()):08x}__{int(seed)}"

    def save(self, name: str, seed: int, frame: pd.DataFrame, exposure: np.ndarray) -> None:
        from agents.evaluate.tables import write_table

        stem = self._stem(name, seed)
        buf = io.BytesIO()
        np.save(buf, exposure)
        atomic_write_bytes(stem.with_name(stem.name + ".exposure.npy"), buf.getvalue())
        write_table(frame, stem.with_name(stem.name + ".parquet"))

    def load(self, tasks: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Any]:
        """The stored episodes among ``tasks``."""
        out = {}
        for name, seed in tasks:
            stem = self._stem(name, seed)
            table = stem.with_name(stem.name + ".parquet")
            if table.exists():
                exposure = np.load(stem.with_name(stem.name + ".exposure.npy"))
                out[name, seed] = pd.read_parquet(table), exposure
        return out


def evaluation_env(cfg: EnvConfig) -> LiveStreamEnv:
    """The env a policy is evaluated in: a masked slot raises (a policy that picks one
    is broken; the env's default, ``masked_action="skip"``, would score it 0)."""
    return LiveStreamEnv(cfg.replace(masked_action="raise"))


def play_episodes(
    runs: Mapping[str, Policy],
    cfg: EnvConfig,
    tasks: list[tuple[str, int]],
    steps: int | None,
    expected: bool,
    bar: Any,
) -> Iterator[Episode]:
    env = evaluation_env(cfg)
    for name, seed in tasks:
        bar.set_postfix_str(f"{name} seed={seed}")
        yield (name, seed), run_episode(runs[name], env, seed, steps, bar, expected)


def _play(
    policy: Policy, cfg: EnvConfig, seed: int, steps: int | None, expected: bool
) -> tuple[pd.DataFrame, np.ndarray]:
    """One episode in a worker process (one intra-op thread: the workers share the cores)."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    return run_episode(policy, evaluation_env(cfg), seed, steps, None, expected)


def play_episodes_parallel(
    runs: Mapping[str, Policy],
    cfg: EnvConfig,
    tasks: list[tuple[str, int]],
    steps: int | None,
    expected: bool,
    workers: int,
) -> Iterator[Episode]:
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_play, runs[n], cfg, s, steps, expected): (n, s) for n, s in tasks}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
