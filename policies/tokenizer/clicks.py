"""Training a SID tokenizer's towers on the clicks of a log.

:func:`train_tower` trains the two towers of :mod:`policies.tokenizer.tower` on the
logged clicks (in-batch InfoNCE, clicks weighted by what followed), which
:func:`click_batch` turns into one batch of tensors (the room side's content,
pooled embedding and hashed streamer; the user's features and pooled click history).
:func:`info_nce_loss` scores a fitted tokenizer's towers on another log's clicks.
:data:`FIT_COLUMNS`: the log columns fitting reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from policies.tokenizer.config import SIDTokenizerConfig
from policies.tokenizer.log_arrays import LogLike, load_log_arrays, log_user_history
from policies.tokenizer.tower import (
    ClickBatch,
    TwoTower,
    click_weights,
    hash_streamers,
    mean_info_nce,
    train_towers,
)

if TYPE_CHECKING:
    from policies.tokenizer.semantic_ids import SIDTokenizer

__all__ = ["FIT_COLUMNS", "click_batch", "info_nce_loss", "train_tower"]

FIT_COLUMNS = (
    "request_id",
    "user_id",
    "streamer_id",
    "live_id",
    "timestamp_ms",
    "is_click",
    "watch_time_ms",
    "like",
    "comment",
    "follow",
    "gift_price",
    "content_emb",
    "pooled_emb",
    "user_feat",
)


def train_tower(
    arrays: dict[str, np.ndarray], config: SIDTokenizerConfig, progress: bool = False
) -> tuple[TwoTower, list[float]]:
    """Train the two towers on the logged clicks; returns the tower and the loss
    trace ``[loss before training, mean loss of epoch 1, ...]``."""
    click = arrays["is_click"].astype(bool)
    if not click.any():
        raise ValueError("log has no clicks (is_click all false): nothing to train the towers on")
    tcfg = config.tower_config(arrays["content_emb"].shape[1], arrays["user_feat"].shape[1])
    return train_towers(
        click_batch(arrays, config, click),
        tcfg,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        temperature=config.temperature,
        seed=config.seed,
        progress=progress,
    )


def click_batch(
    arrays: dict[str, np.ndarray], config: SIDTokenizerConfig, click: np.ndarray
) -> ClickBatch:
    """The clicked rows (bool mask ``click``) of a log as a tower training batch."""
    hist, has = log_user_history(arrays, config.history_len)
    pooled = arrays["pooled_emb"][click]
    content = pooled if config.mode == "static" else arrays["content_emb"][click]
    w = click_weights(
        arrays["watch_time_ms"][click],
        arrays["like"][click],
        arrays["comment"][click],
        arrays["follow"][click],
        arrays["gift_price"][click],
        config.click_weight_coef,
    )

    def f32(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))

    return {
        "content": f32(content),
        "pooled": f32(pooled),
        "bucket": hash_streamers(arrays["streamer_id"][click], config.n_streamer_buckets),
        "user": f32(arrays["user_feat"][click]),
        "hist": f32(hist[click]),
        "has": torch.as_tensor(has[click]),
        "weight": torch.as_tensor(w),
    }


def info_nce_loss(tokenizer: SIDTokenizer, log: LogLike, batch_size: int | None = None) -> float:
    """Mean in-batch InfoNCE of ``tokenizer``'s towers on ``log``'s clicks (fixed batches)."""
    cfg = tokenizer.config
    arrays = load_log_arrays(log, FIT_COLUMNS)
    click = arrays["is_click"].astype(bool)
    if not click.any():
        raise ValueError("log has no clicks (is_click all false)")
    b = click_batch(arrays, cfg, click)
    bs = min(batch_size or cfg.batch_size, len(b["weight"]))
    return mean_info_nce(tokenizer.tower, b, cfg.temperature, bs, cfg.seed)
