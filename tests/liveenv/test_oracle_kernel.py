"""The oracle's numba kernel against the numpy reference, its per-request cache in
the env, the batched env's one-call oracle, and the backend switch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from liveenv import LiveStreamEnv, make_config
from liveenv.batched import BatchedLiveEnv
from liveenv.oracle import backend, expected_feedback_kernel, use_backend
from liveenv.population import draw_gift_pull
from liveenv.reference import expected_feedback_reference
from liveenv.response import Impressions, expected_feedback


def random_impressions(cfg, n: int, rng: np.random.Generator, dtype=np.float64) -> Impressions:
    """``n`` impressions of 7 rooms whose content mostly suits the viewers (long watches)."""
    d, slots, ring = cfg.latent_dim, 7, cfg.response.max_watch_segments + 2
    content = rng.standard_normal((slots, ring, d))
    content /= np.linalg.norm(content, axis=-1, keepdims=True)
    content = content + 1.5 * rng.standard_normal(d)[None, None, :]
    content /= np.linalg.norm(content, axis=-1, keepdims=True)
    vec = content[0, 0][None, :] + 0.3 * rng.standard_normal((n, d))
    t = rng.uniform(1000.0, 5000.0, n)
    slot = rng.integers(0, slots, n)
    pull = draw_gift_pull(slots, cfg.streamers.gift_pull_sigma, rng)[slot]
    return Impressions(
        t=t,
        vec=vec.astype(dtype),
        like_prop=rng.lognormal(0, 1, n),
        comment_prop=rng.lognormal(0, 1, n),
        gift_prop=rng.lognormal(0, 1, n) * (rng.random(n) < 0.5),
        followed=rng.random(n) < 0.3,
        gift_pull=pull,
        end_t=t + rng.uniform(-20.0, 5 * 3600.0, n),
        slot=slot,
        content=content.astype(dtype),
        bias=rng.normal(0, 0.3, (slots, ring)).astype(dtype),
        follow_bonus=0.35,
    )


def test_kernel_matches_reference_when_both_sum_every_boundary(world_overrides):
    """``tol=0``: both sum every boundary; in float64 they agree to rounding."""
    cfg = make_config("default", **world_overrides)
    imp = random_impressions(cfg, 400, np.random.default_rng(11))
    ref = expected_feedback_reference(imp, cfg, tol=0.0)
    fast = expected_feedback_kernel(imp, cfg, tol=0.0)
    np.testing.assert_allclose(fast, ref, rtol=1e-11, atol=1e-11)
    assert np.all(fast >= 0) and np.all(fast[:, 0] <= 1)


def test_kernel_default_tolerance_is_close_to_exact(world_overrides):
    cfg = make_config("default", **world_overrides)
    imp = random_impressions(cfg, 400, np.random.default_rng(12))
    exact = expected_feedback_kernel(imp, cfg, tol=0.0)
    np.testing.assert_allclose(expected_feedback_kernel(imp, cfg), exact, rtol=0, atol=1e-8)
    np.testing.assert_allclose(expected_feedback_reference(imp, cfg), exact, rtol=0, atol=1e-5)


def test_kernel_matches_reference_on_live_requests(tiny_config, world_overrides):
    """Real requests (float32 content): the same oracle choice on every request,
    utilities within 1e-6 relative (the reference rounds appeals in float32)."""
    cfg = tiny_config.replace(**world_overrides)
    env = LiveStreamEnv(cfg)
    env.reset(seed=5)
    w, n_checked = env.world, 0
    for _ in range(150):
        slots = w.table_slots
        imp = w.impressions(np.full(len(slots), env._user_id), np.full(len(slots), env._now), slots)
        ref = expected_feedback_reference(imp, cfg) @ env.weights
        fast = expected_feedback_kernel(imp, cfg) @ env.weights
        assert np.argmax(fast) == np.argmax(ref)
        np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-9)
        n_checked += 1
        env.step(int(np.argmax(fast)))
    assert n_checked == 150


def test_kernel_is_deterministic_and_handles_empty_batches():
    cfg = make_config("default")
    imp = random_impressions(cfg, 50, np.random.default_rng(13), np.float32)
    a, b = expected_feedback_kernel(imp, cfg), expected_feedback_kernel(imp, cfg)
    assert np.array_equal(a, b)
    empty = imp.take(np.zeros(0, dtype=np.int64))
    assert expected_feedback_kernel(empty, cfg).shape == (0, 6)


def test_env_computes_the_oracle_once_per_request(tiny_config, monkeypatch):
    env = LiveStreamEnv(tiny_config)
    env.reset(seed=3)
    calls = []
    real = env.world.expected_feedback
    monkeypatch.setattr(env.world, "expected_feedback", lambda u, t: calls.append(u) or real(u, t))
    util = env.oracle_utilities()
    fb = env.oracle_expected_feedback()
    fb[:] = -1.0  # a copy: the cache is untouched
    np.testing.assert_array_equal(env.oracle_utilities(), util)
    assert len(calls) == 1
    env.step(int(np.argmax(util)))
    env.oracle_expected_feedback()
    assert len(calls) == 2
    with use_backend("reference"):  # the old path: no cache
        ref = env.oracle_utilities()
        env.oracle_utilities()
    assert len(calls) == 4
    live = np.isfinite(ref)
    np.testing.assert_allclose(env.oracle_utilities()[live], ref[live], rtol=1e-6, atol=1e-9)


def test_batched_oracle_is_one_call_for_the_batch(tiny_config):
    env = BatchedLiveEnv(tiny_config, batch_size=32)
    env.reset(seed=4)
    for _ in range(3):
        fb = env.oracle_expected_feedback()
        users, times = env._users, env._times
        single = np.stack(
            [
                env.world.expected_feedback(int(u), float(t))
                for u, t in zip(users, times, strict=True)
            ]
        )
        np.testing.assert_allclose(fb, single, rtol=1e-12, atol=1e-12)
        util = env.oracle_utilities()
        assert util.shape == (len(users), tiny_config.max_rooms)
        assert np.all(np.isneginf(util[:, fb.shape[1] :]))
        env.step(np.argmax(util, axis=1))


def test_backend_switch_and_its_errors():
    cfg = make_config("default")
    imp = random_impressions(cfg, 20, np.random.default_rng(14))
    assert backend() == "kernel"
    with use_backend("reference"):
        assert backend() == "reference" and os.environ["LIVEENV_ORACLE"] == "reference"
        np.testing.assert_array_equal(
            expected_feedback(imp, cfg), expected_feedback_reference(imp, cfg)
        )
    assert backend() == "kernel" and "LIVEENV_ORACLE" not in os.environ
    np.testing.assert_array_equal(expected_feedback(imp, cfg), expected_feedback_kernel(imp, cfg))
    with pytest.raises(ValueError, match="oracle backend 'fast' is unknown"), use_backend("fast"):
        pass


def test_importing_liveenv_does_not_import_numba():
    code = "import sys, gymnasium, liveenv; gymnasium.make('liveenv/Default-v0'); print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_env_answers_chosen_slots_alone_or_from_the_cache(tiny_config, monkeypatch):
    env = LiveStreamEnv(tiny_config)
    env.reset(seed=8)
    n = env.world.n_live
    slots = [0, n - 1, n]  # the last one is empty: zeros
    alone = env.oracle_expected_feedback(slots)  # before any full call: those rooms only
    full = env.oracle_expected_feedback()
    np.testing.assert_allclose(alone, full[slots], rtol=1e-12, atol=1e-12)
    assert not alone[2].any()
    monkeypatch.setattr(env.world, "expected_feedback", None)  # from the cache now
    np.testing.assert_array_equal(env.oracle_expected_feedback(np.int64(1)), full[[1]])
