"""The behaviour-aligned two-tower model: shapes, click weights, InfoNCE training."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.logs import generate_log, read_log_arrays
from policies.tokenizer import SIDTokenizer, SIDTokenizerConfig
from policies.tokenizer.clicks import FIT_COLUMNS, click_batch, info_nce_loss
from policies.tokenizer.tower import (
    TowerConfig,
    TwoTower,
    click_weights,
    hash_streamers,
    mean_info_nce,
    pool_history,
    train_towers,
)

TINY = {"users.n_users": 3000, "streamers.n_streamers": 300}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: one thread is faster than contending for the shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def arrays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("log") / "default"
    generate_log(
        out, "default", days=2 / 24, policy="platform", seed=1, overrides=TINY, progress=False
    )
    return read_log_arrays(out, list(FIT_COLUMNS))


def test_towers_give_unit_vectors_and_gates_in_range() -> None:
    cfg = TowerConfig(content_dim=4, user_dim=3, embed_dim=8, hidden_dim=16, n_streamer_buckets=5)
    tower = TwoTower(cfg, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    content, pooled = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    bucket = hash_streamers(np.arange(6) * 1000, 5)
    room = tower.rooms(content, pooled, bucket)
    assert room.shape == (6, 8)
    torch.testing.assert_close(room.norm(dim=1), torch.ones(6))
    gate = tower.gate_values(content, pooled, bucket)
    assert gate.shape == (6, 8) and bool(((gate > 0) & (gate < 1)).all())
    user = tower.users(
        torch.randn(6, 3, generator=g), torch.zeros(6, 4), torch.zeros(6, dtype=torch.bool)
    )
    assert user.shape == (6, 8)
    again = TwoTower(cfg, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again.rooms(content, pooled, bucket), room)


def test_hash_buckets_are_deterministic_and_in_range() -> None:
    ids = np.array([0, 1, 2, 799, 10_000_000, 123456789])
    b = hash_streamers(ids, 2048)
    assert b.dtype == torch.int64
    assert bool(((b >= 0) & (b < 2048)).all())
    assert torch.equal(b, hash_streamers(ids.copy(), 2048))
    assert len(set(hash_streamers(np.arange(800), 2048).tolist())) > 600  # spreads ids


def test_click_weight_formula() -> None:
    w = click_weights(
        watch_time_ms=np.array([0, 60_000 * (np.e - 1), 0, 0]),
        like=np.array([False, False, True, False]),
        comment=np.array([False, False, True, False]),
        follow=np.array([False, False, False, True]),
        gift_price=np.array([0.0, 0.0, 0.0, np.e - 1]),
    )
    np.testing.assert_allclose(w, [1.0, 2.0, 2.5, 4.0], rtol=1e-6)


def test_pool_history_ignores_masked_slots() -> None:
    h = np.zeros((2, 3, 2), np.float32)
    h[0] = [[1, 1], [3, 3], [100, 100]]
    mask = np.array([[1, 1, 0], [0, 0, 0]])
    pooled, has = pool_history(h, mask)
    np.testing.assert_allclose(pooled, [[2, 2], [0, 0]])
    assert has.tolist() == [True, False]
    with pytest.raises(ValueError, match="3-D"):
        pool_history(h[0])


def test_tower_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match=r"TowerConfig.embed_dim=0 is invalid"):
        TowerConfig(embed_dim=0)
    with pytest.raises(ValueError, match="gate_bias_init"):
        TowerConfig(gate_bias_init=float("nan"))
    with pytest.raises(ValueError, match="unknown field"):
        TowerConfig.from_dict({"embed_dims": 3})


def test_training_lowers_info_nce(arrays: dict[str, np.ndarray]) -> None:
    cfg = SIDTokenizerConfig(codebook_sizes=(8, 8), epochs=8, batch_size=64)
    click = arrays["is_click"].astype(bool)
    batch = click_batch(arrays, cfg, click)
    tcfg = cfg.tower_config(arrays["content_emb"].shape[1], arrays["user_feat"].shape[1])
    tower, losses = train_towers(
        batch,
        tcfg,
        epochs=8,
        batch_size=64,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        temperature=cfg.temperature,
        seed=0,
    )
    after = mean_info_nce(tower, batch, cfg.temperature, 64, 0)
    assert losses[0] > np.log(64) * 0.9  # an untrained tower is near chance, log(B)
    assert after < losses[0] - 0.5
    assert losses[-1] < losses[1]
    # the tokenizer records the same trace and reports the same trained loss
    tok = SIDTokenizer.fit(arrays, cfg)
    assert tok.fit_info["losses"][0] == pytest.approx(losses[0])
    assert info_nce_loss(tok, arrays) == pytest.approx(after, rel=1e-5)


def test_static_mode_room_embedding_ignores_content(
    arrays: dict[str, np.ndarray], tmp_path: Path
) -> None:
    cfg = SIDTokenizerConfig(mode="static", codebook_sizes=(4, 4), epochs=1, batch_size=64)
    tok = SIDTokenizer.fit(arrays, cfg)
    n = 10
    pooled, sid = arrays["pooled_emb"][:n], arrays["streamer_id"][:n]
    a = tok.embed_rooms(arrays["content_emb"][:n], pooled, sid)
    b = tok.embed_rooms(np.zeros_like(arrays["content_emb"][:n]), pooled, sid)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="required in dynamic mode"):
        SIDTokenizer.fit(arrays, cfg.replace(mode="dynamic", epochs=0)).embed_rooms(
            None, pooled, sid
        )


def test_numpy_room_tower_matches_torch() -> None:
    cfg = TowerConfig(content_dim=5, user_dim=3, embed_dim=8, hidden_dim=16, n_streamer_buckets=7)
    tower = TwoTower(cfg, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    content = rng.standard_normal((50, 5)).astype(np.float32)
    pooled = rng.standard_normal((50, 5)).astype(np.float32)
    streamer = rng.integers(0, 10_000, 50)
    with torch.no_grad():
        want = tower.rooms(
            torch.from_numpy(content), torch.from_numpy(pooled), hash_streamers(streamer, 7)
        ).numpy()
    got = tower.room_arrays()(content, pooled, streamer)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
