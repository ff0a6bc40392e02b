"""Offline ranking metrics on held-out logs: HR@K and MRR@K.

Two targets: ``click`` (the logged slot was clicked) and ``long_view`` (the
logged slot was watched for at least ``long_view_s`` seconds). A log row is a
target row when its outcome is positive; its target is the logged slot, and
the model's ``scores`` row says where that slot ranks among the candidates of
the same request (ties by slot index; see :mod:`agents.evaluate.metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from agents.evaluate.metrics import hr_at_k, mrr_at_k

#: Default "long view" threshold in seconds of watch time.
LONG_VIEW_S = 60.0


def _watch_seconds(log_df: pd.DataFrame, watch_col: str | None) -> np.ndarray:
    if watch_col is not None:
        col = watch_col
    elif "watch_ms" in log_df:
        col = "watch_ms"
    elif "watch_s" in log_df:
        col = "watch_s"
    else:
        raise KeyError(
            f"log_df needs a watch-time column ('watch_ms' or 'watch_s', or pass watch_col=); "
            f"columns: {list(log_df.columns)}"
        )
    values = log_df[col].to_numpy(dtype=np.float64)
    return values / 1000.0 if col.endswith("_ms") else values


def offline_metrics(
    scores: np.ndarray,
    log_df: pd.DataFrame,
    k: Sequence[int] = (1, 10, 50),
    long_view_s: float = LONG_VIEW_S,
    slot_col: str = "slot",
    click_col: str = "click",
    watch_col: str | None = None,
) -> pd.DataFrame:
    """HR@K and MRR@K of ``scores`` for the click and long-view targets.

    ``scores``: ``(N, R)``, row ``i`` scores the candidate slots of the request
    logged in row ``i`` of ``log_df`` (``-inf`` for empty slots).
    ``log_df``: ``N`` rows with the logged slot (``slot_col``), the click flag
    (``click_col``) and the watch time (``watch_col``; by default ``watch_ms``
    in milliseconds, else ``watch_s`` in seconds; a name ending in ``_ms`` is
    read as milliseconds).

    Returns a tidy frame: one row per target x K with columns ``target``,
    ``k``, ``n_targets``, ``hr``, ``mrr`` (NaN when a target has no rows).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != len(log_df):
        raise ValueError(f"scores {s.shape} must be (N, R) with N = len(log_df) = {len(log_df)}")
    if long_view_s < 0:
        raise ValueError(f"long_view_s={long_view_s!r} is invalid: must be >= 0")
    slots = log_df[slot_col].to_numpy(dtype=np.int64)
    clicked = log_df[click_col].to_numpy(dtype=np.float64) > 0
    watch_s = _watch_seconds(log_df, watch_col)
    targets = {"click": clicked, "long_view": clicked & (watch_s >= long_view_s)}
    rows = []
    for name, sel in targets.items():
        for kk in k:
            rows.append(
                {
                    "target": name,
                    "k": int(kk),
                    "n_targets": int(sel.sum()),
                    "hr": hr_at_k(s[sel], slots[sel], kk),
                    "mrr": mrr_at_k(s[sel], slots[sel], kk),
                }
            )
    return pd.DataFrame(rows)
