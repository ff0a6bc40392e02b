"""Seeds and RNG states of training: explicit generators, and snapshots of them
that a checkpoint carries so that a resumed run continues bit for bit."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


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
