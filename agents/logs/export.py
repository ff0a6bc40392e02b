"""Export a log in KuaiLive's layout: one CSV table per behaviour, KuaiLive's columns.

KuaiLive (arXiv 2508.05633; field descriptions at
https://imgkkk574.github.io/KuaiLive/detailed_statistics.html) publishes one file
per behaviour, each keyed by user, live room, streamer and a millisecond
timestamp:

* ``click.csv``: ``user_id, live_id, streamer_id, timestamp, watch_live_time``
  (our rows with ``is_click``);
* ``like.csv``, ``comment.csv``: ``user_id, live_id, streamer_id, timestamp``
  (rows with ``like``, with ``comment``);
* ``gift.csv``: ``user_id, live_id, streamer_id, timestamp, gift_price``
  (rows with ``gift_price > 0``);
* ``negative.csv``: ``user_id, live_id, streamer_id, timestamp`` (rows without a click).

``timestamp`` is our ``timestamp_ms`` (ms since the simulated world's epoch, not
Unix time), ``watch_live_time`` our ``watch_time_ms``; every column is int64 as in
KuaiLive, except ``gift_price``, which stays a float when the log holds prices
that are not whole numbers (KuaiLive's are integers). The side tables
(``user.csv``, ``streamer.csv``, ``room.csv``) are not written: the log holds no
room start and end times, and its observed features are not KuaiLive's fields.
``docs/LOG_SCHEMA.md`` lists the other differences (one timestamp per request;
``negative`` holds every unclicked exposure, not a sample).

    python -m agents.logs.export LOG_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from agents.logs.reader import read_log
from liveenv.atomic import atomic_write_bytes

__all__ = ["KUAILIVE_COLUMNS", "KUAILIVE_TABLES", "ExportArgs", "kuailive_tables", "write_kuailive"]


@dataclass
class ExportArgs:
    """Export a run's log: KuaiLive's tables (--kuailive) and/or a Minari dataset of
    episodes simulated in the log's world under its behaviour policy (--minari),
    under the run's exports/."""

    kuailive: bool = field(
        default=False,
        metadata={"help": "write exports/kuailive/{click,like,comment,gift,negative}.csv"},
    )
    minari: bool = field(
        default=False,
        metadata={"help": "write a Minari dataset under exports/minari (needs minari)"},
    )
    log: str = field(default="", metadata={"help": "log directory (empty: the run's logs/train)"})
    episodes: int = field(default=2, metadata={"help": "Minari: episodes to simulate"})
    hours: float = field(default=0.5, metadata={"help": "Minari: simulated hours per episode"})
    seed: int = field(default=0, metadata={"help": "Minari: seed of the first episode (+1 each)"})
    policy: str = field(
        default="", metadata={"help": "Minari: behaviour policy (empty: the log's own)"}
    )
    dataset_id: str = field(
        default="", metadata={"help": "Minari: dataset id (empty: liveenv/<preset>/<policy>-v0)"}
    )
    minari_format: Literal["parquet", "arrow"] = field(
        default="parquet",
        metadata={"help": "Minari: storage format (parquet: compressed; arrow: uncompressed)"},
    )

    def __post_init__(self) -> None:
        if not (self.kuailive or self.minari):
            raise ValueError("nothing to export: give --kuailive and/or --minari")
        if self.episodes < 1 or not self.hours > 0:
            raise ValueError(f"episodes={self.episodes} must be >= 1 and hours={self.hours} > 0")


#: KuaiLive's columns of the tables written, and our column each one comes from.
KUAILIVE_COLUMNS: dict[str, str] = {
    "user_id": "user_id",
    "live_id": "live_id",
    "streamer_id": "streamer_id",
    "timestamp": "timestamp_ms",
    "watch_live_time": "watch_time_ms",
    "gift_price": "gift_price",
}
_KEYS = ("user_id", "live_id", "streamer_id", "timestamp")
#: table -> its columns, in KuaiLive's order
KUAILIVE_TABLES: dict[str, tuple[str, ...]] = {
    "click": (*_KEYS, "watch_live_time"),
    "like": _KEYS,
    "comment": _KEYS,
    "gift": (*_KEYS, "gift_price"),
    "negative": _KEYS,
}
_LOG_COLUMNS = [*KUAILIVE_COLUMNS.values(), "is_click", "like", "comment"]


def kuailive_tables(log: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """The tables of :data:`KUAILIVE_TABLES` from the log at ``log`` (rows in log order)."""
    frame = read_log(log, _LOG_COLUMNS)
    rows = {
        "click": frame["is_click"].to_numpy(bool),
        "like": frame["like"].to_numpy(bool),
        "comment": frame["comment"].to_numpy(bool),
        "gift": frame["gift_price"].to_numpy() > 0,
        "negative": ~frame["is_click"].to_numpy(bool),
    }
    price = frame["gift_price"].to_numpy(np.float64)
    whole = bool(np.all(price == np.round(price)))
    out = {}
    for table, columns in KUAILIVE_TABLES.items():
        part = frame.loc[rows[table], [KUAILIVE_COLUMNS[c] for c in columns]]
        part.columns = list(columns)
        for col in columns:
            if col == "gift_price":
                part[col] = part[col].astype(np.int64 if whole else np.float64)
            else:
                part[col] = part[col].astype(np.int64)
        out[table] = part.reset_index(drop=True)
    return out


def write_kuailive(log: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, int]:
    """Write ``<table>.csv`` of every KuaiLive table into ``out_dir`` (each atomically);
    return the rows of each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for table, frame in kuailive_tables(log).items():
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        atomic_write_bytes(out / f"{table}.csv", buf.getvalue().encode())
        counts[table] = len(frame)
    return counts


def main(argv: Sequence[str] | None = None) -> dict[str, int]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", help="log directory (Parquet parts)")
    ap.add_argument("out", help="folder to write click.csv, like.csv, ... into")
    args = ap.parse_args(argv)
    counts = write_kuailive(args.log, args.out)
    for table, n in counts.items():
        print(f"{table}.csv: {n} rows")
    return counts


if __name__ == "__main__":
    main()
