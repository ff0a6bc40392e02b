"""Shared pieces of alignment: reward weights from the command line, seeds and
RNG snapshots for exact resume, and tidy curve files.

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
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from liveenv.atomic import atomic_write
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
def torch_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def rng_snapshot(np_rng: np.random.Generator, gen: torch.Generator) -> dict[str, Any]:
    """Plain-value snapshot of a numpy and a torch generator (plus torch's and Python's
    global states, which dropout or library code may touch)."""
    return {
        "numpy": json.dumps(np_rng.bit_generator.state),
        "torch": gen.get_state(),
        "torch_global": torch.get_rng_state(),
        "python": json.dumps(random.getstate()),
    }


def rng_restore(snap: Mapping[str, Any], np_rng: np.random.Generator, gen: torch.Generator) -> None:
    np_rng.bit_generator.state = json.loads(snap["numpy"])
    gen.set_state(snap["torch"])
    torch.set_rng_state(snap["torch_global"])
    state = json.loads(snap["python"])
    random.setstate((state[0], tuple(state[1]), state[2]))


def seed_globals(seed: int) -> None:
    """Seed torch's and Python's global RNGs (library code draws from explicit
    generators; this only pins what third-party code may draw)."""
    torch.manual_seed(int(seed))
    random.seed(int(seed))


# ----- curves --------------------------------------------------------------------
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


__all__ = [
    "parse_weights",
    "plot_curves",
    "rng_restore",
    "rng_snapshot",
    "seed_globals",
    "torch_generator",
    "weights_label",
    "weights_text",
    "write_curves",
]
