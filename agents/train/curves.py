"""Training curves: one tidy CSV (written atomically) and a figure of chosen columns."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from liveenv.atomic import atomic_write


def write_curves(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write training-curve rows (one dict per logged step) as CSV, atomically."""
    frame = pd.DataFrame(list(rows))
    return atomic_write(path, lambda fh: frame.to_csv(fh, index=False, encoding="utf-8"))


def plot_curves(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    columns: Sequence[str],
    x: str = "step",
) -> Path | None:
    """One small panel per column of the curve rows, written as PNG (Agg)."""
    from matplotlib.figure import Figure

    frame = pd.DataFrame(list(rows))
    cols = [c for c in columns if c in frame]
    if frame.empty or not cols:
        return None
    fig = Figure(figsize=(3.2 * len(cols), 2.6))
    for i, col in enumerate(cols):
        ax = fig.add_subplot(1, len(cols), i + 1)
        ax.plot(frame[x], frame[col], lw=1.2)
        ax.set_title(col, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.18, top=0.88, wspace=0.4)
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
