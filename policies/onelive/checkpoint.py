"""Checkpoints of the generator that carry their config.

File = :func:`policies.checkpoint.save_torch` of {config (dict), model (state_dict),
optimizer (state_dict or None), extra (dict)}: versioned, atomic, and read back with
``torch.load(weights_only=True)``, so `extra` must hold plain Python values and tensors.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from policies.checkpoint import load_torch, named_path, save_torch
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
    payload = {
        "config": model.config.to_dict(),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "extra": dict(extra or {}),
    }
    save_torch(path, FORMAT, VERSION, payload)


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[OneLiveGenerator, dict[str, Any], dict[str, Any] | None]:
    """-> (model in eval mode, extra, optimizer state_dict or None).

    FileNotFoundError if missing; ValueError for a truncated, corrupt or foreign file."""
    payload = load_torch(path, FORMAT, VERSION, "OneLive generator checkpoint", map_location)
    model = OneLiveGenerator(OneLiveConfig.from_dict(payload["config"]))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match the stored config: {e}") from e
    model.to(map_location).eval()
    return model, payload.get("extra") or {}, payload.get("optimizer")


def tokenizer_of(checkpoint: str | os.PathLike[str], extra: dict[str, Any]) -> str:
    """The absolute path of the tokenizer the generator checkpoint names in ``extra``
    (``""`` when it names none): what a checkpoint made from it names in turn."""
    named = extra.get("tokenizer")
    return str(named_path(checkpoint, named).absolute()) if named else ""
