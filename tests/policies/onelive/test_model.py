"""Tests of the OneLive generator model, its config and its checkpoints."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from policies.onelive import (
    GeneratorBatch,
    OneLiveConfig,
    OneLiveGenerator,
    beam_search,
    load_checkpoint,
    save_checkpoint,
)


def tiny(**kw: object) -> OneLiveConfig:
    base = dict(
        vocab_sizes=(5, 4, 3),
        user_dim=3,
        time_dim=2,
        max_history=8,
        d_model=16,
        n_head=2,
        n_layer=2,
    )
    base.update(kw)
    return OneLiveConfig(**base)  # type: ignore[arg-type]


def rand_batch(cfg: OneLiveConfig, B: int = 4, H: int = 6, seed: int = 0) -> GeneratorBatch:
    return GeneratorBatch.random(cfg, B, H, generator=torch.Generator().manual_seed(seed))


MODES = [pytest.param(True, id="mtp"), pytest.param(False, id="ar")]


@pytest.mark.parametrize("mtp", MODES)
def test_shapes_and_loss(mtp: bool) -> None:
    cfg = tiny(use_mtp=mtp)
    model = OneLiveGenerator(cfg)
    batch = rand_batch(cfg)
    logits = model(batch)
    assert [tuple(x.shape) for x in logits] == [(4, 5), (4, 4), (4, 3)]
    loss, per = model.loss(batch)
    assert loss.dim() == 0 and per.shape == (3,) and torch.isfinite(per).all()
    assert loss.item() == pytest.approx(per.sum().item(), rel=1e-5)
    assert model.num_params() == sum(p.numel() for p in model.parameters()) > 0
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def _relayout(b: GeneratorBatch, H: int, slots: list[list[int]]) -> GeneratorBatch:
    """Put each row's real history (in order) into the given slots of a width-H batch whose
    other slots are filled with garbage."""
    B, L, T = b.batch_size, b.hist_sid.shape[-1], b.hist_time.shape[-1]
    sid = torch.full((B, H, L), -1, dtype=torch.long)
    fb = torch.full((B, H), 99, dtype=torch.long)
    t = torch.full((B, H, T), float("nan"))
    mask = torch.zeros(B, H, dtype=torch.bool)
    for i in range(B):
        real = b.hist_mask[i].nonzero().squeeze(-1)
        dst = torch.tensor(slots[i][: len(real)], dtype=torch.long)
        sid[i, dst], fb[i, dst], t[i, dst], mask[i, dst] = (
            b.hist_sid[i, real],
            b.hist_feedback[i, real],
            b.hist_time[i, real],
            True,
        )
    return replace(b, hist_sid=sid, hist_feedback=fb, hist_time=t, hist_mask=mask)


@pytest.mark.parametrize("mtp", MODES)
def test_padding_layout_and_masked_values_do_not_change_output(mtp: bool) -> None:
    cfg = tiny(use_mtp=mtp)
    model = OneLiveGenerator(cfg).eval()
    b = rand_batch(cfg, B=3, H=5, seed=1)
    n = b.hist_mask.sum(1).tolist()
    right = _relayout(b, 8, [list(range(k)) for k in n])
    left = _relayout(b, 8, [list(range(8 - k, 8)) for k in n])
    scattered = _relayout(b, 8, [[0, 2, 3, 5, 7] for _ in n])
    ref = model(b)
    for other in (right, left, scattered):
        for x, y in zip(ref, model(other), strict=True):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mtp", MODES)
def test_cold_start_user_without_history(mtp: bool) -> None:
    cfg = tiny(use_mtp=mtp)
    b = rand_batch(cfg)
    b = replace(b, hist_mask=torch.zeros_like(b.hist_mask))
    assert all(torch.isfinite(x).all() for x in OneLiveGenerator(cfg)(b))


def test_gate_starts_open() -> None:
    cfg = tiny(gate_bias_init=3.0)
    model = OneLiveGenerator(cfg)
    x = torch.randn(64, 7, cfg.d_model)
    gates = [m.attn.gate for m in model.blocks] + [m.attn.gate for m in model.mtp]
    for gate in gates:
        assert torch.all(gate.bias == 3.0)
        assert torch.sigmoid(gate(x)).mean().item() == pytest.approx(
            1 / (1 + math.exp(-3)), abs=0.02
        )
    assert all(m.attn.gate is None for m in OneLiveGenerator(tiny(use_gate=False)).blocks)


@pytest.mark.parametrize("mtp", MODES)
def test_tracking_path_matches_fast_path(mtp: bool) -> None:
    model = OneLiveGenerator(tiny(use_mtp=mtp)).eval()
    b = rand_batch(model.config)
    fast = model(b)
    model.set_track_logits(True)
    slow = model(b)
    for x, y in zip(fast, slow, strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    maxima = model.attention_logit_maxima()
    assert len(maxima) == len(model.blocks) + (len(model.mtp) if mtp else 0)


@pytest.mark.parametrize("qk_norm", [True, False])
def test_qk_norm_bounds_attention_logits(qk_norm: bool) -> None:
    cfg = tiny(use_qk_norm=qk_norm, track_logits=True)
    model = OneLiveGenerator(cfg).eval()
    b = rand_batch(cfg, B=8)
    model(b)
    before = max(model.attention_logit_maxima().values())
    with torch.no_grad():
        for blk in model.blocks:
            blk.attn.q_proj.weight.mul_(30.0)
            blk.attn.kv_proj.weight.mul_(30.0)
    model(b)
    after = max(model.attention_logit_maxima().values())
    if qk_norm:  # |q_hat . k_hat| / sqrt(hd) <= sqrt(hd) with unit norm weights
        assert after <= math.sqrt(cfg.head_dim) + 1e-3
        assert after == pytest.approx(before, rel=0.05)
    else:
        assert after > 100 * before


BAD = [
    ("vocab_sizes", ()),
    ("vocab_sizes", (64, 1)),
    ("d_model", 0),
    ("n_head", 3),  # 16 is not a multiple of 3 -> reported on d_model
    ("n_layer", -1),
    ("dropout", 1.0),
    ("use_mtp", 1),
    ("level_loss_weights", (1.0, 1.0)),
    ("level_loss_weights", (1.0, -1.0, 1.0)),
    ("gate_bias_init", float("inf")),
    ("max_history", 2.5),
]


@pytest.mark.parametrize(("field", "value"), BAD)
def test_bad_config_values_raise_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError) as err:
        tiny(**{field: value})
    named = "d_model" if field == "n_head" else field
    assert f"OneLiveConfig.{named}=" in str(err.value)
    assert "must be" in str(err.value)


def test_config_dict_round_trip_and_defaults() -> None:
    cfg = tiny(vocab_sizes=(8, 8, 8, 4))
    assert cfg.level_loss_weights == (1.0, 1.0, 1.0, 1.0) and cfg.n_levels == 4
    assert OneLiveConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        OneLiveConfig.from_dict({**cfg.to_dict(), "n_embd": 3})


def test_batch_validation_names_the_field() -> None:
    cfg = tiny()
    b = rand_batch(cfg)
    with pytest.raises(ValueError, match="user_feats"):
        OneLiveGenerator(cfg)(replace(b, user_feats=torch.randn(4, 5)))
    with pytest.raises(ValueError, match="max_history"):
        OneLiveGenerator(cfg)(rand_batch(cfg, H=9))


@pytest.mark.parametrize("mtp", MODES)
def test_overfits_tiny_dataset_and_beam_search_recovers_targets(mtp: bool) -> None:
    torch.manual_seed(0)
    cfg = tiny(vocab_sizes=(8, 8, 8), user_dim=4, d_model=32, use_mtp=mtp)
    model = OneLiveGenerator(cfg)
    g = torch.Generator().manual_seed(1)
    b = GeneratorBatch.random(cfg, 32, 6, generator=g)
    code = torch.randperm(512, generator=g)[:32]  # 32 distinct SIDs
    b.target_sid = torch.stack([code // 64, (code // 8) % 8, code % 8], -1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    first = model.loss(b)[0].item()
    for _ in range(100):
        loss, _ = model.loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    live = b.target_sid[None].expand(32, 32, 3).contiguous()  # every target is live
    res = beam_search(model, b, live, torch.ones(32, 32, dtype=torch.bool), beam_size=4, top_k=1)
    assert (res.sids[:, 0] == b.target_sid).all(-1).float().mean().item() >= 0.95
    assert (res.index[:, 0] == torch.arange(32)).float().mean().item() >= 0.95


@pytest.mark.parametrize("mtp", MODES)
def test_checkpoint_round_trip(tmp_path, mtp: bool) -> None:
    cfg = tiny(use_mtp=mtp, dropout=0.1)
    model = OneLiveGenerator(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    b = rand_batch(cfg)
    model.loss(b)[0].backward()
    opt.step()
    path = tmp_path / "ckpt" / "gen.pt"
    save_checkpoint(path, model, opt, extra={"step": 1, "note": "x"})
    assert [p.name for p in path.parent.iterdir()] == ["gen.pt"]  # no temp file left
    loaded, extra, opt_state = load_checkpoint(path)
    assert loaded.config == cfg and extra == {"step": 1, "note": "x"} and not loaded.training
    model.eval()
    for x, y in zip(model(b), loaded(b), strict=True):
        assert torch.equal(x, y)
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=1e-3)
    opt2.load_state_dict(opt_state)
    assert opt2.state_dict()["state"][0]["step"] == 1


def test_checkpoint_rejects_truncated_and_foreign_files(tmp_path) -> None:
    path = tmp_path / "gen.pt"
    save_checkpoint(path, OneLiveGenerator(tiny()))
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    for name, match in [("cut", "readable"), ("foreign", "not a OneLive"), ("junk", "readable")]:
        with pytest.raises(ValueError, match=match):
            load_checkpoint(tmp_path / f"{name}.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
