"""LiveSIDTracker: dynamic SIDs of the live rooms kept in sync with a running world."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.logs import generate_log, make_log_env, read_log_arrays, resolve_policy
from policies.tokenizer import SIDTokenizer, SIDTokenizerConfig
from policies.tokenizer.tracker import DEFAULT_HYSTERESIS, LiveSIDTracker

TINY = {"users.n_users": 3000, "streamers.n_streamers": 300}
CFG = SIDTokenizerConfig(codebook_sizes=(8, 8), epochs=4, batch_size=64)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("log") / "default"
    generate_log(
        out, "default", days=2 / 24, policy="platform", seed=0, overrides=TINY, progress=False
    )
    return out


@pytest.fixture(scope="module")
def dynamic(log_dir: Path) -> SIDTokenizer:
    return SIDTokenizer.fit(read_log_arrays(log_dir), CFG)


@pytest.fixture(scope="module")
def static(log_dir: Path) -> SIDTokenizer:
    return SIDTokenizer.fit(read_log_arrays(log_dir), CFG.replace(mode="static"))


def rollout(preset: str, hours: float, on_step: Callable[[Any, dict], None], seed: int = 0) -> Any:
    """Run the platform policy on a tiny world of ``preset``; call ``on_step(env, obs)``."""
    env = make_log_env(preset, hours / 24, TINY)
    policy, _ = resolve_policy("platform", seed)
    obs, _ = env.reset(seed=seed)
    on_step(env, obs)
    truncated = False
    while not truncated:
        action, _ = policy(obs, env)
        obs, _, _, truncated, _ = env.step(action)
        on_step(env, obs)
    return env


def test_index_follows_the_live_rooms(dynamic: SIDTokenizer) -> None:
    tracker = LiveSIDTracker(dynamic, hysteresis=0.0)  # plain: SIDs are the nearest codes
    seen: set[int] = set()
    checks = {"ticks": 0, "ended": 0}

    def check(env: Any, obs: dict) -> None:
        w = env.unwrapped.world
        recomputed = tracker.update(env)
        assert tracker.update(env) is False  # same tick: cached
        if not recomputed:
            return
        checks["ticks"] += 1
        slots = w.table_slots
        rooms = w.rooms.t.room_id[slots]
        assert tracker.index.room_ids == sorted(rooms.tolist())
        np.testing.assert_array_equal(tracker.keys, rooms)
        want = dynamic.encode(
            w.rooms.t.obs[slots],
            w.streamers.pooled[w.rooms.t.streamer[slots]],
            w.rooms.t.streamer[slots],
        )
        np.testing.assert_array_equal(tracker.sids, want)
        for i in range(0, len(rooms), 7):
            assert tracker.sid_of(int(rooms[i])) == tuple(want[i].tolist())
            assert int(rooms[i]) in tracker.rooms_for(want[i])
            assert i in tracker.slots_for(want[i])
        checks["ended"] += len(seen - set(rooms.tolist()))
        seen.clear()
        seen.update(rooms.tolist())

    rollout("default", 0.75, check)
    assert checks["ticks"] >= 60  # one recompute per 30-s tick with requests
    assert checks["ended"] > 0  # rooms ended during the rollout and left the index
    assert tracker.n_updates == checks["ticks"]


def test_dynamic_churn_follows_drift_static_never_changes(
    dynamic: SIDTokenizer, static: SIDTokenizer
) -> None:
    churn = {}
    for preset in ("no_drift", "fast_drift"):
        trackers = [
            LiveSIDTracker(dynamic),
            LiveSIDTracker(static),
            LiveSIDTracker(dynamic, hysteresis=0.0),
        ]
        assert trackers[0].hysteresis == DEFAULT_HYSTERESIS == 0.1
        rollout(preset, 0.75, lambda env, _obs, t=trackers: [x.update(env) for x in t])
        churn[preset] = [t.churn() for t in trackers]
        assert churn[preset][1]["mean_distinct"] == 1.0  # static: one SID per broadcast
        assert churn[preset][1]["mean_changes"] == 0.0
    no_drift, fast = churn["no_drift"][0], churn["fast_drift"][0]
    plain_no_drift = churn["no_drift"][2]
    assert plain_no_drift["mean_distinct"] < 1.3  # only observation noise near cell borders
    # the default hysteresis damps that noise: no_drift rooms keep (nearly) one SID
    assert no_drift["mean_distinct"] < 1.1
    assert no_drift["changes_per_hour"] < 0.5 * plain_no_drift["changes_per_hour"]
    assert fast["mean_distinct"] > 2.0 * no_drift["mean_distinct"]
    assert fast["changes_per_hour"] > 3.0 * no_drift["changes_per_hour"]


def test_observation_dicts_are_keyed_by_streamer(dynamic: SIDTokenizer) -> None:
    by_obs, by_world = LiveSIDTracker(dynamic), LiveSIDTracker(dynamic)

    def both(env: Any, obs: dict) -> None:
        by_world.update(env)
        by_obs.update(obs)
        w = env.unwrapped.world
        np.testing.assert_array_equal(by_obs.keys, w.rooms.t.streamer[w.table_slots])
        np.testing.assert_array_equal(by_obs.sids, by_world.sids)

    rollout("default", 0.25, both)
    assert by_obs.n_updates == by_world.n_updates  # unchanged tables are not re-encoded
    assert np.isnan(by_obs.history()["time_s"]).all()


def test_refits_rebuild_the_index_and_count_churn_per_codebook(dynamic: SIDTokenizer) -> None:
    tracker = LiveSIDTracker(dynamic, refit_every_hours=0.25, refit_window_hours=0.25)
    rollout("default", 0.9, lambda env, _obs: tracker.update(env))
    assert tracker.codebook_version >= 2
    assert len(tracker.refit_times) == tracker.codebook_version
    assert np.all(np.diff(tracker.refit_times) >= 0.25 * 3600 - 1e-6)
    assert tracker.tokenizer is not dynamic  # new codebooks, same towers
    assert tracker.tokenizer.tower is dynamic.tower
    assert len(tracker.index) == len(tracker.keys)
    np.testing.assert_array_equal([tracker.sid_of(int(k)) for k in tracker.keys], tracker.sids)
    h = tracker.history()
    assert set(np.unique(h["version"]).tolist()) == set(range(tracker.codebook_version + 1))


def test_reset_starts_afresh_and_bad_arguments_are_refused(dynamic: SIDTokenizer) -> None:
    tracker = LiveSIDTracker(dynamic)
    env = rollout("default", 0.1, lambda env, _obs: tracker.update(env))
    before = tracker.n_updates
    env.reset(seed=1)
    assert tracker.update(env) is True
    assert tracker.n_updates == 1 < before
    with pytest.raises(ValueError, match="refit_every_hours=0 is invalid"):
        LiveSIDTracker(dynamic, refit_every_hours=0)
    with pytest.raises(ValueError, match="scope='some' is invalid"):
        LiveSIDTracker(dynamic, scope="some")
    with pytest.raises(ValueError, match="cannot track SIDs from a int"):
        tracker.update(3)
    with pytest.raises(ValueError, match="has no 'rooms' entry"):
        tracker.update({"room_mask": np.ones(3)})


def test_retrieval_helpers() -> None:
    from experiments.sid_retrieval import expected_recall, prefix_depth

    table = np.array([[1, 2, 3], [1, 2, 4], [1, 5, 3], [7, 2, 3]])
    hist = np.array([[1, 2, 3], [1, 5, 0]])
    # shared leading tokens summed over the history: [3+1, 2+1, 1+2, 0+0]
    np.testing.assert_array_equal(prefix_depth(table, hist), [4, 3, 3, 0])
    np.testing.assert_array_equal(prefix_depth(table, hist[:0]), [0, 0, 0, 0])
    scores = np.array([4.0, 3.0, 3.0, 0.0])
    assert expected_recall(scores, 0, 1) == 1.0
    assert expected_recall(scores, 1, 2) == 0.5  # tied with room 2 for the second place
    assert expected_recall(scores, 3, 3) == 0.0


def test_hysteresis_damps_noise_flicker_and_stays_near_the_best_code(
    dynamic: SIDTokenizer,
) -> None:
    plain = LiveSIDTracker(dynamic, hysteresis=0.0)
    sticky = LiveSIDTracker(dynamic, hysteresis=0.2)
    q = dynamic.quantiser

    def check(env: Any, _obs: dict) -> None:
        plain.update(env)
        if not sticky.update(env):
            return
        w = env.unwrapped.world
        st = w.rooms.t.streamer[w.table_slots]
        emb = dynamic.embed_rooms(w.rooms.t.obs[w.table_slots], w.streamers.pooled[st], st)
        d_kept = np.sum((emb - q.decode(sticky.sids)) ** 2, axis=1)
        d_best = np.sum((emb - q.decode(q.encode(emb))) ** 2, axis=1)
        assert np.all(d_kept <= 1.2 * d_best + 1e-9)
        assert sticky.index.room_ids == sorted(sticky.keys.tolist())

    rollout("no_drift", 0.75, check)
    assert sticky.churn()["changes_per_hour"] < plain.churn()["changes_per_hour"]
    frozen = LiveSIDTracker(dynamic, hysteresis=float("inf"))
    first: dict[int, tuple[int, ...]] = {}

    def remember_first(env: Any, _obs: dict) -> None:
        plain.update(env)
        if frozen.update(env):
            for key, sid in zip(plain.keys.tolist(), plain.sids.tolist(), strict=True):
                first.setdefault(key, tuple(sid))
            assert [frozen.sid_of(k) for k in frozen.keys.tolist()] == [
                first[k] for k in frozen.keys.tolist()
            ]

    rollout("fast_drift", 0.5, remember_first)
    assert frozen.churn()["mean_distinct"] == 1.0 < plain.churn()["mean_distinct"]
    assert sticky.churn()["mean_distinct"] <= plain.churn()["mean_distinct"]
    for bad in (-1, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match=f"hysteresis={bad!r} is invalid: must be a float"):
            LiveSIDTracker(dynamic, hysteresis=bad)
