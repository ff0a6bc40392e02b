"""The interface every recommender implements: observation(s) in, slot(s) out.

A policy answers one observation (the dict the environment returns) or a batch
of them (the same keys with a leading batch axis) with a :class:`PolicyOutput`
whose arrays always carry the batch axis: ``slots`` is ``(B,)`` when the policy
recommends one room per request and ``(B, K)`` for a slate of ``K``. Only
slots whose ``room_mask`` is 1 are ever chosen.

Policies save to one small file that names their class and holds their config
(JSON), or, for a policy with array state, an ``.npz`` with the same JSON under
the key ``__meta__``. Writes are atomic (temporary file + ``os.replace``).
"""

from __future__ import annotations

import abc
import importlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from liveenv.atomic import atomic_write_bytes
from policies.checkpoint import check_header

Obs = Mapping[str, np.ndarray]

FORMAT = "liveenv.policy"
VERSION = 1
_MASK_KEY = "room_mask"
_IMPORTABLE = ("policies.",)  # the package `load` may import a policy class from


# ----- observations ----------------------------------------------------------
def is_batched(obs: Obs) -> bool:
    """True when ``obs`` has a leading batch axis (``room_mask`` is 2-D)."""
    if _MASK_KEY not in obs:
        raise KeyError(f"observation has no {_MASK_KEY!r} key; keys: {sorted(obs)}")
    ndim = np.ndim(obs[_MASK_KEY])
    if ndim not in (1, 2):
        raise ValueError(f"obs[{_MASK_KEY!r}] has {ndim} dims; expected 1 (single) or 2 (batch)")
    return ndim == 2


def as_batch(obs: Obs) -> dict[str, np.ndarray]:
    """``obs`` with a leading batch axis on every key (a view when already batched)."""
    if is_batched(obs):
        return {k: np.asarray(v) for k, v in obs.items()}
    return {k: np.asarray(v)[None] for k, v in obs.items()}


def masked_top_k(scores: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """``(B, k)`` slots of the ``k`` highest scores among ``mask == 1``, best first.

    Ties go to the lower slot index (a stable sort), so the choice is
    deterministic. Raises ``ValueError`` when a row has fewer than ``k`` valid
    slots or when the shapes disagree.
    """
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.asarray(mask).astype(bool)
    if scores.shape != valid.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and mask {valid.shape} must both be (B, R)")
    n_valid = valid.sum(axis=1)
    if np.any(n_valid < k):
        row = int(np.argmax(n_valid < k))
        raise ValueError(f"row {row} has {int(n_valid[row])} live room(s); a slate needs {k}")
    # primary key: masked last; then the score, high first (NaN as -inf); ties: index
    neg = -np.where(np.isnan(scores), -np.inf, scores)
    order = np.lexsort((neg, ~valid), axis=1)[:, :k]
    return order.astype(np.int64)


# ----- outputs ---------------------------------------------------------------
@dataclass(frozen=True)
class PolicyOutput:
    """What a policy chose for a batch of requests.

    ``slots``: ``(B,)`` int64, or ``(B, K)`` for a slate (best first).
    ``propensities``: same shape: the probability with which the policy put
    that slot at that position given the slots above it (so the product over
    a row is the probability of the whole slate; for one room, the
    probability of the action), or ``None`` when the policy does not define
    one (deterministic scorers). The convention of the interaction logs.
    """

    slots: np.ndarray
    propensities: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.slots.ndim not in (1, 2):
            raise ValueError(f"slots must be (B,) or (B, K); got shape {self.slots.shape}")
        if self.propensities is not None and self.propensities.shape != self.slots.shape:
            raise ValueError(
                f"propensities {self.propensities.shape} must match slots {self.slots.shape}"
            )

    @property
    def batch_size(self) -> int:
        return int(self.slots.shape[0])

    def action(self, i: int = 0) -> int | np.ndarray:
        """The environment action for request ``i``: an int, or a ``(K,)`` array."""
        row = self.slots[i]
        return int(row) if self.slots.ndim == 1 else row.copy()


# ----- policies --------------------------------------------------------------
class Policy(abc.ABC):
    """Base class of every recommender.

    Subclasses implement :meth:`act`; they keep their constructor arguments
    JSON-serialisable and return them from :meth:`get_config` so that
    ``cls(**config)`` rebuilds them. A policy with learned arrays also
    overrides :meth:`get_state` / :meth:`set_state`.
    """

    #: Privileged policies (the oracle) read the environment; the harness passes
    #: ``env`` to them only. They must never be used to train another policy.
    requires_env: ClassVar[bool] = False
    default_name: ClassVar[str] = "policy"

    def __init__(self, name: str | None = None, slate_size: int = 1) -> None:
        if int(slate_size) != slate_size or slate_size < 1:
            raise ValueError(f"slate_size={slate_size!r} is invalid: must be an integer >= 1")
        self.name = name or self.default_name
        self.slate_size = int(slate_size)

    @abc.abstractmethod
    def act(self, obs: Obs, env: Any = None) -> PolicyOutput:
        """Choose slot(s) for one observation or a batch (see the module doc)."""

    def reset(self, seed: int | None = None) -> None:  # noqa: B027 (optional hook)
        """Start a new episode; stochastic policies reseed their generator here."""

    def _format(self, slots: np.ndarray, prop: np.ndarray | None = None) -> PolicyOutput:
        """Wrap ``(B, K)`` slots as ``(B,)`` when the policy recommends one room."""
        if self.slate_size == 1:
            return PolicyOutput(slots[:, 0], None if prop is None else prop[:, 0])
        return PolicyOutput(slots, prop)

    # ----- persistence -------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "slate_size": self.slate_size}

    def get_state(self) -> dict[str, np.ndarray]:
        """Learned arrays (none for the baselines)."""
        return {}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no array state; got {sorted(state)}")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write class, config and state to ``path`` atomically; return the path."""
        path = Path(path)
        cls = type(self)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "config": self.get_config(),
        }
        text = json.dumps(meta, indent=2, sort_keys=True)
        state = self.get_state()
        if not state:
            atomic_write_bytes(path, text.encode())
            return path
        buf = io.BytesIO()
        meta_arr = np.frombuffer(text.encode(), dtype=np.uint8)
        np.savez(buf, __meta__=meta_arr, **{k: np.asarray(v) for k, v in state.items()})
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Policy:
        """Rebuild a policy saved by :meth:`save` (``Policy.load`` finds the class)."""
        meta, state = _read(Path(path))
        policy_cls = _resolve(meta["class"], path)
        if not issubclass(policy_cls, cls):
            raise ValueError(f"{path} holds a {policy_cls.__name__}, not a {cls.__name__}")
        try:
            policy = policy_cls(**meta["config"])
        except TypeError as e:
            raise ValueError(f"{path}: the config does not fit {policy_cls.__name__}: {e}") from e
        policy.set_state(state)
        return policy

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class ScoringPolicy(Policy):
    """A policy that scores every slot and recommends the top ``K`` live ones."""

    @abc.abstractmethod
    def scores(self, batch: dict[str, np.ndarray], env: Any = None) -> np.ndarray:
        """``(B, R)`` scores of a batched observation (higher is better)."""

    def act(self, obs: Obs, env: Any = None) -> PolicyOutput:
        batch = as_batch(obs)
        slots = masked_top_k(self.scores(batch, env), batch[_MASK_KEY], self.slate_size)
        return self._format(slots)


# ----- files -----------------------------------------------------------------
def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    raw = path.read_bytes()
    state: dict[str, np.ndarray] = {}
    try:
        if raw[:2] == b"PK":  # an .npz (zip) archive
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                state = {k: z[k] for k in z.files if k != "__meta__"}
                text = z["__meta__"].tobytes().decode()
        else:
            text = raw.decode()
        meta = json.loads(text)
    except Exception as e:
        raise ValueError(f"{path} is not a readable policy file: {type(e).__name__}: {e}") from e
    check_header(meta, path, FORMAT, VERSION, "policy file")
    return meta, state


def _resolve(qualified: str, path: str | os.PathLike[str]) -> type[Policy]:
    module, _, qualname = qualified.partition(":")
    if not module.startswith(_IMPORTABLE):
        raise ValueError(f"{path}: class {qualified!r} is outside {list(_IMPORTABLE)}")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if not (isinstance(obj, type) and issubclass(obj, Policy)):
        raise ValueError(f"{path}: {qualified!r} is not a Policy class")
    return obj
