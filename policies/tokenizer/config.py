"""The configuration of a SID tokenizer (:class:`policies.tokenizer.semantic_ids.SIDTokenizer`):
its mode, codebooks, towers and training, validated on construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from liveenv.serialize import DictConfig
from policies.tokenizer.rq import ResidualKMeansConfig
from policies.tokenizer.tower import TowerConfig

__all__ = ["MODES", "SIDTokenizerConfig"]

MODES = ("dynamic", "static")


def _bad(field: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"SIDTokenizerConfig.{field}={value!r} is invalid: must be {allowed}")


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


@dataclass(frozen=True)
class SIDTokenizerConfig(DictConfig):
    """Everything that defines a tokenizer; validated on construction.

    mode: "dynamic" (room SID from its current 30-s content) or "static" (one SID
        per streamer, from the pooled embedding).
    codebook_sizes: residual k-means clusters per level, coarse to fine.
    embed_dim / hidden_dim / n_streamer_buckets / gate_bias_init: the towers
        (see :class:`~policies.tokenizer.tower.TowerConfig`).
    history_len: clicked rooms pooled into the user tower's history input.
    epochs / batch_size / lr / weight_decay / temperature: InfoNCE training (AdamW).
    click_weight_coef: (watch, like, comment, follow, gift) coefficients of
        :func:`~policies.tokenizer.tower.click_weights`.
    max_quantiser_rows: room states sampled (seeded) to fit the codebooks.
    kmeans_n_init / kmeans_max_iter: residual k-means effort per level.
    seed: root of every random draw (init, batch order, sampling, k-means).
    """

    mode: str = "dynamic"
    codebook_sizes: tuple[int, ...] = (32, 32, 32)
    embed_dim: int = 32
    hidden_dim: int = 64
    n_streamer_buckets: int = 2048
    gate_bias_init: float = -1.0
    history_len: int = 20
    epochs: int = 4
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-4
    temperature: float = 0.1
    click_weight_coef: tuple[float, ...] = (1.0, 0.5, 1.0, 2.0, 1.0)
    max_quantiser_rows: int = 60_000
    kmeans_n_init: int = 1
    kmeans_max_iter: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise _bad("mode", self.mode, f"one of {list(MODES)}")
        cs = self.codebook_sizes
        cs = tuple(cs) if isinstance(cs, (list, tuple)) else cs
        if not isinstance(cs, tuple) or not cs or not all(_is_int(k) and k >= 2 for k in cs):
            raise _bad("codebook_sizes", self.codebook_sizes, "a non-empty tuple of ints >= 2")
        object.__setattr__(self, "codebook_sizes", tuple(int(k) for k in cs))
        for name, lo in (
            ("embed_dim", 1),
            ("hidden_dim", 1),
            ("n_streamer_buckets", 1),
            ("history_len", 1),
            ("epochs", 0),
            ("batch_size", 2),
            ("max_quantiser_rows", 2),
            ("kmeans_n_init", 1),
            ("kmeans_max_iter", 1),
        ):
            v = getattr(self, name)
            if not _is_int(v) or v < lo:
                raise _bad(name, v, f"an int >= {lo}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            raise _bad("seed", self.seed, "an int in [0, 2**32)")
        for name in ("lr", "temperature"):
            v = getattr(self, name)
            if not _is_num(v) or not (math.isfinite(v) and v > 0):
                raise _bad(name, v, "a finite float > 0")
        if not _is_num(self.weight_decay) or not (0 <= self.weight_decay < math.inf):
            raise _bad("weight_decay", self.weight_decay, "a finite float >= 0")
        if not _is_num(self.gate_bias_init) or not math.isfinite(self.gate_bias_init):
            raise _bad("gate_bias_init", self.gate_bias_init, "a finite float")
        coef = self.click_weight_coef
        coef = tuple(coef) if isinstance(coef, (list, tuple)) else coef
        if (
            not isinstance(coef, tuple)
            or len(coef) != 5
            or not all(_is_num(a) and math.isfinite(a) and a >= 0 for a in coef)
        ):
            raise _bad(
                "click_weight_coef",
                self.click_weight_coef,
                "5 finite floats >= 0 (watch, like, comment, follow, gift)",
            )
        object.__setattr__(self, "click_weight_coef", tuple(float(a) for a in coef))

    @property
    def n_levels(self) -> int:
        return len(self.codebook_sizes)

    def tower_config(self, content_dim: int, user_dim: int) -> TowerConfig:
        return TowerConfig(
            content_dim=content_dim,
            user_dim=user_dim,
            embed_dim=self.embed_dim,
            hidden_dim=self.hidden_dim,
            n_streamer_buckets=self.n_streamer_buckets,
            gate_bias_init=float(self.gate_bias_init),
        )

    def quantiser_config(self) -> ResidualKMeansConfig:
        return ResidualKMeansConfig(
            codebook_sizes=self.codebook_sizes,
            n_init=self.kmeans_n_init,
            max_iter=self.kmeans_max_iter,
            seed=self.seed,
        )

    def replace(self, **changes: Any) -> SIDTokenizerConfig:
        return SIDTokenizerConfig(**{**asdict(self), **changes})
