"""The batched behaviour policies against their one-request versions, and logging
on the batched path."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from agents.logs import generate_log, read_log_arrays
from agents.logs.batch_behaviour import (
    BatchPlatform,
    BatchPopular,
    BatchRandom,
    batch_behaviour,
)
from agents.logs.behaviour import PlatformPolicy, PopularPolicy, draw_positions
from liveenv.batched import BatchedLiveEnv

TINY = {"users.n_users": 3000, "streamers.n_streamers": 200, "start_hour": 20.0}


@pytest.fixture(scope="module")
def batch() -> tuple[dict[str, np.ndarray], int]:
    """A batch observation of the evening, with users that have histories."""
    env = BatchedLiveEnv("default", batch_size=256, horizon_hours=2.0, **TINY)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(40):  # let histories build up
        b = len(obs["user"])
        obs, *_ = env.step(rng.integers(0, env.world.n_live, b))
    assert len(obs["user"]) > 8 and obs["history_mask"].any()
    return obs, env.world.n_live


def _row(obs: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    return {k: np.asarray(v[i]) for k, v in obs.items()}


def _env(k: int) -> SimpleNamespace:
    return SimpleNamespace(unwrapped=SimpleNamespace(config=SimpleNamespace(slate_size=k)))


def test_platform_probabilities_equal_the_one_request_policy_row_by_row(batch) -> None:
    obs, n_live = batch
    p = BatchPlatform().batch_probabilities(obs, n_live)
    assert p.shape == (len(obs["user"]), n_live)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    for i in range(len(obs["user"])):
        live, want = PlatformPolicy().probabilities(_row(obs, i), _env(1))
        np.testing.assert_array_equal(live, np.arange(n_live))
        np.testing.assert_allclose(p[i], want, rtol=1e-5)  # float32 history means


def test_popular_and_random_follow_their_laws(batch) -> None:
    obs, n_live = batch
    slots, props = BatchPopular()(obs, n_live, 3)
    want, _ = PopularPolicy()(_row(obs, 0), _env(3))
    np.testing.assert_array_equal(slots[0], want)
    assert (props == 1).all()
    slots, props = BatchRandom(seed=1)(obs, n_live, 3)
    assert slots.shape == (len(obs["user"]), 3) and (slots < n_live).all()
    assert all(len(set(r)) == 3 for r in slots.tolist())  # no repeats within a slate
    np.testing.assert_allclose(props[0], 1.0 / (n_live - np.arange(3)))


def test_positions_are_drawn_with_the_stated_propensities() -> None:
    p = np.tile(np.array([0.5, 0.3, 0.15, 0.05]), (40_000, 1))
    slots, props = draw_positions(p, 2, np.random.default_rng(0))
    freq = np.bincount(slots[:, 0], minlength=4) / len(slots)
    np.testing.assert_allclose(freq, p[0], atol=0.01)
    first = slots[:, 0]
    np.testing.assert_allclose(props[:, 0], p[0][first])
    np.testing.assert_allclose(props[:, 1], p[0][slots[:, 1]] / (1 - p[0][first]))
    assert (slots[:, 0] != slots[:, 1]).all()


def test_batched_log_is_reproducible_and_keeps_the_schema(tmp_path) -> None:
    kw = dict(days=1.0 / 24, policy="platform", seed=5, overrides=TINY, progress=False)
    a = generate_log(tmp_path / "a", **kw)
    b = generate_log(tmp_path / "b", **kw)
    generate_log(tmp_path / "one", batch_size=1, **kw)
    assert a["batch_size"] == 4096 and a["rows"] == b["rows"] > 0
    la, lb, l1 = (read_log_arrays(tmp_path / n) for n in ("a", "b", "one"))
    assert set(la) == set(l1)
    for key in la:
        np.testing.assert_array_equal(la[key], lb[key])
    prop = la["policy_propensity"]
    assert np.isfinite(prop).all() and ((prop > 0) & (prop <= 1)).all()
    # same world and hour, another serving order: the click rates agree
    assert abs(la["is_click"].mean() - l1["is_click"].mean()) < 0.05


def test_unknown_batched_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed"):
        batch_behaviour("oracle")
