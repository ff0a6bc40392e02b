"""The retrieval test of :mod:`experiments.sid_experiments`: scoring rooms by their SID
at the time, per variant (dynamic, plain, static, frozen).

A :class:`ModeRun` holds one variant's tracker, the users' SID histories (seeded
from the training log by :func:`seed_histories`) and its held-out scores. Two
SID-level scores of a (user, room) pair: ``code`` (the user tower's embedding dotted
with the SID's codebook reconstruction) and ``history`` (:func:`prefix_depth`: the
leading SID tokens the room shares with the user's past clicks).
:func:`score_request` scores one held-out request (:func:`expected_recall` of a
clicked room among the live rooms); :func:`mode_results` gives a variant's AUCs,
recalls and tracker diagnostics; :func:`paired_bootstrap` the 95 % intervals of one
variant minus another.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from policies.tokenizer import (
    LiveSIDTracker,
    SIDTokenizer,
    codebook_utilisation,
    reconstruction_error,
)
from policies.tokenizer.tower import hash_streamers

if TYPE_CHECKING:
    from experiments.sid_experiments import SIDExperimentArgs

__all__ = [
    "ModeRun",
    "expected_recall",
    "mode_results",
    "paired_bootstrap",
    "prefix_depth",
    "score_request",
    "seed_histories",
]


def prefix_depth(table: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """(n, L) SIDs vs (h, L) history SIDs -> (n,) sum over history of shared leading tokens."""
    if len(hist) == 0:
        return np.zeros(len(table))
    eq = table[:, None, :] == hist[None, :, :]  # (n, h, L)
    return np.cumprod(eq, axis=2).sum(axis=(1, 2)).astype(np.float64)


def expected_recall(scores: np.ndarray, target: int, k: int) -> float:
    """P(target in the top ``k`` of ``scores``) with ties broken uniformly at random."""
    s = scores[target]
    above, tied = int(np.sum(scores > s)), int(np.sum(scores == s))
    return float(np.clip((k - above) / tied, 0.0, 1.0))


@dataclass
class ModeRun:
    """One mode's tracker, users' SID histories and held-out results."""

    tok: SIDTokenizer
    tracker: LiveSIDTracker
    history: dict[int, deque] = field(default_factory=dict)
    hist_score: list[float] = field(default_factory=list)
    recall_code: list[float] = field(default_factory=list)
    recall_history: list[float] = field(default_factory=list)
    update_s: float = 0.0
    code_score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shown: list[np.ndarray] = field(default_factory=list)  # SID of each shown room, at the time

    def user_history(self, user: int) -> np.ndarray:
        h = self.history.get(user)
        return (
            np.array(h, dtype=np.int64).reshape(-1, self.tok.n_levels)
            if h
            else np.zeros((0, self.tok.n_levels), np.int64)
        )

    def remember(self, user: int, sid: np.ndarray, maxlen: int) -> None:
        self.history.setdefault(user, deque(maxlen=maxlen)).append(tuple(sid.tolist()))


def seed_histories(run: ModeRun, train: dict[str, np.ndarray], maxlen: int) -> None:
    """Users' clicked SIDs at the time, from the training log (oldest first); a frozen
    tracker's SID of a room is that of its first logged state."""
    rows = np.arange(len(train["user_id"]))
    if run.tracker.hysteresis == np.inf:
        _, first, inv = np.unique(train["live_id"], return_index=True, return_inverse=True)
        rows = first[inv.reshape(-1)]
    click = np.flatnonzero(train["is_click"].astype(bool))
    src = rows[click]
    codes = run.tok.encode(
        train["content_emb"][src], train["pooled_emb"][src], train["streamer_id"][src]
    )
    order = np.argsort(train["timestamp_ms"][click], kind="stable")
    for user, sid in zip(train["user_id"][click][order].tolist(), codes[order], strict=True):
        run.remember(user, sid, maxlen)


def score_request(
    run: ModeRun,
    obs: dict,
    user: int,
    slot: int,
    clicked: bool,
    hist: np.ndarray,
    has: np.ndarray,
    args: SIDExperimentArgs,
) -> None:
    """History score of the shown room; recall of a clicked room among the live rooms."""
    table = run.tracker.sids  # (n_live, L): the SIDs of the table rooms now
    past = run.user_history(user)
    run.hist_score.append(float(prefix_depth(table[slot : slot + 1], past)[0]))
    run.shown.append(table[slot])
    if not clicked:
        return
    run.recall_history.append(expected_recall(prefix_depth(table, past), slot, args.k))
    e_u = run.tok.embed_users(obs["user"][None], hist, has)[0]
    code_scores = run.tok.quantiser.decode(table) @ e_u
    run.recall_code.append(expected_recall(code_scores, slot, args.k))
    run.remember(user, table[slot], args.history_len)


def mode_results(run: ModeRun, imp: dict[str, np.ndarray]) -> dict[str, Any]:
    tok, click = run.tok, imp["click"].astype(bool)
    emb = tok.embed_rooms(imp["content"], imp["pooled"], imp["streamer"])
    recon = tok.quantiser.decode(np.asarray(run.shown))  # the SID at the time, decoded
    e_u = tok.embed_users(imp["user"], imp["hist"], imp["has"])
    run.code_score = np.sum(e_u * recon, axis=1)
    scores = {
        "code": run.code_score,
        "history": np.asarray(run.hist_score),
        "tower_unquantised": np.sum(e_u * emb, axis=1),
    }
    auc = {name: _auc(click, s) for name, s in scores.items()}
    auc_long = {name: _auc(imp["long_view"].astype(bool), s) for name, s in scores.items()}
    churn = run.tracker.churn()
    h = run.tracker.history()
    level1 = LiveSIDTracker.churn_of(h["keys"], h["version"], h["sids"][:, :1], h["time_s"])
    with torch.no_grad():
        gate = tok.tower.gate_values(
            torch.from_numpy(
                np.asarray(
                    imp["pooled"] if tok.mode == "static" else imp["content"], dtype=np.float32
                )
            ),
            torch.from_numpy(np.asarray(imp["pooled"], dtype=np.float32)),
            hash_streamers(imp["streamer"], tok.tower.config.n_streamer_buckets),
        )
    return {
        "auc": auc,
        "auc_long_view": auc_long,
        "recall_code": float(np.mean(run.recall_code)) if run.recall_code else float("nan"),
        "recall_history": float(np.mean(run.recall_history))
        if run.recall_history
        else float("nan"),
        "n_clicks": len(run.recall_code),
        "churn_mean_distinct": churn["mean_distinct"],
        "churn_median_distinct": churn["median_distinct"],
        "churn_level1_mean_distinct": level1["mean_distinct"],
        "changes_per_room_hour": churn.get("changes_per_hour", float("nan")),
        "hysteresis": run.tracker.hysteresis,
        "n_rooms_tracked": churn["n_rooms"],
        "collision_rate": float(run.tracker.collision_rates().mean()),
        "utilisation": codebook_utilisation(h["sids"], tok.vocab_sizes),
        "reconstruction_error": reconstruction_error(emb, recon),
        "mean_id_gate": float(gate.mean()),
        "tracker_ms_per_update": 1000.0 * run.update_s / max(run.tracker.n_updates - 1, 1),
        "fit_seconds": tok.fit_info.get("seconds", float("nan")),
        "tower_losses": tok.fit_info.get("losses", []),
    }


def _auc(label: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(label, score)) if 0 < label.sum() < len(label) else float("nan")


def paired_bootstrap(
    a: ModeRun, b: ModeRun, click: np.ndarray, n_boot: int, seed: int
) -> dict[str, list[float]]:
    """95 % intervals of ``a`` minus ``b``: AUC of the code score (resampling
    impressions) and recall@K of the code score (resampling clicks), paired."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    r_a, r_b = np.asarray(a.recall_code), np.asarray(b.recall_code)
    d_auc, d_rec = [], []
    for _ in range(n_boot):
        i = rng.integers(0, len(click), len(click))
        d_auc.append(_auc(click[i], a.code_score[i]) - _auc(click[i], b.code_score[i]))
        j = rng.integers(0, len(r_a), len(r_a))
        d_rec.append(float(r_a[j].mean() - r_b[j].mean()))
    q = [2.5, 97.5]
    return {
        "auc_code": np.percentile(d_auc, q).tolist(),
        "recall_code": np.percentile(d_rec, q).tolist(),
    }
