"""Interaction logs: round trip, chunks, atomic writes, schema checks, propensities."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agents.logs import (
    LOG_SCHEMA,
    LogRecorder,
    PlatformPolicy,
    RandomPolicy,
    generate_log,
    log_parts,
    read_log,
    read_log_arrays,
)
from agents.logs import parts as parts_mod
from liveenv import LiveStreamEnv, make_config

ROOT = Path(__file__).resolve().parents[3]
TINY = {
    "users.n_users": 2000,
    "streamers.n_streamers": 150,
    "start_hour": 20.0,
    "horizon_hours": 2.0,
}


def tiny_env(**extra: object) -> LiveStreamEnv:
    return LiveStreamEnv(make_config("default", **{**TINY, **extra}))


def record(tmp: Path, steps: int, chunk_rows: int, slate: int = 1, seed: int = 0):
    """Run a random policy through a LogRecorder; return what the env said."""
    env = LogRecorder(tiny_env(slate_size=slate), tmp, chunk_rows=chunk_rows, policy_name="rnd")
    policy = RandomPolicy(seed=seed)
    obs, info = env.reset(seed=seed)
    seen = []
    for _ in range(steps):
        action, prop = policy(obs, env)
        before = {
            "user": info["user_id"],
            "t": info["time_s"],
            "n_live": info["n_live"],
            "streamers": obs["room_streamer"][np.atleast_1d(action)].copy(),
        }
        obs, reward, _, _, info = env.step_with_propensity(action, prop)
        seen.append({**before, "action": np.atleast_1d(action), "reward": reward, "info": info})
    env.close()
    return env, seen


def test_round_trip_matches_what_the_env_returned(tmp_path: Path) -> None:
    env, seen = record(tmp_path, steps=900, chunk_rows=300)
    log = read_log(tmp_path)
    assert len(log) == 900 and env.rows_written == 900
    # the world's past first (its own part), then the impressions in chunks
    assert [p.name for p in log_parts(tmp_path)] == [f"part-0000{i}.parquet" for i in range(4)]
    past = read_log(tmp_path / "part-00000.parquet", rows="past")
    assert len(past) == env.past_rows_written > 0 and (past["request_id"] < 0).all()
    assert len(read_log(tmp_path / "part-00000.parquet")) == 0
    info = [s["info"] for s in seen]
    fb = np.array([i["feedback"] for i in info])
    np.testing.assert_array_equal(log["is_click"], fb[:, 0] > 0)
    np.testing.assert_array_equal(log["is_click"], [i["clicked_slot"] >= 0 for i in info])
    np.testing.assert_array_equal(
        log["watch_time_ms"], np.round([i["watch_s"] * 1000 for i in info]).astype(np.int64)
    )
    np.testing.assert_allclose(log["gift_price"], fb[:, 5])
    for j, name in enumerate(("like", "comment", "follow")):
        np.testing.assert_array_equal(log[name], fb[:, 2 + j] > 0)
    np.testing.assert_allclose(log["reward"], [s["reward"] for s in seen], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(log["user_id"], [s["user"] for s in seen])
    np.testing.assert_array_equal(log["live_id"], [i["room_id"] for i in info])
    np.testing.assert_array_equal(log["streamer_id"], [i["streamer_id"] for i in info])
    np.testing.assert_array_equal(log["slot"], [s["action"][0] for s in seen])
    np.testing.assert_array_equal(log["timestamp_ms"], np.round([s["t"] * 1e3 for s in seen]))
    np.testing.assert_array_equal(log["phase"], [i["phase"] for i in info])
    # the propensity given to step_with_propensity: uniform over the live rooms
    np.testing.assert_allclose(log["policy_propensity"], [1 / s["n_live"] for s in seen])
    assert set(log["policy"]) == {"rnd"} and (log["request_id"] == np.arange(900)).all()


def test_unclicked_exposures_are_rows_with_zero_feedback(tmp_path: Path) -> None:
    record(tmp_path, steps=400, chunk_rows=1000)
    log = read_log(tmp_path)
    miss = log[~log["is_click"]]
    assert 0 < len(miss) < len(log)
    assert (miss["watch_time_ms"] == 0).all() and (miss["gift_price"] == 0).all()
    assert not miss[["like", "comment", "follow"]].to_numpy().any()
    assert (miss["live_id"] >= 0).all() and (miss["streamer_id"] >= 0).all()


def test_a_slate_gives_one_row_per_position(tmp_path: Path) -> None:
    _, seen = record(tmp_path, steps=300, chunk_rows=10_000, slate=3)
    log = read_log(tmp_path)
    assert len(log) == 900
    assert (log["slate_pos"].to_numpy() == np.tile(np.arange(3), 300)).all()
    per_request = log.groupby("request_id")
    assert (per_request["is_click"].sum() <= 1).all()
    assert (per_request["live_id"].nunique() == 3).all()
    np.testing.assert_array_equal(
        log["streamer_id"], np.concatenate([s["streamers"] for s in seen])
    )
    # the row the env reports on (the clicked one, or the top one) has its room id
    for s, (_, rows) in zip(seen, per_request, strict=True):
        hits = np.flatnonzero(s["action"] == s["info"]["clicked_slot"])
        pos = int(hits[0]) if len(hits) else 0
        assert rows["live_id"].iloc[pos] == s["info"]["room_id"]
    # random slates: P(slot at position j | slots above) = 1 / (n_live - j)
    n_live = np.repeat([s["n_live"] for s in seen], 3)
    np.testing.assert_allclose(log["policy_propensity"], 1 / (n_live - np.tile(np.arange(3), 300)))


def test_plain_step_records_nan_propensity(tmp_path: Path) -> None:
    env = LogRecorder(tiny_env(), tmp_path, chunk_rows=100)
    obs, _ = env.reset(seed=1)
    for _ in range(50):
        obs, *_ = env.step(int(np.flatnonzero(obs["room_mask"])[0]))
    env.close()
    assert read_log(tmp_path)["policy_propensity"].isna().all()


def test_arrays_stack_vector_columns(tmp_path: Path) -> None:
    env, _ = record(tmp_path, steps=120, chunk_rows=50)
    arrays = read_log_arrays(tmp_path)
    cfg = env.unwrapped.config
    assert arrays["content_emb"].shape == (120, cfg.obs_dim)
    assert arrays["pooled_emb"].shape == (120, cfg.obs_dim)
    assert arrays["user_feat"].shape == (120, env.observation_space["user"].shape[0])
    assert arrays["room_stats"].dtype == np.float32 and arrays["room_stats"].ndim == 2
    assert arrays["phase"].dtype.kind == "U" and arrays["is_click"].dtype == bool
    assert set(read_log_arrays(tmp_path, columns=["user_id"])) == {"user_id"}


def test_stray_temp_files_are_ignored(tmp_path: Path) -> None:
    record(tmp_path, steps=200, chunk_rows=100)
    (tmp_path / ".part-00002.parquet.999.tmp").write_bytes(b"PAR1 half a footer")
    (tmp_path / "part-00003.parquet.tmp").write_bytes(b"\x00" * 10)
    assert len(read_log(tmp_path)) == 200


def test_a_failed_write_leaves_no_part_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    env = LogRecorder(tiny_env(), tmp_path, chunk_rows=100)
    obs, _ = env.reset(seed=0)
    policy = RandomPolicy()

    def crash(table: pa.Table, where, **kwargs: object) -> None:
        where.write(b"PAR1 partial bytes")
        raise OSError("disk full")

    for i in range(250):
        if i == 150:  # the second chunk's write (at 200 rows) dies halfway
            monkeypatch.setattr(parts_mod.pq, "write_table", crash)
        action, prop = policy(obs, env)
        try:
            obs, *_ = env.step_with_propensity(action, prop)
        except OSError:
            break
    # the past's part and the first chunk; nothing of the failed second chunk
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert len(read_log(tmp_path)) == 100


def test_a_killed_run_leaves_complete_readable_parts(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        from agents.logs import generate_log
        generate_log({str(tmp_path)!r}, days=1.0, policy="random", chunk_rows=150,
                     progress=False, overrides={TINY!r})
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    deadline = time.monotonic() + 60
    while len(log_parts(tmp_path)) < 4 and time.monotonic() < deadline:
        assert proc.poll() is None, "the log run ended early"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    parts = log_parts(tmp_path)
    assert len(parts) >= 4
    log = read_log(tmp_path)
    assert len(log) == 150 * (len(parts) - 1)  # the first part holds the past
    assert (log["request_id"].to_numpy() == np.arange(len(log))).all()


def test_a_log_of_another_schema_is_refused(tmp_path: Path) -> None:
    record(tmp_path, steps=60, chunk_rows=1000)
    table = pq.read_table(tmp_path / "part-00000.parquet")
    missing = tmp_path / "missing"
    missing.mkdir()
    pq.write_table(table.drop_columns(["watch_time_ms"]), missing / "part-00000.parquet")
    with pytest.raises(ValueError, match="watch_time_ms"):
        read_log(missing)
    retyped = tmp_path / "retyped"
    retyped.mkdir()
    i = table.schema.get_field_index("gift_price")
    bad = table.set_column(i, "gift_price", table.column("gift_price").cast(pa.int64()))
    pq.write_table(bad, retyped / "part-00000.parquet")
    with pytest.raises(ValueError, match="gift_price"):
        read_log_arrays(retyped)
    with pytest.raises(ValueError, match="not_a_column"):
        read_log(tmp_path, columns=["not_a_column"])


def test_a_used_directory_needs_append(tmp_path: Path) -> None:
    record(tmp_path, steps=50, chunk_rows=1000)
    with pytest.raises(FileExistsError):
        LogRecorder(tiny_env(), tmp_path)
    env = LogRecorder(tiny_env(), tmp_path, append=True)
    obs, _ = env.reset(seed=3)
    env.step(int(np.flatnonzero(obs["room_mask"])[0]))
    env.close()
    # each run: the past's part, then its impressions
    assert [p.name for p in log_parts(tmp_path)] == [f"part-0000{i}.parquet" for i in range(4)]


def test_generate_log_with_named_and_callable_policies(tmp_path: Path) -> None:
    short = TINY  # generate_log sets the horizon from `days`
    summary = generate_log(
        tmp_path / "pop", days=0.25 / 24, policy="popular", overrides=short, progress=False
    )
    log = read_log(tmp_path / "pop")
    assert summary["rows"] == len(log) == summary["requests"] > 0
    assert summary["impressions_per_s"] > 0 and (log["policy_propensity"] == 1.0).all()
    assert (log["policy"] == "popular").all()
    assert log["timestamp_ms"].max() < (20.25 * 3600 + 60) * 1000

    def first_live(obs: dict, env: object) -> int:
        return int(np.flatnonzero(obs["room_mask"])[0])

    generate_log(tmp_path / "fn", days=0.1 / 24, policy=first_live, overrides=short, progress=False)
    log = read_log(tmp_path / "fn")
    assert (log["policy"] == "first_live").all() and log["policy_propensity"].isna().all()
    platform = PlatformPolicy(seed=0)
    generate_log(tmp_path / "pl", days=0.1 / 24, policy=platform, overrides=short, progress=False)
    prop = read_log(tmp_path / "pl")["policy_propensity"]
    assert ((prop > 0) & (prop <= 1)).all()


def test_schema_documents_every_column() -> None:
    doc = (ROOT / "docs" / "LOG_SCHEMA.md").read_text()
    for field in LOG_SCHEMA:
        assert field.metadata[b"doc"], field.name
        assert f"`{field.name}`" in doc, f"docs/LOG_SCHEMA.md misses {field.name}"
