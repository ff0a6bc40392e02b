"""Residual k-means quantisation into semantic IDs (SIDs).

Coarse to fine: level ``l`` fits k-means on the residual ``x_l`` and
``x_{l+1} = x_l - c_{l, q_l}`` with ``q_l = argmin_k ||x_l - c_{l,k}||``.
Pure numpy + scikit-learn; all randomness comes from ``ResidualKMeansConfig.seed``.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from liveenv.atomic import atomic_write
from liveenv.serialize import DictConfig

__all__ = [
    "ResidualKMeans",
    "ResidualKMeansConfig",
    "disambiguate",
    "encode_reference",
]

_FORMAT_VERSION = 1
# Elements of one (chunk, k) distance block in encode: 4M float64 = 32 MiB.
_MAX_BLOCK_ELEMENTS = 1 << 22


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    rng = f">= {low}" if high is None else f"in [{low}, {high}]"
    if not _is_int(value) or value < low or (high is not None and value > high):
        raise ValueError(f"{name}={value!r} is invalid: must be an integer {rng}")


@dataclass(frozen=True)
class ResidualKMeansConfig(DictConfig):
    """Configuration of residual k-means.

    Attributes
    ----------
    codebook_sizes : clusters per level, coarse to fine; ``n_levels = len``.
    n_init : k-means restarts per level.
    max_iter : k-means iterations per level.
    seed : root seed; each level derives its own seed from (seed, level).
    minibatch_threshold : above this many rows a level uses MiniBatchKMeans.
    """

    codebook_sizes: tuple[int, ...] = (64, 64, 64)
    n_init: int = 1
    max_iter: int = 100
    seed: int = 0
    minibatch_threshold: int = 50_000

    def __post_init__(self) -> None:
        sizes = self.codebook_sizes
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise ValueError(
                f"codebook_sizes={sizes!r} is invalid: must be a non-empty sequence of "
                "integers >= 2"
            )
        object.__setattr__(self, "codebook_sizes", tuple(sizes))
        if len(self.codebook_sizes) == 0:
            raise ValueError(
                "codebook_sizes=() is invalid: need at least 1 level (a non-empty sequence "
                "of integers >= 2)"
            )
        for i, k in enumerate(self.codebook_sizes):
            if not _is_int(k) or k < 2:
                raise ValueError(
                    f"codebook_sizes[{i}]={k!r} is invalid: each codebook size must be an "
                    "integer >= 2"
                )
        object.__setattr__(self, "codebook_sizes", tuple(int(k) for k in self.codebook_sizes))
        _check_int("n_init", self.n_init, 1)
        _check_int("max_iter", self.max_iter, 1)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        _check_int("minibatch_threshold", self.minibatch_threshold, 1)

    @property
    def n_levels(self) -> int:
        """Number of quantisation levels."""
        return len(self.codebook_sizes)


# --------------------------------------------------------------------------- helpers


def _as_matrix(x: object, name: str = "x") -> np.ndarray:
    """Validate a non-empty, finite 2-D float array; return it as float64."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def _level_seed(seed: int, level: int) -> int:
    return int(np.random.SeedSequence([seed, level]).generate_state(1)[0])


def _nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest row of ``c`` for every row of ``x`` (chunked, vectorised).

    Uses ``||x||^2 - 2 x c^T + ||c||^2``; the per-row ``||x||^2`` term does not change
    the argmin and is dropped.
    """
    c_sq = np.einsum("kd,kd->k", c, c)
    out = np.empty(x.shape[0], dtype=np.int64)
    chunk = max(1, _MAX_BLOCK_ELEMENTS // max(1, c.shape[0]))
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk]
        d2 = c_sq[None, :] - 2.0 * (xb @ c.T)
        out[start : start + chunk] = np.argmin(d2, axis=1)
    return out


def encode_reference(x: np.ndarray, codebooks: Sequence[np.ndarray]) -> np.ndarray:
    """Plain Python-loop reference of residual encoding (for tests).

    For each row and level: take the centroid with the smallest squared distance
    (first one on ties), subtract it, go to the next level.
    """
    x = np.asarray(x, dtype=np.float64)
    codes = np.zeros((x.shape[0], len(codebooks)), dtype=np.int64)
    for i in range(x.shape[0]):
        r = x[i].copy()
        for level, cb in enumerate(codebooks):
            best, best_d = 0, np.inf
            for k in range(cb.shape[0]):
                d = float(np.sum((r - cb[k]) ** 2))
                if d < best_d:
                    best, best_d = k, d
            codes[i, level] = best
            r = r - cb[best]
    return codes


def disambiguate(codes: np.ndarray) -> np.ndarray:
    """Append a final token that makes every row unique (TIGER style).

    Rows with identical codes get suffixes 0, 1, 2, ... in order of appearance,
    so the first occurrence always gets 0. Deterministic.

    Returns
    -------
    np.ndarray of int64, shape (n, n_levels + 1).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (n, n_levels), got shape {codes.shape}")
    codes = codes.astype(np.int64, copy=False)
    n = codes.shape[0]
    suffix = np.zeros(n, dtype=np.int64)
    if n > 0:
        _, inv = np.unique(codes, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        order = np.argsort(inv, kind="stable")  # groups, each in order of appearance
        sorted_inv = inv[order]
        is_start = np.ones(n, dtype=bool)
        is_start[1:] = sorted_inv[1:] != sorted_inv[:-1]
        start_pos = np.maximum.accumulate(np.where(is_start, np.arange(n), 0))
        suffix[order] = np.arange(n) - start_pos
    return np.concatenate([codes, suffix[:, None]], axis=1)


# --------------------------------------------------------------------------- model


class ResidualKMeans:
    """Residual k-means quantiser: ``fit`` codebooks, ``encode`` to SIDs, ``decode`` back.

    Fitting raises ValueError when a level has fewer distinct (residual) rows than its
    codebook size; codebook sizes are never clamped silently.
    """

    def __init__(self, config: ResidualKMeansConfig | None = None) -> None:
        self.config = config if config is not None else ResidualKMeansConfig()
        self._codebooks: list[np.ndarray] | None = None

    # ---- properties
    @property
    def n_levels(self) -> int:
        return self.config.n_levels

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return self.config.codebook_sizes

    @property
    def is_fitted(self) -> bool:
        return self._codebooks is not None

    @property
    def codebooks(self) -> list[np.ndarray]:
        """Read-only centroid arrays, one (k_l, d) float64 array per level."""
        return list(self._require_fitted())

    @property
    def dim(self) -> int:
        """Embedding width d the codebooks were fitted on."""
        return int(self._require_fitted()[0].shape[1])

    def _require_fitted(self) -> list[np.ndarray]:
        if self._codebooks is None:
            raise RuntimeError("ResidualKMeans is not fitted: call fit() or load() first")
        return self._codebooks

    # ---- construction
    @classmethod
    def from_codebooks(
        cls, codebooks: Sequence[np.ndarray], config: ResidualKMeansConfig | None = None
    ) -> ResidualKMeans:
        """Build a fitted model from given codebooks (config derived when not given)."""
        cbs = [np.array(cb, dtype=np.float64) for cb in codebooks]
        if config is None:
            config = ResidualKMeansConfig(codebook_sizes=tuple(cb.shape[0] for cb in cbs))
        _check_codebooks(cbs, config)
        model = cls(config)
        model._set_codebooks(cbs)
        return model

    def _set_codebooks(self, cbs: list[np.ndarray]) -> None:
        for cb in cbs:
            cb.setflags(write=False)
        self._codebooks = cbs

    # ---- fit / encode / decode
    def fit(self, x: np.ndarray) -> ResidualKMeans:
        """Fit the codebooks level by level on ``x`` of shape (n, d)."""
        residual = _as_matrix(x, "x").copy()
        cbs: list[np.ndarray] = []
        for level, k in enumerate(self.config.codebook_sizes):
            centroids = self._fit_level(residual, level, k)
            residual -= centroids[_nearest(residual, centroids)]
            cbs.append(centroids)
        self._set_codebooks(cbs)
        return self

    def _fit_level(self, r: np.ndarray, level: int, k: int) -> np.ndarray:
        n_distinct = np.unique(r, axis=0).shape[0]
        if n_distinct < k:
            raise ValueError(
                f"level {level}: {n_distinct} distinct rows in x (residuals) but "
                f"codebook_sizes[{level}]={k}; use more data or smaller codebook sizes"
            )
        cfg, rs = self.config, _level_seed(self.config.seed, level)
        if r.shape[0] > cfg.minibatch_threshold:
            km: KMeans | MiniBatchKMeans = MiniBatchKMeans(
                n_clusters=k,
                n_init=cfg.n_init,
                max_iter=cfg.max_iter,
                random_state=rs,
                batch_size=max(1024, 4 * k),
            )
        else:
            km = KMeans(n_clusters=k, n_init=cfg.n_init, max_iter=cfg.max_iter, random_state=rs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # e.g. convergence notes
            km.fit(r)
        return np.ascontiguousarray(km.cluster_centers_, dtype=np.float64)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Semantic IDs of ``x`` (n, d): int64 array (n, n_levels)."""
        cbs = self._require_fitted()
        arr = np.asarray(x)
        if arr.ndim == 2 and arr.shape[0] == 0 and arr.shape[1] == self.dim:
            return np.zeros((0, self.n_levels), dtype=np.int64)
        residual = _as_matrix(arr, "x")
        if residual.shape[1] != self.dim:
            raise ValueError(
                f"x has width {residual.shape[1]} but the codebooks expect width {self.dim}"
            )
        residual = residual.copy()
        codes = np.empty((residual.shape[0], self.n_levels), dtype=np.int64)
        for level, cb in enumerate(cbs):
            codes[:, level] = _nearest(residual, cb)
            residual -= cb[codes[:, level]]
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Reconstruction (n, d): the sum over levels of the chosen centroids."""
        cbs = self._require_fitted()
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.n_levels:
            raise ValueError(f"codes must have shape (n, {self.n_levels}), got shape {codes.shape}")
        if codes.size and not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
        out = np.zeros((codes.shape[0], self.dim), dtype=np.float64)
        for level, cb in enumerate(cbs):
            col = codes[:, level]
            bad = (col < 0) | (col >= cb.shape[0])
            if bad.any():
                raise ValueError(
                    f"codes[:, {level}] has value {int(col[bad][0])} outside [0, {cb.shape[0] - 1}]"
                )
            out += cb[col]
        return out

    # ---- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write config (JSON) and codebooks to one .npz file at ``path``, atomically.

        The file is written exactly at ``path`` (no suffix is added).
        """
        cbs = self._require_fitted()
        path = Path(path)
        arrays = {f"codebook_{i}": cb for i, cb in enumerate(cbs)}
        arrays["config_json"] = np.array(json.dumps(self.config.to_dict()))
        arrays["format_version"] = np.array(_FORMAT_VERSION)
        atomic_write(path, lambda fh: np.savez(fh, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ResidualKMeans:
        """Load a model written by :meth:`save`; corrupt files raise ValueError."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no ResidualKMeans file at {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"])
                if version != _FORMAT_VERSION:
                    raise ValueError(f"format_version={version}, expected {_FORMAT_VERSION}")
                config = ResidualKMeansConfig.from_dict(json.loads(str(data["config_json"])))
                cbs = [np.array(data[f"codebook_{i}"]) for i in range(config.n_levels)]
        except (OSError, EOFError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as e:
            raise ValueError(f"could not load ResidualKMeans from {path}: {e}") from e
        _check_codebooks(cbs, config)
        return cls.from_codebooks(cbs, config)


def _check_codebooks(cbs: list[np.ndarray], config: ResidualKMeansConfig) -> None:
    if len(cbs) != config.n_levels:
        raise ValueError(f"got {len(cbs)} codebooks, config has n_levels={config.n_levels}")
    dim = cbs[0].shape[1] if cbs[0].ndim == 2 else -1
    for i, (cb, k) in enumerate(zip(cbs, config.codebook_sizes, strict=True)):
        if cb.ndim != 2 or cb.shape[0] != k or cb.shape[1] != dim or dim < 1:
            raise ValueError(
                f"codebook {i} has shape {cb.shape}, expected ({k}, d) with d={dim} >= 1"
            )
        if not np.isfinite(cb).all():
            raise ValueError(f"codebook {i} contains NaN or inf values")
