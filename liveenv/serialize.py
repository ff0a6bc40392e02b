"""One way to serialise a config dataclass: to a JSON-ready dict and back.

Every config of the workbench (the world's, each model's, each command's) goes
through these two functions, so a checkpoint, a run directory's ``config.json``
and a command line agree on what a config is:

* :func:`to_dict`: paths as strings, tuples as lists, enums by name, nested
  dataclasses as dicts;
* :func:`from_dict`: the inverse, guided by the field types (lists back to
  tuples, strings back to paths); an unknown key raises ``ValueError`` naming
  the class, the keys and the allowed ones, and the class's own validation runs.

A config class gets both as methods by inheriting :class:`DictConfig`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

T = TypeVar("T")

__all__ = ["DictConfig", "field_types", "from_dict", "to_dict", "unwrap_optional"]


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass instance."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """The instance of ``cls`` that :func:`to_dict` gave ``data`` for."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; allowed: {sorted(names)}")
    hints = field_types(cls)
    return cls(**{name: _revive(hints[name], raw) for name, raw in data.items()})


class DictConfig:
    """Mixin for config dataclasses: ``to_dict()`` and ``from_dict(data)``."""

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        return from_dict(cls, data)


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of ``cls``."""
    try:
        return typing.get_type_hints(cls, include_extras=False)
    except Exception as e:  # an annotation that cannot be resolved
        raise TypeError(f"{cls.__name__}: cannot resolve field types: {e}") from e


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(tp, False)``."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(tp)):
            return args[0], True
    return tp, False


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _revive(tp: Any, raw: Any) -> Any:
    inner, _ = unwrap_optional(tp)
    if raw is None:
        return None
    if dataclasses.is_dataclass(inner):
        return from_dict(inner, raw)  # type: ignore[arg-type]
    origin, args = get_origin(inner), get_args(inner)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_revive(args[0], v) for v in raw)
        if args:
            return tuple(_revive(a, v) for a, v in zip(args, raw, strict=True))
        return tuple(raw)
    if origin in (list, Sequence):
        return [_revive(args[0] if args else Any, v) for v in raw]
    if origin in (dict, Mapping):
        return {k: _revive(args[1] if len(args) == 2 else Any, v) for k, v in raw.items()}
    if inner is Path or (isinstance(inner, type) and issubclass(inner, Path)):
        return Path(raw)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return inner[raw]
    if inner is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    return raw
