"""Semantic IDs of live rooms: a behaviour-aligned tower quantised by residual k-means.

``SIDTokenizer.fit(log)`` trains the two towers of :mod:`policies.tokenizer.tower` on
the logged clicks (InfoNCE, clicks weighted by what followed:
:mod:`policies.tokenizer.clicks`), embeds every logged room state and fits
:class:`~policies.tokenizer.rq.ResidualKMeans` on them. Its configuration,
:class:`~policies.tokenizer.config.SIDTokenizerConfig`, is importable from here too.

Modes
-----
``dynamic``: a room's SID comes from its *current* 30-s content embedding (plus the
pooled streamer embedding and the streamer id), so it follows content drift; the SID
of a logged impression is the room's SID at the time (``encode_log``).
``static`` (the ablation): the content input is replaced by the pooled streamer
embedding, in training and in encoding, so every streamer has one SID.

Collisions (two live rooms with the same full SID) are not removed by a 4th token:
:class:`~policies.tokenizer.live_index.LiveSIDIndex` maps a SID to *all* its live
rooms and a decoder serves any of them (``disambiguate`` stays available for a
caller that needs unique codes).

Inference (``embed_rooms``, ``encode``) runs a numpy copy of the room tower
(:class:`~policies.tokenizer.tower.RoomTowerArrays`): the tower is frozen once the
tokenizer is built, and a 30-s refresh of a few hundred rooms then costs a few small
matrix products instead of torch's per-call overhead.

A log is a pandas DataFrame (as ``agents.logs.read_log`` gives), a dict of numpy
arrays (as ``read_log_arrays`` gives) or a log directory / part file path.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policies.checkpoint import load_torch, save_torch
from policies.tokenizer.clicks import FIT_COLUMNS, train_tower
from policies.tokenizer.config import SIDTokenizerConfig
from policies.tokenizer.log_arrays import LogLike, load_log_arrays, room_state_rows
from policies.tokenizer.rq import ResidualKMeans
from policies.tokenizer.tower import RoomTowerArrays, TowerConfig, TwoTower, pool_history

__all__ = ["SIDTokenizer", "SIDTokenizerConfig"]

FORMAT = "liveenv.sid_tokenizer"
VERSION = 1
ENCODE_COLUMNS = ("streamer_id", "content_emb", "pooled_emb")


# --------------------------------------------------------------------------- tokenizer


class SIDTokenizer:
    """A fitted tokenizer: towers + residual k-means codebooks + their config.

    Build with :meth:`fit` or :meth:`load`. ``fit_info`` holds what fitting measured
    (losses per epoch, rows used, seconds).
    """

    def __init__(
        self,
        config: SIDTokenizerConfig,
        tower: TwoTower,
        quantiser: ResidualKMeans,
        fit_info: dict[str, Any] | None = None,
    ) -> None:
        if quantiser.codebook_sizes != config.codebook_sizes:
            raise ValueError(
                f"quantiser codebook_sizes {quantiser.codebook_sizes} != config "
                f"codebook_sizes {config.codebook_sizes}"
            )
        if quantiser.dim != tower.config.embed_dim:
            raise ValueError(
                f"quantiser width {quantiser.dim} != tower embed_dim {tower.config.embed_dim}"
            )
        self.config = config
        self.tower = tower.eval()
        self._room_arrays = tower.room_arrays()  # the tower is frozen from here on
        self.quantiser = quantiser
        self.fit_info: dict[str, Any] = dict(fit_info or {})

    # ---- shape
    @property
    def vocab_sizes(self) -> tuple[int, ...]:
        return self.config.codebook_sizes

    @property
    def n_levels(self) -> int:
        return self.config.n_levels

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def content_dim(self) -> int:
        return self.tower.config.content_dim

    @property
    def user_dim(self) -> int:
        return self.tower.config.user_dim

    @property
    def embed_dim(self) -> int:
        return self.tower.config.embed_dim

    def __repr__(self) -> str:
        return (
            f"SIDTokenizer(mode={self.mode!r}, vocab_sizes={self.vocab_sizes}, "
            f"embed_dim={self.embed_dim}, content_dim={self.content_dim})"
        )

    # ---- fitting
    @classmethod
    def fit(
        cls, log: LogLike, config: SIDTokenizerConfig | None = None, progress: bool = False
    ) -> SIDTokenizer:
        """Train the towers on ``log``'s clicks and fit the codebooks on its room states."""
        config = config if config is not None else SIDTokenizerConfig()
        start = time.perf_counter()
        arrays = load_log_arrays(log, FIT_COLUMNS)
        tower, losses = train_tower(arrays, config, progress)
        info: dict[str, Any] = {
            "losses": losses,
            "n_rows": len(arrays["user_id"]),
            "n_clicks": int(arrays["is_click"].astype(bool).sum()),
        }
        tok = cls._with_quantiser(config, tower, arrays, info)
        tok.fit_info["seconds"] = time.perf_counter() - start
        return tok

    @classmethod
    def _with_quantiser(
        cls,
        config: SIDTokenizerConfig,
        tower: TwoTower,
        arrays: dict[str, np.ndarray],
        info: dict[str, Any],
    ) -> SIDTokenizer:
        rows = room_state_rows(arrays, config.mode)
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))
        if len(rows) > config.max_quantiser_rows:
            rows = np.sort(rng.choice(rows, config.max_quantiser_rows, replace=False))
        emb = _embed(
            tower,
            config.mode,
            arrays["content_emb"][rows],
            arrays["pooled_emb"][rows],
            arrays["streamer_id"][rows],
        )
        try:
            quantiser = ResidualKMeans(config.quantiser_config()).fit(emb)
        except ValueError as e:
            raise ValueError(
                f"cannot fit codebook_sizes={config.codebook_sizes} on {len(rows)} room "
                f"states of the log ({config.mode} mode): {e}"
            ) from e
        info = {**info, "n_room_states": len(rows)}
        return cls(config, tower, quantiser, info)

    def refit_quantiser(self, log: LogLike) -> SIDTokenizer:
        """A new tokenizer with this tower and codebooks refitted on ``log``'s room states
        (e.g. the recent window a tracker keeps). Codes of the two are not comparable."""
        arrays = load_log_arrays(
            log, ("streamer_id", "live_id", "timestamp_ms", "content_emb", "pooled_emb")
        )
        self._check_width("content_emb", arrays["content_emb"])
        return self._with_quantiser(self.config, self.tower, arrays, {"refit": True})

    # ---- encoding
    def _check_width(self, name: str, x: np.ndarray, want: int | None = None) -> np.ndarray:
        want = self.content_dim if want is None else want
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, {want}), got shape {x.shape}")
        if x.shape[1] != want and x.shape[0] > 0:
            raise ValueError(f"{name} has width {x.shape[1]}, the tokenizer was fitted on {want}")
        if x.size and not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf values")
        return x

    def embed_rooms(
        self, content_emb: np.ndarray | None, pooled_emb: np.ndarray, streamer_id: np.ndarray
    ) -> np.ndarray:
        """Aligned unit room embeddings (N, embed_dim) float32; static mode ignores
        ``content_emb`` (may be None)."""
        pooled = self._check_width("pooled_emb", pooled_emb)
        if self.mode == "dynamic":
            if content_emb is None:
                raise ValueError("content_emb is required in dynamic mode")
            content = self._check_width("content_emb", content_emb)
        else:
            content = pooled
        sid = np.asarray(streamer_id).reshape(-1)
        if len(sid) != len(pooled) or len(content) != len(pooled):
            raise ValueError(
                f"got {len(content)} content_emb, {len(pooled)} pooled_emb and "
                f"{len(sid)} streamer_id rows; they must match"
            )
        if sid.size and not np.issubdtype(sid.dtype, np.integer):
            raise ValueError(f"streamer_id must be integers, got dtype {sid.dtype}")
        return _embed(self._room_arrays, self.mode, content, pooled, sid)

    def encode(
        self, content_emb: np.ndarray | None, pooled_emb: np.ndarray, streamer_id: np.ndarray
    ) -> np.ndarray:
        """SIDs (N, n_levels) int64 of rooms given what is observed of them now."""
        emb = self.embed_rooms(content_emb, pooled_emb, streamer_id)
        if len(emb) == 0:
            return np.zeros((0, self.n_levels), dtype=np.int64)
        return self.quantiser.encode(emb)

    def encode_log(self, log: LogLike) -> np.ndarray:
        """(rows, n_levels): the SID of the shown room at the time of each impression."""
        a = load_log_arrays(log, ENCODE_COLUMNS)
        return self.encode(a["content_emb"], a["pooled_emb"], a["streamer_id"])

    def embed_users(
        self,
        user_feat: np.ndarray,
        history_content: np.ndarray | None = None,
        history_mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """User tower (N, embed_dim) float32.

        ``history_content`` is the observation's (N, H, o) clicked-content history
        (with ``history_mask`` (N, H)) or an already pooled (N, o) array; None means no
        history.
        """
        feat = self._check_width("user_feat", user_feat, self.user_dim).astype(np.float32)
        n = len(feat)
        if history_content is None:
            hist, has = np.zeros((n, self.content_dim), np.float32), np.zeros(n, bool)
        elif np.ndim(history_content) == 3:
            hist, has = pool_history(history_content, history_mask)
        else:
            hist = self._check_width("history_content", history_content).astype(np.float32)
            has = (
                np.ones(n, bool)
                if history_mask is None
                else np.asarray(history_mask, bool).reshape(-1)
            )
        if len(hist) != n:
            raise ValueError(f"got {n} user_feat rows but {len(hist)} history rows")
        with torch.no_grad():
            out = self.tower.users(
                torch.from_numpy(feat), torch.from_numpy(hist), torch.from_numpy(has)
            )
        return out.numpy()

    # ---- persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one file (torch.save of plain values and tensors), atomically."""
        payload = {
            "config": self.config.to_dict(),
            "tower_config": self.tower.config.to_dict(),
            "tower": self.tower.state_dict(),
            "codebooks": [torch.from_numpy(np.array(cb)) for cb in self.quantiser.codebooks],
            "fit_info": _plain(self.fit_info),
        }
        return save_torch(path, FORMAT, VERSION, payload)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SIDTokenizer:
        """Inverse of :meth:`save`; FileNotFoundError if missing, ValueError if corrupt."""
        p = load_torch(path, FORMAT, VERSION, "SID tokenizer file")
        try:
            config = SIDTokenizerConfig.from_dict(p["config"])
            tower = TwoTower(TowerConfig.from_dict(p["tower_config"]))
            tower.load_state_dict(p["tower"])
            cbs = [cb.numpy() for cb in p["codebooks"]]
            quantiser = ResidualKMeans.from_codebooks(cbs, config.quantiser_config())
            return cls(config, tower, quantiser, p.get("fit_info"))
        except (KeyError, TypeError, RuntimeError, ValueError) as e:
            raise ValueError(f"{path}: inconsistent SID tokenizer file: {e}") from e


def _plain(x: Any) -> Any:
    """fit_info as plain Python values (torch.load(weights_only=True) safe)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return x.item()
    return x


# --------------------------------------------------------------------------- internals


def _embed(
    tower: TwoTower | RoomTowerArrays,
    mode: str,
    content: np.ndarray,
    pooled: np.ndarray,
    streamer_id: np.ndarray,
    chunk: int = 65_536,
) -> np.ndarray:
    """Room embeddings in chunks; static mode feeds the pooled embedding as content."""
    arrays = tower if isinstance(tower, RoomTowerArrays) else tower.room_arrays()
    n = len(pooled)
    out = np.empty((n, arrays.w2.shape[1]), dtype=np.float32)
    src = pooled if mode == "static" else content
    for i in range(0, n, chunk):
        out[i : i + chunk] = arrays(
            np.asarray(src[i : i + chunk], dtype=np.float32),
            np.asarray(pooled[i : i + chunk], dtype=np.float32),
            np.asarray(streamer_id[i : i + chunk]),
        )
    return out
