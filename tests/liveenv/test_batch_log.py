"""The batched log recorder writes the single recorder's rows.

With ``batch_size=1`` the batched path is the single env bit for bit, so its
log must be the single recorder's log, cell for cell; with large batches the
log is readable in the same schema. (Lives here because it is the batched
path's test; it exercises :mod:`agents.logs.batched`.)
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from agents.logs import LogRecorder, read_log
from agents.logs.batched import BatchLogRecorder
from liveenv import LiveStreamEnv
from liveenv.batched import BatchedLiveEnv


def test_batch_of_one_logs_the_same_rows_as_the_single_recorder(tiny_config, tmp_path):
    cfg = tiny_config.replace(horizon_hours=0.5, start_hour=20.0)
    single = LogRecorder(
        LiveStreamEnv(cfg), tmp_path / "single", chunk_rows=500, policy_name="random"
    )
    batched = BatchLogRecorder(
        BatchedLiveEnv(cfg, batch_size=1),
        tmp_path / "batched",
        chunk_rows=500,
        policy_name="random",
    )
    single.reset(seed=4)
    batched.reset(seed=4)
    rng = np.random.default_rng(0)
    while True:
        n_live = single.unwrapped.world.n_live
        a = int(rng.integers(n_live))
        *_, trunc_s, _ = single.step_with_propensity(a, 1.0 / n_live)
        _, _, trunc_b, _ = batched.step(np.array([a]), 1.0 / n_live)
        assert trunc_s == trunc_b
        if trunc_s:
            break
    single.close()
    batched.close()
    assert len(single.parts_written) == len(batched.parts_written) > 1
    for a, b in zip(single.parts_written, batched.parts_written, strict=True):
        ta, tb = pq.read_table(a), pq.read_table(b)
        assert ta.schema.equals(tb.schema, check_metadata=True)
        for name in ta.column_names:
            if name == "policy_propensity":  # NaN in the past's rows: compare NaN-aware
                np.testing.assert_array_equal(ta[name].to_numpy(), tb[name].to_numpy())
            else:
                assert ta[name].equals(tb[name]), name


def test_large_batches_write_a_readable_log(tiny_config, tmp_path):
    cfg = tiny_config.replace(horizon_hours=1.0, start_hour=20.0, slate_size=2)
    rec = BatchLogRecorder(
        BatchedLiveEnv(cfg, batch_size=4096), tmp_path / "log", chunk_rows=2000, policy_name="top2"
    )
    obs, _ = rec.reset(seed=1)
    requests = 0
    while True:
        b = len(obs["user"])
        obs, _, truncated, _ = rec.step(np.tile([0, 1], (b, 1)), 1.0)
        requests += b
        if truncated:
            break
    rec.close()
    log = read_log(tmp_path / "log")
    assert len(log) == 2 * requests == rec.rows_written
    assert set(log["slate_pos"]) == {0, 1} and set(log["slot"]) == {0, 1}
    per_request = log.groupby("request_id")["is_click"].sum()
    assert per_request.max() == 1 and 0.1 < per_request.mean() < 0.6  # at most one click each
    assert (log.loc[~log["is_click"], "watch_time_ms"] == 0).all()
    assert log["timestamp_ms"].is_monotonic_increasing  # whole ticks, the clock never goes back
