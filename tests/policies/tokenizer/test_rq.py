"""Tests of residual k-means quantisation (policies.tokenizer.rq)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policies.tokenizer.rq import (
    ResidualKMeans,
    ResidualKMeansConfig,
    disambiguate,
    encode_reference,
)


def _data(n: int = 300, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, d)) * 3.0
    return centres[rng.integers(0, 6, size=n)] + rng.normal(size=(n, d))


@pytest.fixture(scope="module")
def fitted() -> tuple[ResidualKMeans, np.ndarray]:
    x = _data()
    return ResidualKMeans(ResidualKMeansConfig(codebook_sizes=(8, 8, 8))).fit(x), x


# ---------------------------------------------------------------- config


def test_config_defaults_and_roundtrip() -> None:
    cfg = ResidualKMeansConfig()
    assert cfg.codebook_sizes == (64, 64, 64) and cfg.n_levels == 3
    cfg2 = ResidualKMeansConfig(codebook_sizes=[16, 8], seed=3, minibatch_threshold=10)
    assert cfg2.codebook_sizes == (16, 8)
    assert ResidualKMeansConfig.from_dict(cfg2.to_dict()) == cfg2


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"codebook_sizes": (8, 0)}, r"codebook_sizes\[1\]=0 is invalid.*>= 2"),
        ({"codebook_sizes": (8, 2.5)}, r"codebook_sizes\[1\]=2.5"),
        ({"codebook_sizes": ()}, r"codebook_sizes=\(\) is invalid"),
        ({"codebook_sizes": 8}, r"codebook_sizes=8 is invalid"),
        ({"n_init": 0}, r"n_init=0 is invalid.*>= 1"),
        ({"max_iter": -1}, r"max_iter=-1 is invalid.*>= 1"),
        ({"seed": -1}, r"seed=-1 is invalid.*\[0, 4294967295\]"),
        ({"minibatch_threshold": 0}, r"minibatch_threshold=0 is invalid"),
        ({"n_init": True}, r"n_init=True is invalid"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        ResidualKMeansConfig(**kwargs)


def test_config_from_dict_rejects_unknown_field() -> None:
    with pytest.raises(ValueError, match=r"unknown.*bogus"):
        ResidualKMeansConfig.from_dict({"bogus": 1})


# ---------------------------------------------------------------- fit / encode / decode


def test_shapes_and_dtypes(fitted: tuple[ResidualKMeans, np.ndarray]) -> None:
    model, x = fitted
    assert model.dim == 8 and model.n_levels == 3
    assert [cb.shape for cb in model.codebooks] == [(8, 8)] * 3
    codes = model.encode(x)
    assert codes.shape == (300, 3) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 8
    assert model.decode(codes).shape == x.shape
    assert model.encode(np.zeros((0, 8))).shape == (0, 3)


def test_fast_encode_matches_reference(fitted: tuple[ResidualKMeans, np.ndarray]) -> None:
    model, x = fitted
    fresh = np.random.default_rng(7).normal(size=(200, 8)) * 2.0
    for data in (x, fresh):
        np.testing.assert_array_equal(model.encode(data), encode_reference(data, model.codebooks))


def test_chunked_encode_matches_reference(
    fitted: tuple[ResidualKMeans, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    import policies.tokenizer.rq as rq

    model, x = fitted
    monkeypatch.setattr(rq, "_MAX_BLOCK_ELEMENTS", 8 * 7)  # chunks of 7 rows
    np.testing.assert_array_equal(model.encode(x), encode_reference(x, model.codebooks))


def test_fit_codes_match_kmeans_assignment(fitted: tuple[ResidualKMeans, np.ndarray]) -> None:
    # Each level's codes are the nearest centroid of that level's residual.
    model, x = fitted
    codes = model.encode(x)
    r = x.copy()
    for level, cb in enumerate(model.codebooks):
        d2 = ((r[:, None, :] - cb[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(codes[:, level], d2.argmin(1))
        r = r - cb[codes[:, level]]


def test_error_decreases_with_levels() -> None:
    x = _data(n=400, d=6, seed=1)
    errors = []
    for levels in (1, 2, 3):
        model = ResidualKMeans(ResidualKMeansConfig(codebook_sizes=(8,) * levels)).fit(x)
        recon = model.decode(model.encode(x))
        errors.append(float(np.mean((x - recon) ** 2)))
    assert errors[0] > errors[1] > errors[2]


def test_decode_is_sum_of_centroids(fitted: tuple[ResidualKMeans, np.ndarray]) -> None:
    model, _ = fitted
    codes = np.array([[0, 1, 2], [7, 7, 7]])
    cbs = model.codebooks
    expected = np.stack([cbs[0][c[0]] + cbs[1][c[1]] + cbs[2][c[2]] for c in codes])
    np.testing.assert_allclose(model.decode(codes), expected)


def test_deterministic_seed() -> None:
    x = _data(n=200)
    cfg = ResidualKMeansConfig(codebook_sizes=(6, 6))
    a = ResidualKMeans(cfg).fit(x)
    b = ResidualKMeans(cfg).fit(x)
    for ca, cb in zip(a.codebooks, b.codebooks, strict=True):
        np.testing.assert_array_equal(ca, cb)
    c = ResidualKMeans(ResidualKMeansConfig(codebook_sizes=(6, 6), seed=1)).fit(x)
    assert any(not np.array_equal(ca, cc) for ca, cc in zip(a.codebooks, c.codebooks, strict=True))


def test_minibatch_path_is_deterministic_and_matches_reference() -> None:
    x = _data(n=300)
    cfg = ResidualKMeansConfig(codebook_sizes=(6, 4), minibatch_threshold=100, max_iter=20)
    a = ResidualKMeans(cfg).fit(x)
    b = ResidualKMeans(cfg).fit(x)
    np.testing.assert_array_equal(a.encode(x), b.encode(x))
    np.testing.assert_array_equal(a.encode(x), encode_reference(x, a.codebooks))


def test_global_rng_untouched() -> None:
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    ResidualKMeans(ResidualKMeansConfig(codebook_sizes=(4,))).fit(_data(n=50))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_float32_input(fitted: tuple[ResidualKMeans, np.ndarray]) -> None:
    model, x = fitted
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(model.encode(x32), encode_reference(x32, model.codebooks))


# ---------------------------------------------------------------- bad inputs


def test_fit_rejects_bad_inputs() -> None:
    model = ResidualKMeans(ResidualKMeansConfig(codebook_sizes=(4,)))
    with pytest.raises(ValueError, match=r"x must be 2-D.*shape \(5,\)"):
        model.fit(np.zeros(5))
    with pytest.raises(ValueError, match=r"x must be non-empty.*shape \(0, 3\)"):
        model.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        model.fit(np.full((10, 2), np.nan))


def test_fit_rejects_too_few_distinct_rows() -> None:
    x = np.repeat(np.eye(3), 10, axis=0)  # 30 rows, 3 distinct
    with pytest.raises(ValueError, match=r"level 0: 3 distinct rows.*codebook_sizes\[0\]=4"):
        ResidualKMeans(ResidualKMeansConfig(codebook_sizes=(4,))).fit(x)


def test_encode_decode_reject_bad_inputs(fitted: tuple[ResidualKMeans, np.ndarray]) -> None:
    model, _ = fitted
    with pytest.raises(ValueError, match="width 5 but the codebooks expect width 8"):
        model.encode(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"shape \(n, 3\), got shape \(2, 4\)"):
        model.decode(np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"codes\[:, 1\] has value 8 outside \[0, 7\]"):
        model.decode(np.array([[0, 8, 0]]))
    with pytest.raises(RuntimeError, match="not fitted"):
        ResidualKMeans().encode(np.zeros((1, 8)))


# ---------------------------------------------------------------- persistence


def test_save_load_roundtrip(fitted: tuple[ResidualKMeans, np.ndarray], tmp_path: Path) -> None:
    model, x = fitted
    path = tmp_path / "rq.npz"
    model.save(path)
    loaded = ResidualKMeans.load(path)
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
    assert [p.name for p in tmp_path.iterdir()] == ["rq.npz"]  # no temp file left
    model.save(path)  # overwrite in place
    np.testing.assert_array_equal(ResidualKMeans.load(path).encode(x), model.encode(x))


def test_load_corrupt_or_truncated(
    fitted: tuple[ResidualKMeans, np.ndarray], tmp_path: Path
) -> None:
    model, _ = fitted
    good = tmp_path / "good.npz"
    model.save(good)
    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all" * 10)
    for bad in (truncated, garbage):
        with pytest.raises(ValueError, match="could not load ResidualKMeans"):
            ResidualKMeans.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="could not load ResidualKMeans"):
        ResidualKMeans.load(other)
    with pytest.raises(FileNotFoundError):
        ResidualKMeans.load(tmp_path / "missing.npz")


# ---------------------------------------------------------------- disambiguation


def test_disambiguate_hand_made() -> None:
    codes = np.array([[1, 2], [0, 0], [1, 2], [1, 2], [0, 0], [3, 3]])
    out = disambiguate(codes)
    assert out.shape == (6, 3) and out.dtype == np.int64
    np.testing.assert_array_equal(out[:, :2], codes)
    np.testing.assert_array_equal(out[:, 2], [0, 0, 1, 2, 1, 0])
    assert disambiguate(np.zeros((0, 2), dtype=np.int64)).shape == (0, 3)


def test_disambiguate_random_unique_and_first_is_zero() -> None:
    codes = np.random.default_rng(0).integers(0, 3, size=(500, 2))
    out = disambiguate(codes)
    assert np.unique(out, axis=0).shape[0] == 500
    seen: dict[tuple[int, ...], int] = {}
    for row, full in zip(codes.tolist(), out.tolist(), strict=True):
        key = tuple(row)
        assert full[-1] == seen.get(key, 0)  # 0 at first appearance, then 1, 2, ...
        seen[key] = seen.get(key, 0) + 1
    np.testing.assert_array_equal(out, disambiguate(codes))
