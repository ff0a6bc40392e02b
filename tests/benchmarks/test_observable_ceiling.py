"""benchmarks/observable_ceiling.py on a tiny world: the fitted model learns the
privileged labels, and its unseen-day score is finite and below the oracle's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from liveenv.presets import make_config

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "observable_ceiling.py"


@pytest.fixture(scope="module")
def ceiling():
    spec = importlib.util.spec_from_file_location("observable_ceiling", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def result(ceiling):
    cfg = make_config("default", **{"users.n_users": 2000, "streamers.n_streamers": 100})
    with threadpool_limits(limits=1):
        return ceiling.run(
            cfg, train_days=3, test_days=2, steps=60, ablations=("history",), max_iter=40
        )


def test_beats_random_on_its_training_labels(result) -> None:
    ins = result["in_sample"]
    assert ins["model"] > ins["random"] + 0.1 * (ins["oracle"] - ins["random"])
    assert ins["normalised"] <= 1.0 + 1e-9


def test_unseen_days_finite_and_below_the_oracle(result) -> None:
    s = result["summary"]
    assert s["oracle"]["normalised"] == pytest.approx(1.0)
    assert s["random"]["normalised"] == pytest.approx(0.0)
    for name in ("fitted", "fitted (on random's days)", "fitted - history (on random's days)"):
        v = s[name]["normalised"]
        assert np.isfinite(v) and v < 1.0, (name, v)
    assert len(result["per_day"]["own"]["fitted"]) == 2


def test_feature_names_match_the_matrix(ceiling) -> None:
    from liveenv.env import LiveStreamEnv

    env = LiveStreamEnv(
        make_config("default", **{"users.n_users": 500, "streamers.n_streamers": 50})
    )
    obs, _ = env.reset(seed=0)
    x, streamer = ceiling.pair_matrix(obs)
    space = env.observation_space
    names = ceiling.feature_names(
        space["user"].shape[0], space["time"].shape[0], env.config.obs_dim
    )
    assert x.shape == (env.world.n_live, len(names) - 1) and streamer.shape == (env.world.n_live,)
    for group in ceiling.GROUPS.values():  # every ablation drops something
        assert any(group(n) for n in names)
