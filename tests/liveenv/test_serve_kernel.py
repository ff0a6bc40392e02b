"""The batched path's serve kernel against the numpy reference, draw for draw,
and the backend switch."""

from __future__ import annotations

import numpy as np
import pytest
from test_oracle_kernel import random_impressions  # tests/liveenv is on sys.path

from liveenv import make_config
from liveenv.batched import BatchedLiveEnv
from liveenv.response import N_UNIFORMS, click_probability
from liveenv.response import sample_feedback as sample_feedback_numpy
from liveenv.serve_kernel import backend, sample_feedback, sample_feedback_kernel, use_backend


def draws(cfg, n: int, dtype, seed: int):
    """Impressions, their appeal, click decisions and uniforms (n rows)."""
    rng = np.random.default_rng(seed)
    imp = random_impressions(cfg, n, rng, dtype)
    a0 = imp.appeal(None, 0, 1)[:, 0]
    u = rng.random((n, N_UNIFORMS + 1))
    clicked = u[:, -1] < click_probability(a0, cfg) + 0.3  # more clicks, more watches
    return imp, a0, clicked, u


def test_kernel_matches_the_numpy_path_draw_for_draw_in_float64(world_overrides):
    """float64 content: every decision (bounce, leave boundary, interactions, price) equal."""
    cfg = make_config("default", **world_overrides)
    imp, a0, clicked, u = draws(cfg, 3000, np.float64, 5)
    fb_ref, w_ref = sample_feedback_numpy(imp, a0, clicked, u, cfg)
    fb, w = sample_feedback_kernel(imp, a0, clicked, u, cfg)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fb, fb_ref, rtol=1e-12, atol=1e-12)
    assert (w_ref > 30 * 20).any() and (fb_ref[:, 5] > 0).any()  # long watches and gifts
    assert np.all(w[~clicked] == 0) and np.all(fb[~clicked] == 0)


def test_kernel_matches_the_numpy_path_in_float32(world_overrides):
    """float32 content (as the world stores it): the same decisions on every row here
    (the dot products round differently, so a tie within rounding could split them)."""
    cfg = make_config("default", **world_overrides)
    imp, a0, clicked, u = draws(cfg, 3000, np.float32, 6)
    fb_ref, w_ref = sample_feedback_numpy(imp, a0, clicked, u, cfg)
    fb, w = sample_feedback_kernel(imp, a0, clicked, u, cfg)
    np.testing.assert_allclose(w, w_ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fb, fb_ref, rtol=1e-9, atol=1e-9)


def served_day(cfg, name: str, seed: int) -> list[np.ndarray]:
    with use_backend(name):
        env = BatchedLiveEnv(cfg, batch_size=4096)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        out = []
        while True:
            obs, _, truncated, info = env.step(rng.integers(0, env.world.n_live, len(obs["user"])))
            out.append(np.column_stack([info["feedback"], info["watch_s"], info["user_id"]]))
            if truncated:
                return out


def test_both_backends_serve_the_same_episode(tiny_config):
    """Whole-tick batches of the tiny world: the same requests and outcomes under
    both backends (the outcomes within rounding), and the same again for the same seed."""
    kernel, ref = served_day(tiny_config, "kernel", 3), served_day(tiny_config, "reference", 3)
    assert len(kernel) == len(ref)
    for a, b in zip(kernel, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    again = served_day(tiny_config, "kernel", 3)
    assert all(np.array_equal(a, b) for a, b in zip(kernel, again, strict=True))


def test_backend_switch():
    assert backend() == "kernel"
    with use_backend("reference"):
        assert backend() == "reference"
        with pytest.raises(ValueError, match="unknown"), use_backend("fast"):
            pass
    assert backend() == "kernel"


def test_dispatch_follows_the_backend(tiny_config):
    cfg = make_config("default")
    imp, a0, clicked, u = draws(cfg, 200, np.float64, 7)
    with use_backend("reference"):
        fb_ref, _ = sample_feedback(imp, a0, clicked, u, cfg)
    fb, _ = sample_feedback(imp, a0, clicked, u, cfg)
    np.testing.assert_allclose(fb, fb_ref, rtol=1e-12, atol=1e-12)
