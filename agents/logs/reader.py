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


def read_log_table(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """The log as one Arrow table (all schema columns, or ``columns``)."""
    names = list(columns) if columns is not None else LOG_SCHEMA.names
    unknown = sorted(set(names) - set(LOG_SCHEMA.names))
    if unknown:
        raise ValueError(f"columns {unknown} are not log columns; allowed: {LOG_SCHEMA.names}")
    tables = []
    for part in log_parts(path):
        try:
            schema = pq.read_schema(part)
        except (pa.ArrowInvalid, OSError) as err:
            raise ValueError(f"{part}: not a readable Parquet file ({err})") from err
        check_schema(schema, str(part))
        tables.append(pq.read_table(part, columns=names))
    if not tables:
        return LOG_SCHEMA.empty_table().select(names)
    return pa.concat_tables(tables)


def read_log(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The log as a DataFrame; vector columns hold one float32 array per row."""
    table = read_log_table(path, columns)
    return table.to_pandas()


def read_log_arrays(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The log as numpy arrays: one 1-D array per scalar column (strings as
    ``str`` arrays) and a 2-D ``(rows, width)`` float32 array per vector column."""
    table = read_log_table(path, columns)
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
