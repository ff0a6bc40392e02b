"""The fast vectorised response against the plain reference, draw for draw,
and the oracle's exact expectation against Monte-Carlo means, in the default
world and in one whose streamers differ in gift pull (with a hold cost)."""

from __future__ import annotations

import numpy as np
import pytest

from liveenv import make_config
from liveenv.population import draw_gift_pull
from liveenv.reference import appeal_reference, room_bias_reference, sample_reference
from liveenv.response import N_UNIFORMS, Impressions, expected_feedback, sample_feedback
from liveenv.rhythm import SEGMENT_S


def random_impressions(cfg, n: int, rng: np.random.Generator) -> Impressions:
    """``n`` impressions of 7 rooms; gift pulls drawn (after the rest) as the world does."""
    d, slots, ring = cfg.latent_dim, 7, cfg.response.max_watch_segments + 2
    content = rng.standard_normal((slots, ring, d)).astype(np.float32)
    content /= np.linalg.norm(content, axis=-1, keepdims=True)
    # rooms whose content mostly suits the viewers, so long watches happen
    content = (content + 1.5 * rng.standard_normal(d)[None, None, :]).astype(np.float32)
    content /= np.linalg.norm(content, axis=-1, keepdims=True)
    vec = content[0, 0][None, :] + 0.3 * rng.standard_normal((n, d))
    t = rng.uniform(1000.0, 5000.0, n)
    imp = Impressions(
        t=t,
        vec=vec.astype(np.float32),
        like_prop=rng.lognormal(0, 1, n),
        comment_prop=rng.lognormal(0, 1, n),
        gift_prop=rng.lognormal(0, 1, n) * (rng.random(n) < 0.5),
        followed=rng.random(n) < 0.3,
        gift_pull=np.ones(n, np.float32),
        end_t=t + rng.uniform(10.0, 3 * 3600.0, n),
        slot=rng.integers(0, slots, n),
        content=content,
        bias=rng.normal(0, 0.3, (slots, ring)).astype(np.float32),
        follow_bonus=0.35,
    )
    room_pull = draw_gift_pull(slots, cfg.streamers.gift_pull_sigma, rng).astype(np.float32)
    imp.gift_pull = room_pull[imp.slot]  # one streamer per room slot
    return imp


def test_appeal_matches_reference():
    cfg = make_config("default")
    rng = np.random.default_rng(0)
    imp = random_impressions(cfg, 20, rng)
    fast = imp.appeal(np.arange(20), 0, 9)
    for i in range(20):
        for k in range(9):
            assert fast[i, k] == pytest.approx(appeal_reference(imp, i, k, cfg), abs=1e-5)


def test_room_bias_matches_reference():
    from liveenv.rooms import phase_penalty

    cfg = make_config("default")
    for prog in np.linspace(0, 1, 21):
        start, end = 0.0, 7200.0
        ref = room_bias_reference(prog * end, start, end, 1.0, cfg)
        assert phase_penalty(np.array([prog]), cfg)[0] == pytest.approx(ref)


def test_sampled_feedback_matches_reference_draw_for_draw(world_overrides):
    cfg = make_config("default", **world_overrides)
    rng = np.random.default_rng(1)
    n = 400
    imp = random_impressions(cfg, n, rng)
    u = rng.random((n, N_UNIFORMS + 1))
    a0 = imp.appeal(np.arange(n), 0, 1)[:, 0]
    fb, watch = sample_feedback(imp, a0, np.ones(n, dtype=bool), u, cfg)
    long_watches = 0
    for i in range(n):
        ref = sample_reference(imp, i, u[i], cfg)
        np.testing.assert_allclose(fb[i], ref, rtol=1e-6, atol=1e-6)
        long_watches += ref[1] > 10
    assert long_watches > 20  # the test exercises many boundaries, not just bounces
    assert fb[:, 5].any()  # and gifts
    assert np.all(watch <= imp.end_t - imp.t + 1e-9)


def test_unclicked_impressions_give_zero_feedback():
    cfg = make_config("default")
    rng = np.random.default_rng(2)
    imp = random_impressions(cfg, 10, rng)
    fb, watch = sample_feedback(
        imp, np.zeros(10), np.zeros(10, dtype=bool), rng.random((10, 11)), cfg
    )
    assert not fb.any() and not watch.any()


def test_expected_feedback_matches_monte_carlo(world_overrides):
    cfg = make_config("default", **world_overrides)
    rng = np.random.default_rng(3)
    base = random_impressions(cfg, 4, rng)
    expected = expected_feedback(base, cfg)
    draws = 20000
    for i in range(4):
        rows = np.full(draws, i)
        imp = base.take(rows)
        u = rng.random((draws, N_UNIFORMS + 1))
        a0 = imp.appeal(np.arange(draws), 0, 1)[:, 0]
        from liveenv.response import click_probability

        clicked = u[:, -1] < click_probability(a0, cfg)
        fb, _ = sample_feedback(imp, a0, clicked, u, cfg)
        mean, se = fb.mean(0), fb.std(0) / np.sqrt(draws)
        assert np.all(np.abs(mean - expected[i]) <= 5 * se + 1e-3), (i, mean, expected[i], se)


def test_watch_follows_the_current_segment_not_the_first():
    """Same first segment, different later content: later content decides the watch."""
    cfg = make_config("default")
    rng = np.random.default_rng(4)
    imp = random_impressions(cfg, 2, rng)
    content = imp.content.copy()
    taste = imp.vec[0] / np.linalg.norm(imp.vec[0])
    content[:] = taste  # slot 0 ... suits the viewer everywhere
    content[1] = -taste  # slot 1: suits at first, then drifts to the opposite
    content[1, 10 % content.shape[1]] = taste
    imp.content, imp.slot = content, np.array([0, 1])
    imp.vec = np.stack([imp.vec[0], imp.vec[0]])
    imp.t = np.array([SEGMENT_S * 10 + 1, SEGMENT_S * 10 + 1])
    imp.end_t = imp.t + 7200.0
    imp.bias = np.zeros_like(imp.bias)
    imp.followed = np.zeros(2, dtype=bool)
    exp = expected_feedback(imp, cfg)
    a0 = imp.appeal(np.arange(2), 0, 1)[:, 0]
    assert a0[0] == pytest.approx(a0[1], abs=1e-5)
    assert exp[0, 1] > 3 * exp[1, 1]


def test_a_broadcast_that_ended_within_the_tick_gives_no_watch():
    """The room table lists a room until the tick after its end, so a request can land
    a few seconds after the broadcast ended: its watch is 0, never negative (sampled,
    expected and in the plain reference alike), and nothing else goes negative."""
    cfg = make_config("default")
    rng = np.random.default_rng(5)
    n = 200
    imp = random_impressions(cfg, n, rng)
    imp.end_t = imp.t - rng.uniform(0.1, SEGMENT_S - 0.1, n)  # ended before the request
    u = rng.random((n, N_UNIFORMS + 1))
    a0 = imp.appeal(np.arange(n), 0, 1)[:, 0]
    fb, watch = sample_feedback(imp, a0, np.ones(n, dtype=bool), u, cfg)
    assert np.all(watch == 0) and np.all(fb[:, 1] == 0) and np.all(fb >= 0)
    for i in range(0, n, 20):
        np.testing.assert_allclose(sample_reference(imp, i, u[i], cfg), fb[i], atol=1e-9)
    expected = expected_feedback(imp, cfg)
    assert np.all(expected[:, 1] == 0) and np.all(expected >= 0)
