"""Read an interaction log back for training and analysis.

``path`` is a log directory (its complete ``part-NNNNN.parquet`` files are read
in order; hidden temp files left by a killed run are ignored) or one part file.
Every part is checked against :data:`agents.logs.schema.LOG_SCHEMA`: a missing
or wrongly typed column raises ``ValueError`` naming the column and the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agents.logs.parts import existing_parts
from agents.logs.schema import LOG_SCHEMA, VECTOR_COLUMNS, check_schema
from liveenv.config import EnvConfig


def log_parts(path: str | os.PathLike[str]) -> list[Path]:
    """The complete part files of a log directory (or ``[path]`` for a file)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such log directory or file")
    return existing_parts(path)


#: Which rows a reader returns: the day's impressions (the default), the past's
#: events (:mod:`agents.logs.past_rows`, negative ``request_id``) or both, in file order.
ROW_KINDS = ("impressions", "past", "all")


def read_log_table(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    rows: str = "impressions",
) -> pa.Table:
    """The log as one Arrow table (all schema columns, or ``columns``) of ``rows``
    (one of :data:`ROW_KINDS`)."""
    names = list(columns) if columns is not None else LOG_SCHEMA.names
    unknown = sorted(set(names) - set(LOG_SCHEMA.names))
    if unknown:
        raise ValueError(f"columns {unknown} are not log columns; allowed: {LOG_SCHEMA.names}")
    if rows not in ROW_KINDS:
        raise ValueError(f"rows={rows!r} is invalid: must be one of {list(ROW_KINDS)}")
    read = names if "request_id" in names else [*names, "request_id"]
    tables = []
    for part in log_parts(path):
        try:
            schema = pq.read_schema(part)
        except (pa.ArrowInvalid, OSError) as err:
            raise ValueError(f"{part}: not a readable Parquet file ({err})") from err
        check_schema(schema, str(part))
        tables.append(_kind(pq.read_table(part, columns=read), rows).select(names))
    if not tables:
        return LOG_SCHEMA.empty_table().select(names)
    return pa.concat_tables(tables)


def _kind(table: pa.Table, rows: str) -> pa.Table:
    if rows == "all":
        return table
    past = pc.less(table.column("request_id"), 0)
    return table.filter(past if rows == "past" else pc.invert(past))


def read_log(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None, rows: str = "impressions"
) -> pd.DataFrame:
    """The log as a DataFrame; vector columns hold one float32 array per row."""
    table = read_log_table(path, columns, rows)
    return table.to_pandas()


def read_log_arrays(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None, rows: str = "impressions"
) -> dict[str, np.ndarray]:
    """The log as numpy arrays: one 1-D array per scalar column (strings as
    ``str`` arrays) and a 2-D ``(rows, width)`` float32 array per vector column."""
    table = read_log_table(path, columns, rows)
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if name in VECTOR_COLUMNS:
            out[name] = _stack(col, name)
        elif pa.types.is_string(col.type):
            enc = col.dictionary_encode()
            out[name] = np.asarray(enc.dictionary.to_pylist(), dtype=str)[enc.indices.to_numpy()]
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


def _stack(col: pa.ListArray, name: str) -> np.ndarray:
    n = len(col)
    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    lengths = np.diff(col.offsets.to_numpy())
    if np.any(lengths != lengths[0]):
        raise ValueError(f"column {name!r}: rows hold vectors of different lengths")
    return values.reshape(n, int(lengths[0]))


def log_config(path: str | os.PathLike[str]) -> EnvConfig:
    """The environment config a log was recorded with (its Parquet metadata)."""
    parts = log_parts(path)
    if not parts:
        raise FileNotFoundError(f"{path}: no log parts (part-*.parquet)")
    meta = pq.read_schema(parts[0]).metadata or {}
    if b"liveenv.config" not in meta:
        raise ValueError(f"{path}: the log carries no liveenv.config metadata")
    return EnvConfig.from_dict(json.loads(meta[b"liveenv.config"]))


def read_log_and_past(
    path: str | os.PathLike[str], columns: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(impressions, past)``: :func:`read_log_arrays` of both kinds of rows, read once."""
    names = list(columns) if "request_id" in columns else [*columns, "request_id"]
    every = read_log_arrays(path, names, rows="all")
    past = every["request_id"] < 0
    keep = [c for c in names if c in columns]
    return {c: every[c][~past] for c in keep}, {c: every[c][past] for c in keep}


def with_past(
    log: dict[str, np.ndarray], past: dict[str, np.ndarray] | None
) -> tuple[dict[str, np.ndarray], int]:
    """``(arrays, n_past)``: the past's events (``read_log_arrays(..., rows="past")``)
    followed by ``log``'s rows, for rebuilding histories; row ``i`` of ``log`` is row
    ``n_past + i`` of the result. ``past=None`` or empty: ``(log, 0)``."""
    n = len(next(iter(past.values()))) if past else 0
    if n == 0:
        return log, 0
    missing = sorted(set(log) - set(past))
    if missing:
        raise ValueError(f"the past lacks the log's columns {missing}")
    return {k: np.concatenate([past[k], v]) for k, v in log.items()}, n
