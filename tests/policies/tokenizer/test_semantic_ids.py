"""SIDTokenizer: fit on a tiny generated log, encode, save/load, refuse bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.logs import generate_log, read_log, read_log_arrays
from policies.tokenizer import ResidualKMeans, SIDTokenizer, SIDTokenizerConfig
from policies.tokenizer.log_arrays import log_user_history

TINY = {"users.n_users": 3000, "streamers.n_streamers": 300}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: one thread is faster than contending for the shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CFG = SIDTokenizerConfig(codebook_sizes=(8, 8), epochs=6, batch_size=64)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("log") / "default"
    generate_log(
        out, "default", days=2 / 24, policy="platform", seed=0, overrides=TINY, progress=False
    )
    return out


@pytest.fixture(scope="module")
def tok(log_dir: Path) -> SIDTokenizer:
    return SIDTokenizer.fit(read_log_arrays(log_dir), CFG)


def test_encode_is_residual_kmeans_of_the_embeddings(tok: SIDTokenizer, log_dir: Path) -> None:
    a = read_log_arrays(log_dir)
    emb = tok.embed_rooms(a["content_emb"], a["pooled_emb"], a["streamer_id"])
    assert emb.shape == (len(a["streamer_id"]), CFG.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    codes = tok.encode(a["content_emb"], a["pooled_emb"], a["streamer_id"])
    assert codes.dtype == np.int64 and codes.shape == (len(emb), 2)
    ref = ResidualKMeans.from_codebooks(tok.quantiser.codebooks).encode(emb)
    np.testing.assert_array_equal(codes, ref)
    assert tok.vocab_sizes == (8, 8) and tok.n_levels == 2
    assert codes.max(axis=0).tolist() <= [7, 7]


def test_encode_log_accepts_frame_and_arrays_not_paths(tok: SIDTokenizer, log_dir: Path) -> None:
    a = read_log_arrays(log_dir)
    want = tok.encode(a["content_emb"], a["pooled_emb"], a["streamer_id"])
    with pytest.raises(TypeError, match="read_log_arrays"):  # one log reader: agents.logs
        tok.encode_log(log_dir)
    np.testing.assert_array_equal(tok.encode_log(read_log(log_dir)), want)
    np.testing.assert_array_equal(tok.encode_log(a), want)


def test_fit_is_reproducible_from_its_seed(tok: SIDTokenizer, log_dir: Path) -> None:
    arrays = read_log_arrays(log_dir)
    again = SIDTokenizer.fit(arrays, CFG)
    np.testing.assert_array_equal(again.encode_log(arrays), tok.encode_log(arrays))
    assert again.fit_info["losses"] == tok.fit_info["losses"]


def test_save_load_round_trip(tok: SIDTokenizer, log_dir: Path, tmp_path: Path) -> None:
    path = tok.save(tmp_path / "sub" / "tok.pt")
    back = SIDTokenizer.load(path)
    assert back.config == tok.config
    np.testing.assert_array_equal(
        back.encode_log(read_log_arrays(log_dir)), tok.encode_log(read_log_arrays(log_dir))
    )
    a = read_log_arrays(log_dir, ["user_feat"])
    np.testing.assert_array_equal(back.embed_users(a["user_feat"]), tok.embed_users(a["user_feat"]))
    assert back.fit_info["n_clicks"] == tok.fit_info["n_clicks"]
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())


def test_dynamic_sids_follow_content_static_ones_do_not(log_dir: Path, tok: SIDTokenizer) -> None:
    a = read_log_arrays(log_dir)
    static = SIDTokenizer.fit(read_log_arrays(log_dir), CFG.replace(mode="static"))
    # one streamer shown with the content of every logged room
    n = len(a["content_emb"])
    pooled = np.repeat(a["pooled_emb"][:1], n, axis=0)
    streamer = np.full(n, a["streamer_id"][0])
    dyn = tok.encode(a["content_emb"], pooled, streamer)
    sta = static.encode(a["content_emb"], pooled, streamer)
    assert len(np.unique(dyn, axis=0)) > 1
    assert len(np.unique(sta, axis=0)) == 1
    np.testing.assert_array_equal(static.encode(None, pooled, streamer), sta)
    # in the log: static SIDs are one per streamer
    codes = static.encode_log(a)
    for s in np.unique(a["streamer_id"])[:20]:
        assert len(np.unique(codes[a["streamer_id"] == s], axis=0)) == 1


def test_user_tower_and_history(tok: SIDTokenizer, log_dir: Path) -> None:
    a = read_log_arrays(log_dir)
    hist, has = log_user_history(a, 20)
    # a user's first request has no history; a request after a click has some
    first = np.unique(a["user_id"], return_index=True)[1]
    assert not has[first].any()
    assert has.any()
    u = tok.embed_users(a["user_feat"], hist, has)
    assert u.shape == (len(hist), CFG.embed_dim)
    h3 = np.zeros((len(hist), 4, hist.shape[1]), np.float32)
    h3[:, -1] = hist
    mask = np.zeros((len(hist), 4), np.int8)
    mask[:, -1] = has
    np.testing.assert_allclose(tok.embed_users(a["user_feat"], h3, mask), u, atol=1e-6)


def test_bad_inputs_are_refused(tok: SIDTokenizer, log_dir: Path, tmp_path: Path) -> None:
    a = read_log_arrays(log_dir)
    with pytest.raises(
        ValueError, match="content_emb has width 12, the tokenizer was fitted on 16"
    ):
        tok.encode(a["content_emb"][:, :12], a["pooled_emb"], a["streamer_id"])
    with pytest.raises(ValueError, match="pooled_emb has width 3"):
        tok.encode(a["content_emb"], a["pooled_emb"][:, :3], a["streamer_id"])
    with pytest.raises(ValueError, match="must match"):
        tok.encode(a["content_emb"], a["pooled_emb"], a["streamer_id"][:5])
    with pytest.raises(
        ValueError, match=r"mode=.sometimes. is invalid: must be one of \[.dynamic., .static.\]"
    ):
        SIDTokenizerConfig(mode="sometimes")
    with pytest.raises(ValueError, match="codebook_sizes"):
        SIDTokenizerConfig(codebook_sizes=(8, 1))
    with pytest.raises(ValueError, match="temperature"):
        SIDTokenizerConfig(temperature=0.0)
    empty = {k: v[:0] for k, v in a.items()}
    with pytest.raises(ValueError, match="log is empty"):
        SIDTokenizer.fit(empty, CFG)
    with pytest.raises(TypeError, match="read_log_arrays"):
        SIDTokenizer.fit(tmp_path, CFG)  # a path: read it with the one log reader first
    no_click = dict(a, is_click=np.zeros_like(a["is_click"]))
    with pytest.raises(ValueError, match="no clicks"):
        SIDTokenizer.fit(no_click, CFG)
    with pytest.raises(ValueError, match="missing column"):
        SIDTokenizer.fit({"user_id": a["user_id"]}, CFG)
    with pytest.raises(ValueError, match="codebook_sizes"):
        SIDTokenizer.fit(read_log_arrays(log_dir), CFG.replace(codebook_sizes=(4096,)))


def test_corrupt_or_foreign_file_is_refused(tok: SIDTokenizer, tmp_path: Path) -> None:
    path = tok.save(tmp_path / "tok.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable SID tokenizer"):
        SIDTokenizer.load(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a readable SID tokenizer"):
        SIDTokenizer.load(tmp_path / "junk.pt")
    torch.save({"format": "something.else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a SID tokenizer file"):
        SIDTokenizer.load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        SIDTokenizer.load(tmp_path / "missing.pt")


def test_config_round_trips_through_dict() -> None:
    cfg = SIDTokenizerConfig(mode="static", codebook_sizes=[16, 8], seed=3)
    assert cfg.codebook_sizes == (16, 8)
    assert SIDTokenizerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        SIDTokenizerConfig.from_dict({"modee": "static"})


def test_tokenize_command_fits_saves_and_reports(log_dir: Path, tmp_path: Path) -> None:
    from agents.train.tokenize import main

    diag = main(
        [
            "--log",
            str(log_dir),
            "--out",
            str(tmp_path / "tok"),
            "--codebook-sizes",
            "8",
            "8",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--no-progress",
        ]
    )
    tok = SIDTokenizer.load(tmp_path / "tok" / "tokenizer.pt")
    assert tok.vocab_sizes == (8, 8) and tok.mode == "dynamic"
    assert (tmp_path / "tok" / "diagnostics.json").is_file()
    assert len(diag["utilisation"]) == 2 and all(0 < u <= 1 for u in diag["utilisation"])
    assert 0.0 <= diag["collision_rate_same_tick"] <= 1.0
    assert diag["churn_mean_distinct"] >= 1.0
    with pytest.raises(SystemExit) as e:
        main(["--log", str(log_dir), "--mode", "sometimes"])
    assert e.value.code == 2
