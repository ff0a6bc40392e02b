"""Hybrid semantic IDs: a static streamer prefix followed by dynamic content tokens.

SSRLive gives a room two SIDs, a static one (streamer identity) and a dynamic one
(current content). :class:`HybridTokenizer` concatenates them into one SID for the
generator: the first ``static_levels`` tokens of a static tokenizer's SID (one per
streamer; nearly unique per streamer at two levels) and then the first
``dynamic_levels`` tokens of a dynamic tokenizer's SID (the coarse content state
now). The prefix pools everything the generator learns about a streamer across its
content states; the suffix still follows the content every 30 s.

It exposes what the generator and the policy use of a ``SIDTokenizer``
(``vocab_sizes``, ``n_levels``, ``mode``, ``content_dim``, ``encode``, ``encode_log``,
``save``); :func:`load_tokenizer` reads a hybrid file or a plain tokenizer file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liveenv.atomic import atomic_write_bytes
from policies.tokenizer.log_arrays import load_log_arrays
from policies.tokenizer.semantic_ids import SIDTokenizer

__all__ = ["HybridTokenizer", "load_tokenizer"]

FORMAT = "liveenv.hybrid_sid_tokenizer"
VERSION = 1


class HybridTokenizer:
    """``static`` SID[:static_levels] + ``dynamic`` SID[:dynamic_levels]."""

    def __init__(
        self,
        static: SIDTokenizer,
        dynamic: SIDTokenizer,
        static_levels: int = 2,
        dynamic_levels: int = 1,
    ) -> None:
        if static.mode != "static" or dynamic.mode != "dynamic":
            raise ValueError(
                f"HybridTokenizer needs a static and a dynamic tokenizer, got modes "
                f"{static.mode!r} and {dynamic.mode!r}"
            )
        for name, n, tok in (
            ("static_levels", static_levels, static),
            ("dynamic_levels", dynamic_levels, dynamic),
        ):
            if not 1 <= n <= tok.n_levels:
                raise ValueError(f"{name}={n!r} is invalid: must be in [1, {tok.n_levels}]")
        if static.content_dim != dynamic.content_dim:
            raise ValueError("the static and dynamic tokenizers were fitted on other widths")
        self.static, self.dynamic = static, dynamic
        self.static_levels, self.dynamic_levels = int(static_levels), int(dynamic_levels)

    @property
    def vocab_sizes(self) -> tuple[int, ...]:
        s, d = self.static.vocab_sizes, self.dynamic.vocab_sizes
        return tuple(s[: self.static_levels]) + tuple(d[: self.dynamic_levels])

    @property
    def n_levels(self) -> int:
        return self.static_levels + self.dynamic_levels

    @property
    def mode(self) -> str:
        return "hybrid"

    @property
    def content_dim(self) -> int:
        return self.dynamic.content_dim

    def encode(
        self, content_emb: np.ndarray, pooled_emb: np.ndarray, streamer_id: np.ndarray
    ) -> np.ndarray:
        """SIDs (N, n_levels) int64: static prefix, then dynamic tokens."""
        s = self.static.encode(None, pooled_emb, streamer_id)[:, : self.static_levels]
        d = self.dynamic.encode(content_emb, pooled_emb, streamer_id)[:, : self.dynamic_levels]
        return np.concatenate([s, d], axis=1)

    def encode_log(self, log: Any) -> np.ndarray:
        a = load_log_arrays(log, ("streamer_id", "content_emb", "pooled_emb"))
        return self.encode(a["content_emb"], a["pooled_emb"], a["streamer_id"])

    def save(self, path: str | os.PathLike[str]) -> Path:
        """One file holding both tokenizer files (written atomically)."""
        parts = {}
        for name, tok in (("static", self.static), ("dynamic", self.dynamic)):
            buf = io.BytesIO()
            tmp = Path(path).with_name(f".{Path(path).name}.{name}.tmp")
            try:
                tok.save(tmp)
                buf.write(tmp.read_bytes())
            finally:
                tmp.unlink(missing_ok=True)
            parts[name] = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "static_levels": self.static_levels,
            "dynamic_levels": self.dynamic_levels,
            **parts,
        }
        out = io.BytesIO()
        torch.save(payload, out)
        return atomic_write_bytes(path, out.getvalue())

    def __repr__(self) -> str:
        return f"HybridTokenizer(static[:{self.static_levels}] + dynamic[:{self.dynamic_levels}])"


def load_tokenizer(path: str | os.PathLike[str]) -> SIDTokenizer | HybridTokenizer:
    """A :class:`HybridTokenizer` file or a plain ``SIDTokenizer`` file."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not ours: let SIDTokenizer.load give its own error
        return SIDTokenizer.load(path)
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        return SIDTokenizer.load(path)
    toks = {}
    for name in ("static", "dynamic"):
        tmp = path.with_name(f".{path.name}.{name}.load.tmp")
        try:
            tmp.write_bytes(payload[name].numpy().tobytes())
            toks[name] = SIDTokenizer.load(tmp)
        finally:
            tmp.unlink(missing_ok=True)
    return HybridTokenizer(
        toks["static"],
        toks["dynamic"],
        int(payload["static_levels"]),
        int(payload["dynamic_levels"]),
    )
