"""One way to save and load a versioned checkpoint.

Every model file of the workbench is a dict with a ``format`` (what it holds),
a ``version`` (of that format), the model's ``config`` (a dict, see
:mod:`liveenv.serialize`) and its arrays, written atomically. Torch models are
stored with :func:`save_torch` and read back with :func:`load_torch`
(``torch.load(weights_only=True)``, so the payload holds plain Python values and
tensors only); the numpy policy files of :mod:`policies.base` check the same
header with :func:`check_header`. A missing file raises ``FileNotFoundError``;
a truncated, corrupt, foreign or other-version file raises ``ValueError`` naming
the path and what was expected.

A path a checkpoint names (a generator's ``extra["tokenizer"]``) is relative to
the checkpoint's own folder when it is not absolute, so a folder of checkpoints
(a run directory) can be moved or copied whole; :func:`named_path` reads one back.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liveenv.atomic import atomic_write_bytes

__all__ = ["check_header", "load_torch", "named_path", "save_torch"]


def save_torch(
    path: str | os.PathLike[str], fmt: str, version: int, payload: Mapping[str, Any]
) -> Path:
    """Write ``{"format": fmt, "version": version, **payload}`` with ``torch.save``."""
    import torch

    buf = io.BytesIO()
    torch.save({"format": fmt, "version": version, **payload}, buf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, buf.getvalue())


def load_torch(
    path: str | os.PathLike[str], fmt: str, version: int, what: str, map_location: Any = "cpu"
) -> dict[str, Any]:
    """The payload :func:`save_torch` wrote, after checking its format and version."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, random bytes, disallowed pickle globals, ...
        raise ValueError(
            f"{path} is not a readable {what} (truncated, corrupt or not written by "
            f"this library): {type(e).__name__}: {e}"
        ) from e
    check_header(payload, path, fmt, version, what)
    return payload


def check_header(
    meta: Any, path: str | os.PathLike[str], fmt: str, version: int, what: str
) -> None:
    """Refuse ``meta`` unless it is a dict of format ``fmt`` and version ``version``."""
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path} is not a {what} (format {found!r}, expected {fmt!r})")
    if meta.get("version") != version:
        raise ValueError(f"{path}: {what} version {meta.get('version')!r}, expected {version}")


def named_path(checkpoint: str | os.PathLike[str], value: str | os.PathLike[str]) -> Path:
    """The file a checkpoint names with ``value``: a relative ``value`` is relative to
    the checkpoint's folder; an absolute one that is gone falls back to the file of
    that name beside the checkpoint (a run directory moved before its checkpoints
    named their inputs relatively)."""
    here = Path(checkpoint).parent
    path = Path(value)
    if not path.is_absolute():
        return here / path
    beside = here / path.name
    return beside if not path.exists() and beside.exists() else path
