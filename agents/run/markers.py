"""Stage markers of a run directory: what a finished stage was made from
(its fingerprint) and what it wrote (each output's size and checksum), as
:class:`StageRecord`, stored as ``stages/<name>.json`` (see :mod:`agents.run.rundir`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "FORMAT",
    "VERSION",
    "RunDirError",
    "StageRecord",
    "check_relative",
    "file_digest",
    "fingerprint_of",
]

FORMAT = "liveenv.run"
VERSION = 1
_HASH_LIMIT = 256 << 20  # checksum outputs up to this size (bytes); larger: size only


class RunDirError(ValueError):
    """A run directory, a stage marker or a command's input that cannot be used."""


def fingerprint_of(value: Any) -> str:
    """A short stable hash of a JSON-ready value (its canonical JSON)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


def file_digest(path: Path) -> str | None:
    if path.stat().st_size > _HASH_LIMIT:
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class StageRecord:
    """The done-marker of a finished stage."""

    name: str
    fingerprint: str
    outputs: dict[str, dict[str, Any]]  # relative path -> {"bytes": n, "sha256": hex | None}
    summary: dict[str, Any]
    started: float
    finished: float
    upstream: dict[str, str] = field(default_factory=dict)  # stage -> its fingerprint used

    @property
    def wall_s(self) -> float:
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT + ".stage",
            "version": VERSION,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "outputs": self.outputs,
            "summary": self.summary,
            "started": self.started,
            "finished": self.finished,
            "upstream": self.upstream,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> StageRecord:
        if data.get("format") != FORMAT + ".stage" or data.get("version") != VERSION:
            raise RunDirError(f"{source} is not a liveenv stage marker (version {VERSION})")
        try:
            record = cls(
                name=str(data["name"]),
                fingerprint=str(data["fingerprint"]),
                outputs=dict(data["outputs"]),
                summary=dict(data["summary"]),
                started=float(data["started"]),
                finished=float(data["finished"]),
                upstream={str(k): str(v) for k, v in dict(data.get("upstream") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise RunDirError(f"{source}: stage marker is incomplete ({e})") from e
        for rel in record.outputs:
            check_relative(rel, source)
        return record


def check_relative(rel: str, source: str) -> None:
    """Refuse a marker path that is absolute or leaves the run directory."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        raise RunDirError(
            f"{source} names {rel!r}, a path outside the run directory; "
            f"a stage marker may only name files inside it (delete the marker to redo the stage)"
        )
