"""Reward weights as a user writes them.

Reward weights are read in one way everywhere (``--weights`` of every command):

* ``click=1,watch_time=0.05,gift=0.01``: named weights; unnamed objectives keep
  their default (:data:`liveenv.objectives.DEFAULT_WEIGHTS`);
* ``0.5,0.1,1,1,3,0.02``: exactly six numbers in :data:`OBJECTIVES` order;
* a path to a ``.json`` / ``.yaml`` / ``.yml`` file holding either form (a
  mapping, or a list of six numbers), optionally under a ``reward_weights`` key;
* empty or ``None``: the defaults.

Validation is :func:`liveenv.objectives.as_weight_vector`'s: unknown names, a
wrong length or a non-finite value raise ``ValueError`` naming the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from liveenv.objectives import OBJECTIVES, WeightsLike, as_weight_vector, weights_dict

_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def parse_weights(spec: str | WeightsLike | None, field: str = "--weights") -> np.ndarray:
    """The float64 weight vector of ``spec`` (see the module doc for the forms)."""
    if spec is None or (isinstance(spec, str) and spec.strip() in ("", "none", "None")):
        return as_weight_vector(None, field)
    if not isinstance(spec, str):
        return as_weight_vector(spec, field)
    text = spec.strip()
    if text.endswith(_FILE_SUFFIXES) or os.path.isfile(text):
        return as_weight_vector(_read_weights_file(Path(text), field), field)
    if "=" in text:
        out: dict[str, float] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{field}: {item!r} is not NAME=VALUE (names: {list(OBJECTIVES)})")
            out[name.strip()] = _number(value, field, name.strip())
        return as_weight_vector(out, field)
    values = []
    for i, v in enumerate(text.split(",")):
        try:
            values.append(float(v))
        except ValueError:
            raise ValueError(
                f"{field}: {v.strip()!r} (position {i}) is not a number; give NAME=VALUE,... "
                f"with names in {list(OBJECTIVES)}, {len(OBJECTIVES)} numbers, or a weights file"
            ) from None
    return as_weight_vector(values, field)


def _number(text: str, field: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{field}: {where}={text.strip()!r} is not a number") from None


def _read_weights_file(path: Path, field: str) -> Any:
    if not path.is_file():
        raise ValueError(f"{field}: no weights file at {path}")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as e:
        raise ValueError(f"{field}: {path} is not readable {path.suffix[1:]}: {e}") from e
    if isinstance(data, Mapping) and "reward_weights" in data:
        data = data["reward_weights"]
    if not isinstance(data, (Mapping, list)):
        raise ValueError(
            f"{field}: {path} must hold a name -> weight mapping or a list of "
            f"{len(OBJECTIVES)} numbers, got {type(data).__name__}"
        )
    return data


def weights_label(weights: WeightsLike) -> str:
    """A short, file-name-safe label of a weight vector: ``click0.5-watch_time0.1-...``."""
    vec = as_weight_vector(weights)
    return "-".join(f"{k}{v:g}" for k, v in zip(OBJECTIVES, vec, strict=True))


def weights_text(weights: WeightsLike) -> str:
    """The ``NAME=VALUE,...`` form :func:`parse_weights` reads back."""
    return ",".join(f"{k}={v:g}" for k, v in weights_dict(as_weight_vector(weights)).items())


# ----- seeds and RNG snapshots -----------------------------------------------------
