"""The data and shape of generator pretraining (:mod:`agents.train.pretrain`).

:func:`load_data` reads the log's columns (:data:`LOG_COLUMNS`), cuts it by time (the
latest ``valid_fraction`` of the clicks validate), loads a SID tokenizer or fits one
on the training part only (so validation never leaks into the codebooks), and cuts
the examples (:mod:`agents.train.sequences`); :func:`model_config` turns the
arguments into the :class:`policies.onelive.config.OneLiveConfig` of the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agents.logs.reader import read_log_and_past
from agents.train.sequences import (
    SequenceConfig,
    SequenceData,
    build_examples,
    split_by_time,
    time_cutoff_ms,
)
from policies.onelive.config import OneLiveConfig
from policies.onelive.features import N_FEEDBACK_TYPES, TIME_DIM
from policies.onelive.hybrid_sids import HybridTokenizer, load_tokenizer
from policies.tokenizer import SIDTokenizer, SIDTokenizerConfig

if TYPE_CHECKING:
    from agents.train.pretrain import PretrainArgs

__all__ = ["LOG_COLUMNS", "load_data", "model_config"]


LOG_COLUMNS = (
    "episode",
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
    "room_stats",
)


def _rows(arrays: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[keep] for k, v in arrays.items()}


def load_data(
    args: PretrainArgs, tokenizer_path: Path | None = None
) -> tuple[SIDTokenizer | HybridTokenizer, Path, SequenceData, SequenceData, int]:
    """(tokenizer, its path, train examples, valid examples, cutoff ms).

    The tokenizer is loaded from ``tokenizer_path`` / ``args.tokenizer`` or fitted on
    the rows before the cut-off (so validation never leaks into the codebooks)."""
    if not args.log:
        raise ValueError("PretrainArgs.log is empty: give an interaction log directory")
    arrays, past = read_log_and_past(args.log, LOG_COLUMNS)  # histories start with the past
    cutoff = time_cutoff_ms(arrays, args.valid_fraction)
    path = tokenizer_path or (Path(args.tokenizer) if args.tokenizer else None)
    if path is not None:
        tok = load_tokenizer(path)
    else:
        train_rows = _rows(arrays, arrays["timestamp_ms"] < cutoff)
        fitted = {}
        for mode in ("static", "dynamic") if args.sid_mode == "hybrid" else (args.sid_mode,):
            cfg = SIDTokenizerConfig(
                mode=mode,
                codebook_sizes=args.codebook_sizes,
                epochs=args.tokenizer_epochs,
                seed=args.seed,
            )
            fitted[mode] = SIDTokenizer.fit(train_rows, cfg)
        tok = (
            HybridTokenizer(fitted["static"], fitted["dynamic"])
            if args.sid_mode == "hybrid"
            else fitted[args.sid_mode]
        )
        path = tok.save(Path(args.out) / "tokenizer.pt")
    seq = SequenceConfig(
        args.max_history, args.weights, live_window_s=args.live_window_s, negatives=args.negatives
    )
    data = build_examples(arrays, tok, seq, past)
    train, valid = split_by_time(data, cutoff)
    valid = valid.positives()  # validation losses stay comparable: clicks only
    if len(train.positives()) == 0:
        raise ValueError(f"{args.log}: no clicks before the validation cut-off; nothing to train")
    return tok, Path(path), train, valid, cutoff


def model_config(
    args: PretrainArgs, tok: SIDTokenizer | HybridTokenizer, user_dim: int, obs_dim: int = 0
) -> OneLiveConfig:
    """The generator's config; ``obs_dim``: the log's observed embedding width (the room
    prior's bilinear match reads it, ``args.room_embed``)."""
    room = bool(args.room_prior and args.live_window_s > 0)  # no live sets: no room prior
    return OneLiveConfig(
        vocab_sizes=tuple(tok.vocab_sizes),
        user_dim=user_dim,
        time_dim=TIME_DIM,
        n_feedback_types=N_FEEDBACK_TYPES,
        max_history=args.max_history,
        d_model=args.d_model,
        n_head=args.n_head,
        n_layer=args.n_layer,
        dropout=args.dropout,
        use_gate=args.use_gate,
        use_qk_norm=args.use_qk_norm,
        use_mtp=args.use_mtp,
        live_prior_weight=args.live_prior_weight if args.live_window_s > 0 else 0.0,
        room_prior=room,
        room_affinity=room and args.room_affinity,
        room_embed_dim=obs_dim if room and args.room_embed else 0,
    )
