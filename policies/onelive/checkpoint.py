"""Checkpoints of the generator that carry their config.

File = torch.save of a dict {format, version, config (dict), model (state_dict),
optimizer (state_dict or None), extra (dict)}, written atomically (temp file in the
same folder + fsync + os.replace). Loading uses torch.load(weights_only=True), so
`extra` must hold plain Python values and tensors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from liveenv.atomic import atomic_write
from policies.onelive.config import OneLiveConfig
from policies.onelive.model import OneLiveGenerator

FORMAT = "liveenv.onelive.generator"
VERSION = 1


def save_checkpoint(
    path: str | os.PathLike[str],
    model: OneLiveGenerator,
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "extra": dict(extra or {}),
    }
    atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[OneLiveGenerator, dict[str, Any], dict[str, Any] | None]:
    """-> (model in eval mode, extra, optimizer state_dict or None).

    FileNotFoundError if missing; ValueError for a truncated, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, random bytes, disallowed pickle globals, ...
        raise ValueError(
            f"{path} is not a readable OneLive checkpoint (truncated, corrupt or not "
            f"written by save_checkpoint): {type(e).__name__}: {e}"
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a OneLive generator checkpoint (format {found!r})")
    if payload.get("version") != VERSION:
        raise ValueError(
            f"{path}: checkpoint version {payload.get('version')!r}, expected {VERSION}"
        )
    model = OneLiveGenerator(OneLiveConfig.from_dict(payload["config"]))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match the stored config: {e}") from e
    model.to(map_location).eval()
    return model, payload.get("extra") or {}, payload.get("optimizer")
