"""Generator inputs: the log mirror of the observation, train = serve, feature maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agents.logs import LOG_SCHEMA, LogRecorder, PlatformPolicy, read_log, read_log_arrays
from agents.logs.generate import make_log_env, run_policy
from agents.logs.reader import read_log_and_past, with_past
from agents.train.sequences import SequenceConfig, build_examples
from liveenv.rhythm import time_features
from policies.cascade.features import CROSS, pair_features
from policies.onelive.features import (
    FEEDBACK_TYPES,
    HISTORY_KEYS,
    ROOM_PRIOR_COLUMNS,
    TIME_DIM,
    FeatureBuilder,
    PooledCache,
    event_time_features,
    feedback_types,
    history_from_log,
    prior_width,
    request_time_features,
    room_stat_features,
)
from policies.tokenizer import SIDTokenizer, SIDTokenizerConfig

torch.set_num_threads(1)  # tiny models: threads only contend on a shared CPU
#: past_days=1: the platform has a past, which the log records (agents.logs.past_rows),
#: so training inputs rebuilt from the log equal the serving ones, past included
TINY = {
    "users.n_users": 3000,
    "streamers.n_streamers": 300,
    "start_hour": 19.0,
    "max_rooms": 128,
    "users.past_days": 1,
}
H = 20  # users.history_len of the default world


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """An hour of a tiny world under the platform policy: the log and every observation."""
    out = tmp_path_factory.mktemp("features") / "log"
    env = LogRecorder(make_log_env("default", 1.0 / 24, TINY), out, policy_name="platform")
    behaviour, seen = PlatformPolicy(seed=0), []

    def act(obs: dict, e: object) -> object:
        seen.append({k: np.array(v) for k, v in obs.items()})
        return behaviour(obs, e)

    run_policy(env, act, seed=0, progress=False)
    env.close()
    return out, seen


@pytest.fixture(scope="module")
def tokenizer(logged_run: tuple[Path, list[dict]]) -> SIDTokenizer:
    cfg = SIDTokenizerConfig(codebook_sizes=(8, 8, 8), epochs=1, batch_size=128)
    return SIDTokenizer.fit(read_log_arrays(logged_run[0]), cfg)


def _log_and_past(log_dir: Path) -> tuple:
    """What pretraining reads: the log's impressions and the past before them."""
    return read_log_and_past(log_dir, LOG_SCHEMA.names)


def _stack(seen: list[dict], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.stack([seen[i][k] for i in rows]) for k in seen[0]}


def test_log_history_mirrors_the_observation(logged_run: tuple[Path, list[dict]]) -> None:
    log_dir, seen = logged_run
    log, past = read_log_and_past(log_dir, LOG_SCHEMA.names)
    assert len(log["user_id"]) == len(seen) and log["is_click"].sum() > 100  # a row a request
    assert len(past["user_id"]) > 1000 and (past["request_id"] < 0).all()
    every, n_past = with_past(log, past)
    hist = history_from_log(every, H, rows=n_past + np.arange(len(seen)))
    obs = _stack(seen, np.arange(len(seen)))
    assert obs["history_mask"].sum() > 1000  # many real history events to compare
    assert (hist["history_row"][hist["history_mask"] > 0] < n_past).mean() > 0.3  # the past
    for key in ("history_streamer", "history_mask", "history_content", "user"):
        np.testing.assert_array_equal(hist[key], obs[key], err_msg=key)
    # float32 minutes vs watch ms rounded to the millisecond; request time in ms
    np.testing.assert_allclose(hist["history_feedback"], obs["history_feedback"], atol=2e-5)
    np.testing.assert_allclose(hist["history_age"], obs["history_age"], atol=1e-5)
    np.testing.assert_allclose(hist["time"], obs["time"], atol=1e-5)
    # the log alone (no past) rebuilds shorter histories than the policy saw
    alone = history_from_log(log, H)
    assert alone["history_mask"].sum() < hist["history_mask"].sum()


def test_training_examples_equal_serving_inputs(
    logged_run: tuple[Path, list[dict]], tokenizer: SIDTokenizer
) -> None:
    """The pretraining example of each click = what the policy builds from that request's
    observation (the observation path encodes every history event itself)."""
    log_dir, seen = logged_run
    arrays, past = _log_and_past(log_dir)
    log = read_log(log_dir)
    data = build_examples(arrays, tokenizer, SequenceConfig(max_history=H), past)
    rows = data.log_row.numpy()
    np.testing.assert_array_equal(rows, np.flatnonzero(log.is_click.to_numpy()))
    builder = FeatureBuilder(tokenizer, obs_dim=16, max_history=H)
    for obs in seen:  # the serving side sees every room table in turn
        builder.cache.update_from_obs({k: v[None] for k, v in obs.items()})
    served = builder.batch_from_obs(_stack(seen, rows), update_cache=False)
    trained = data.batch()
    # a past event's SID reads its streamer's pooled embedding, which the log knows only
    # for streamers it shows (the serving cache: every room table); compare those
    hist_streamer = _stack(seen, rows)["history_streamer"]
    shown = np.isin(hist_streamer, log.streamer_id.to_numpy()) | (hist_streamer < 0)
    assert (~shown).mean() > 0.05  # past events of streamers the log never shows
    np.testing.assert_array_equal(trained.hist_sid.numpy()[shown], served.hist_sid.numpy()[shown])
    assert (trained.hist_sid != served.hist_sid).float().mean() < 0.01  # the rest, mostly
    for name in ("hist_feedback", "hist_mask", "user_feats"):
        assert torch.equal(getattr(trained, name), getattr(served, name)), name
    torch.testing.assert_close(trained.hist_time, served.hist_time, atol=1e-5, rtol=0)
    torch.testing.assert_close(trained.now_time, served.now_time, atol=1e-5, rtol=0)
    # the target is the SID of the clicked room as the room table showed it then
    obs = _stack(seen, rows)
    slot = log.slot.to_numpy()[rows]
    shown = obs["rooms"][np.arange(len(rows)), slot]
    want = tokenizer.encode(shown[:, :16], shown[:, 16:32], log.streamer_id.to_numpy()[rows])
    np.testing.assert_array_equal(data.target_sid.numpy(), want)
    assert trained.hist_time.shape[-1] == TIME_DIM


def test_feedback_type_is_the_strongest_action() -> None:
    fb = np.array(
        [
            [0, 0, 0, 0, 0, 0],  # skip
            [1, 0.5, 0, 0, 0, 0],  # click, short
            [1, 1.0, 0, 0, 0, 0],  # long view (>= 1 min)
            [1, 0.2, 1, 0, 0, 0],  # like beats the short watch
            [1, 3.0, 1, 1, 0, 0],  # comment beats like and long view
            [1, 3.0, 1, 1, 1, 0],  # follow
            [1, 0.1, 0, 0, 1, 2.0],  # gift beats everything
        ],
        dtype=np.float32,
    )
    names = [FEEDBACK_TYPES[i] for i in feedback_types(fb)]
    assert names == ["skip", "click", "long_view", "like", "comment", "follow", "gift"]
    assert feedback_types(fb.reshape(7, 1, 6)).shape == (7, 1)


def test_event_time_features_recover_the_event_clock() -> None:
    now = np.array([3 * 86_400.0 + 5.25 * 3600, 86_400.0 * 6 + 23.9 * 3600])
    age_h = np.array([[0.0, 2.5, 30.0], [0.0, 26.1, 200.0]])
    feats = event_time_features(time_features(now), np.log1p(age_h).astype(np.float32))
    assert feats.shape == (2, 3, TIME_DIM) and feats.dtype == np.float32
    want = time_features(now[:, None] - age_h * 3600.0)  # sin/cos hour and weekday then
    np.testing.assert_allclose(feats[..., 1:], want, atol=5e-5)  # float32 log age of 200 h
    np.testing.assert_allclose(feats[..., 0], np.log1p(age_h), atol=1e-6)
    req = request_time_features(time_features(now))
    np.testing.assert_allclose(req, feats[:, 0], atol=1e-6)  # the request = an event of age 0
    assert np.all(req[:, 0] == 0)


def test_pooled_cache_updates_and_counts_misses() -> None:
    cache = PooledCache(obs_dim=2)
    cache.update(np.array([5, 1, -1]), np.array([[1, 2], [3, 4], [9, 9]], dtype=np.float32))
    got = cache.lookup(np.array([1, 5, 7, -1, 1000]))
    np.testing.assert_array_equal(got, [[3, 4], [1, 2], [0, 0], [0, 0], [0, 0]])
    assert cache.misses == 3 and len(cache) == 2
    cache.update(np.array([5]), np.array([[7, 7]], dtype=np.float32))  # latest wins
    np.testing.assert_array_equal(cache.lookup(np.array([5])), [[7, 7]])
    with pytest.raises(ValueError, match="obs_dim"):
        PooledCache(0)


def test_builder_keeps_the_newest_events_and_refuses_bad_widths(
    logged_run: tuple[Path, list[dict]], tokenizer: SIDTokenizer
) -> None:
    _, seen = logged_run
    obs = _stack(seen, np.arange(len(seen) - 8, len(seen)))
    full = FeatureBuilder(tokenizer, 16, H).batch_from_obs(obs)
    short = FeatureBuilder(tokenizer, 16, 5).batch_from_obs(obs)
    assert short.hist_sid.shape[1] == 5
    assert torch.equal(short.hist_sid, full.hist_sid[:, -5:])  # newest last, right-aligned
    assert torch.equal(short.hist_mask, full.hist_mask[:, -5:])
    with pytest.raises(ValueError, match="max_history"):
        FeatureBuilder(tokenizer, 16, 0)
    assert set(HISTORY_KEYS) <= set(obs)


def test_the_room_prior_reads_the_same_numbers_in_training_and_serving(
    logged_run: tuple[Path, list[dict]], tokenizer: SIDTokenizer
) -> None:
    """Every column of the room prior's input for the clicked room (statistics, taste
    match, streamer affinity) is the same whether built from the log (pretraining) or
    from that request's observation (serving), and the affinity is the cascade's."""
    log_dir, seen = logged_run
    log = read_log(log_dir)
    arrays, past = _log_and_past(log_dir)
    cfg = SequenceConfig(max_history=H, live_window_s=300)
    data = build_examples(arrays, tokenizer, cfg, past)
    rows = data.log_row.numpy()
    _, _, trained = data.live()
    obs = _stack(seen, rows)
    served = room_stat_features(obs)[np.arange(len(rows)), log.slot.to_numpy()[rows]]
    assert trained.shape[-1] == len(ROOM_PRIOR_COLUMNS)
    torch.testing.assert_close(trained[:, -1], served, atol=1e-4, rtol=1e-4)
    seen_col = ROOM_PRIOR_COLUMNS.index("streamer_seen")
    assert float(served[:, seen_col].max()) > 0  # users do come back to streamers
    cross = pair_features(obs).cross  # the cascade's own streamer_seen / streamer_minutes
    full = room_stat_features(obs)
    live = obs["room_mask"].astype(bool)
    for name in ("streamer_seen", "streamer_minutes"):
        np.testing.assert_allclose(
            full[..., ROOM_PRIOR_COLUMNS.index(name)].numpy()[live],
            cross[..., CROSS.index(name)][live],
            atol=1e-6,
        )


def test_the_embedding_blocks_match_in_training_and_serving(
    logged_run: tuple[Path, list[dict]], tokenizer: SIDTokenizer
) -> None:
    """With ``embed_dim`` the room prior's input gains the room's content and pooled
    embedding and the user's taste and newest click (ROOM_EMBED_BLOCKS), the same numbers
    from the log as from the observation; a wrong width is refused."""
    log_dir, seen = logged_run
    log = read_log(log_dir)
    arrays, past = _log_and_past(log_dir)
    cfg = SequenceConfig(max_history=H, live_window_s=300)
    data = build_examples(arrays, tokenizer, cfg, past)
    rows = data.log_row.numpy()
    _, _, trained = data.live(embed_dim=16)
    obs = _stack(seen, rows)
    served = room_stat_features(obs, embed_dim=16)[np.arange(len(rows)), log.slot.to_numpy()[rows]]
    assert trained.shape[-1] == prior_width(16) == len(ROOM_PRIOR_COLUMNS) + 4 * 16
    torch.testing.assert_close(trained[:, -1], served, atol=1e-4, rtol=1e-4)
    p = len(ROOM_PRIOR_COLUMNS)
    room = obs["rooms"][np.arange(len(rows)), log.slot.to_numpy()[rows]]
    np.testing.assert_allclose(served[:, p : p + 32].numpy(), room[:, :32], atol=1e-6)
    has = obs["history_mask"][:, -1] > 0
    assert has.any() and not has.all()
    np.testing.assert_allclose(
        np.linalg.norm(served[has, p + 48 :].numpy(), axis=1), 1.0, atol=1e-5
    )
    assert (
        float(np.abs(served[~has, p + 32 :].numpy()).max()) == 0.0
    )  # no history: no taste, no last
    assert torch.equal(
        room_stat_features(obs)[..., :p], room_stat_features(obs, embed_dim=16)[..., :p]
    )
    with pytest.raises(ValueError, match="embed_dim=8"):
        room_stat_features(obs, embed_dim=8)
    with pytest.raises(ValueError, match="embed_dim=8"):
        data.live(embed_dim=8)
