"""The part files of a log directory: ``part-00000.parquet``, ``part-00001.parquet``, ...

Each part is one Arrow table in :data:`agents.logs.schema.LOG_SCHEMA` order with the
env's config in its metadata (:func:`arrow_table`), written to a hidden temporary name
in the same directory, synced, then renamed (:func:`write_table_atomic`): a run killed
at any moment leaves only complete parts, which :func:`existing_parts` lists in order
(the reader and both recorders use it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from agents.logs.schema import LOG_SCHEMA, LOG_VERSION
from liveenv.atomic import atomic_write

__all__ = [
    "PART_RE",
    "PartWriter",
    "arrow_table",
    "existing_parts",
    "first_part",
    "part_name",
    "write_table_atomic",
]

PART_RE = re.compile(r"^part-(\d{5,})\.parquet$")


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def existing_parts(out_dir: Path) -> list[Path]:
    """Complete part files of ``out_dir`` in index order (temp files excluded)."""
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if (m := PART_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def first_part(out_dir: Path, append: bool) -> int:
    """Index of the next part of ``out_dir`` (refuses a directory with parts unless ``append``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = existing_parts(out_dir)
    if parts and not append:
        raise FileExistsError(
            f"{out_dir} already holds {len(parts)} log part(s); pass append=True "
            "to add to it or choose an empty directory"
        )
    return int(PART_RE.match(parts[-1].name).group(1)) + 1 if parts else 0


def arrow_table(cols: dict[str, np.ndarray], config: Any) -> pa.Table:
    """One Arrow table in :data:`LOG_SCHEMA` order, the env's config in its metadata."""
    arrays = []
    for field in LOG_SCHEMA:
        values = cols[field.name]
        if pa.types.is_list(field.type):
            arrays.append(_list_array(values))
        else:
            arrays.append(pa.array(values, type=field.type))
    meta = dict(LOG_SCHEMA.metadata)
    meta[b"liveenv.config"] = json.dumps(config.to_dict()).encode()
    meta[b"liveenv.log_version"] = LOG_VERSION.encode()
    return pa.Table.from_arrays(arrays, schema=LOG_SCHEMA.with_metadata(meta))


def _list_array(values: np.ndarray) -> pa.Array:
    n, d = values.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), type=pa.float32()))


def write_table_atomic(table: pa.Table, path: Path, compression: str = "zstd") -> None:
    """Write ``table`` to a hidden temp file beside ``path``, sync it, rename it."""
    atomic_write(path, lambda fh: pq.write_table(table, fh, compression=compression))


class PartWriter:
    """The numbered parts of one log directory, each written atomically.

    ``append=False`` refuses a directory that already holds parts (:func:`first_part`).
    """

    def __init__(self, out_dir: Path, append: bool, compression: str = "zstd") -> None:
        self.out_dir, self.compression = Path(out_dir), compression
        self.next_part = first_part(self.out_dir, append)
        self.parts_written: list[Path] = []

    def write(self, cols: dict[str, np.ndarray], config: Any) -> Path:
        """Write ``cols`` (one array per schema column) as the next part; return its path."""
        path = self.out_dir / part_name(self.next_part)
        write_table_atomic(arrow_table(cols, config), path, self.compression)
        self.next_part += 1
        self.parts_written.append(path)
        return path
