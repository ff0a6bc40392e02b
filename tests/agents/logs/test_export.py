"""Exports of a log: KuaiLive's tables (read back with pandas) and a Minari dataset
(read back with minari.load_dataset), through `liveenv export` in a run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.logs import generate_log, read_log
from agents.logs.export import KUAILIVE_TABLES, ExportArgs, kuailive_tables
from agents.run.cli import main

TINY = {"users.n_users": 600, "streamers.n_streamers": 60, "start_hour": 20.0}


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "log"
    generate_log(
        out, "default", days=0.04, policy="platform", seed=0, overrides=TINY, progress=False
    )
    return out


def test_kuailive_tables_are_filters_of_the_log_with_kuailives_columns(log_dir: Path) -> None:
    log = read_log(log_dir)
    tables = kuailive_tables(log_dir)
    assert list(tables) == ["click", "like", "comment", "gift", "negative"]
    for name, frame in tables.items():
        assert tuple(frame.columns) == KUAILIVE_TABLES[name]
        assert all(frame[c].dtype == np.int64 for c in frame.columns if c != "gift_price")
    keys = ["user_id", "live_id", "streamer_id", "timestamp_ms"]
    clicks = log[log.is_click]
    assert len(tables["click"]) == len(clicks) > 0
    assert (tables["click"]["watch_live_time"].to_numpy() == clicks.watch_time_ms).all()
    assert (tables["click"]["timestamp"].to_numpy() == clicks.timestamp_ms).all()
    assert len(tables["negative"]) == int((~log.is_click).sum())
    assert len(tables["click"]) + len(tables["negative"]) == len(log)
    assert len(tables["like"]) == int(log.like.sum())
    assert len(tables["comment"]) == int(log.comment.sum())
    gifts = log[log.gift_price > 0]
    assert len(tables["gift"]) == len(gifts)
    assert np.allclose(tables["gift"]["gift_price"], gifts.gift_price)
    assert (
        tables["negative"][["user_id", "live_id", "streamer_id", "timestamp"]].to_numpy()
        == log.loc[~log.is_click, keys].to_numpy()
    ).all()


def test_export_command_writes_csvs_that_pandas_reads_back(
    log_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["export", "--run-dir", str(run), "--kuailive", "--log", str(log_dir)]) == 0
    assert "export_kuailive" in capsys.readouterr().out
    expected = kuailive_tables(log_dir)
    for name, frame in expected.items():
        back = pd.read_csv(run / "exports" / "kuailive" / f"{name}.csv")
        pd.testing.assert_frame_equal(back, frame, check_dtype=False)
        assert list(back.columns) == list(KUAILIVE_TABLES[name])
    assert main(["export", "--run-dir", str(run), "--kuailive", "--log", str(log_dir)]) == 0
    assert "export_kuailive" in capsys.readouterr().out  # kept: same log, same arguments


def test_export_needs_a_format_and_the_runs_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="nothing to export"):
        ExportArgs()
    with pytest.raises(SystemExit) as e:
        main(["export", "--run-dir", str(tmp_path / "run")])
    assert e.value.code == 2 and "nothing to export" in capsys.readouterr().err
    code = main(["export", "--run-dir", str(tmp_path / "run"), "--kuailive"])
    assert code == 2 and "stage 'log' has not finished" in capsys.readouterr().err


def test_minari_dataset_reads_back_with_minari(
    log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    minari = pytest.importorskip("minari")
    run = tmp_path / "run"
    argv = [
        "export",
        "--run-dir",
        str(run),
        "--minari",
        "--log",
        str(log_dir),
        "--episodes",
        "2",
        "--hours",
        "0.05",
        "--seed",
        "3",
    ]
    assert main(argv) == 0
    datasets = run / "exports" / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(datasets))
    ds = minari.load_dataset("liveenv/default/platform-v0")
    assert ds.total_episodes == 2 and ds.total_steps > 0
    assert set(ds.observation_space.spaces) >= {"rooms", "room_mask", "user", "history_mask"}
    for ep in ds.iterate_episodes():
        n = len(ep.actions)
        assert ep.observations["rooms"].shape[0] == n + 1 == len(ep.infos["action_mask"])
        mask = ep.infos["action_mask"]
        assert (mask == ep.observations["room_mask"].astype(bool)).all()
        assert mask[np.arange(n), ep.actions].all()  # every action was a live slot
        assert ep.truncations[-1] and not ep.terminations.any()
    env = ds.recover_environment()
    assert env.unwrapped.config.users.n_users == 600  # the log's world
    assert env.unwrapped.config.horizon_hours == 0.05
    for seed, ep in zip((3, 4), ds.iterate_episodes(), strict=True):  # replays step by step
        obs, _ = env.reset(seed=seed)
        assert np.array_equal(obs["rooms"], ep.observations["rooms"][0])
        rewards = [env.step(int(a))[1] for a in ep.actions]
        assert np.allclose(rewards, ep.rewards)
    env.close()
