"""Fit a semantic-ID tokenizer on an interaction log, save it, print its diagnostics.

    python -m agents.train.tokenize --log logs/default-2d --out runs/tok [--mode static]

Writes ``<out>/tokenizer.pt`` (:meth:`SIDTokenizer.save`, carries its config) and
``<out>/diagnostics.json``. Diagnostics are computed on the log's room states (one
per room and 30-s tick in which the room was shown): codebook utilisation per level,
reconstruction error, collision rate among the rooms shown in the same tick (rooms
sharing a full SID; the live index serves all of them), and SID churn (distinct SIDs
per broadcast over its logged states).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from agents.logs import read_log_arrays
from agents.run import cliargs
from liveenv.atomic import atomic_write_bytes
from policies.tokenizer import (
    SIDTokenizer,
    SIDTokenizerConfig,
    codebook_utilisation,
    reconstruction_error,
    sid_churn,
)
from policies.tokenizer.clicks import FIT_COLUMNS
from policies.tokenizer.log_arrays import SEGMENT_MS, load_log_arrays, room_state_rows


@dataclass
class TokenizeArgs:
    """Fit a dynamic (or static) semantic-ID tokenizer on a log and save it."""

    log: str = field(default="", metadata={"help": "interaction log directory (required)"})
    out: str = field(default="runs/tokenizer", metadata={"help": "output folder"})
    mode: Literal["dynamic", "static"] = field(
        default="dynamic",
        metadata={"help": "dynamic: SID from the current content; static: per streamer"},
    )
    codebook_sizes: tuple[int, ...] = field(
        default=(32, 32, 32), metadata={"help": "residual k-means clusters per level"}
    )
    embed_dim: int = field(default=32, metadata={"help": "aligned embedding width"})
    epochs: int = field(default=4, metadata={"help": "tower training epochs"})
    batch_size: int = field(default=512, metadata={"help": "InfoNCE batch (in-batch negatives)"})
    lr: float = field(default=3e-3, metadata={"help": "AdamW learning rate"})
    temperature: float = field(default=0.1, metadata={"help": "InfoNCE temperature"})
    seed: int = field(default=0, metadata={"help": "seed of every random draw"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    progress: bool = field(default=True, metadata={"help": "print the tower's losses"})

    def __post_init__(self) -> None:
        if not self.log:
            raise ValueError("log='' is invalid: pass --log DIR (an interaction log directory)")
        if self.threads < 1:
            raise ValueError(f"threads={self.threads} is invalid: must be >= 1")
        self.tokenizer_config()  # validates mode, sizes and the training fields

    def tokenizer_config(self) -> SIDTokenizerConfig:
        return SIDTokenizerConfig(
            mode=self.mode,
            codebook_sizes=self.codebook_sizes,
            embed_dim=self.embed_dim,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            temperature=self.temperature,
            seed=self.seed,
        )


def tick_collision_rate(ticks: np.ndarray, codes: np.ndarray) -> float:
    """Share of room states whose full SID another room shown in the same tick shares."""
    if len(codes) == 0:
        return 0.0
    keyed = np.concatenate([ticks[:, None], codes], axis=1)
    _, inv, counts = np.unique(keyed, axis=0, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inv.reshape(-1)] > 1))


def log_diagnostics(tok: SIDTokenizer, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Diagnostics of ``tok`` on a log's room states (one per room and tick)."""
    rows = room_state_rows(arrays, "dynamic")
    content, pooled = arrays["content_emb"][rows], arrays["pooled_emb"][rows]
    streamer, times = arrays["streamer_id"][rows], arrays["timestamp_ms"][rows]
    emb = tok.embed_rooms(content, pooled, streamer)
    codes = tok.quantiser.encode(emb)
    churn = sid_churn(arrays["live_id"][rows], codes, times / 1000.0)
    return {
        "room_states": len(rows),
        "utilisation": codebook_utilisation(codes, tok.vocab_sizes),
        "unique_sids": int(len(np.unique(codes, axis=0))),
        "reconstruction_error": reconstruction_error(emb, tok.quantiser.decode(codes)),
        "collision_rate_same_tick": tick_collision_rate(times // SEGMENT_MS, codes),
        "churn_mean_distinct": churn["mean_distinct"],
        "churn_median_distinct": churn["median_distinct"],
        "changes_per_room_hour": churn.get("changes_per_hour", float("nan")),
    }


def tokenize(args: TokenizeArgs) -> dict[str, Any]:
    out = Path(args.out)
    start = time.perf_counter()
    arrays = load_log_arrays(read_log_arrays(args.log, FIT_COLUMNS), FIT_COLUMNS)
    tok = SIDTokenizer.fit(arrays, args.tokenizer_config(), progress=args.progress)
    path = tok.save(out / "tokenizer.pt")
    diag = {
        "tokenizer": str(path),
        "args": cliargs.to_dict(args),
        "rows": len(arrays["user_id"]),
        "clicks": tok.fit_info["n_clicks"],
        "fit_seconds": tok.fit_info["seconds"],
        "tower_losses": tok.fit_info["losses"],
        **log_diagnostics(tok, arrays),
        "seconds": time.perf_counter() - start,
    }
    atomic_write_bytes(out / "diagnostics.json", json.dumps(diag, indent=2).encode())
    return diag


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = cliargs.parse(TokenizeArgs, argv, prog="python -m agents.train.tokenize")
    torch.set_num_threads(args.threads)
    diag = tokenize(args)
    for key, value in diag.items():
        if key in ("args", "tower_losses"):
            continue
        if isinstance(value, list):
            value = " / ".join(f"{v:.3f}" for v in value)
        print(f"{key:>26}: {value:.4g}" if isinstance(value, float) else f"{key:>26}: {value}")
    return diag


if __name__ == "__main__":
    main()
