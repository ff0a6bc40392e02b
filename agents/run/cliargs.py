"""Typed dataclasses as command lines (cleanrl style): one config class per command.

Every field of a dataclass becomes one option, ``--field-name`` (``--field_name``
is accepted too), with its type, default and help taken from the class:

* help: ``field(metadata={"help": "..."})``, else the string literal right after
  the field (an attribute docstring), else a ``# comment`` on the field's line,
  else a ``name: text`` line of the class docstring;
* ``bool``: ``--flag`` / ``--no-flag``;
* ``int``, ``float``, ``str``, ``pathlib.Path``: one value of that type;
* ``Literal["a", "b"]`` and ``Enum``: one of the choices;
* ``X | None`` / ``Optional[X]``: an ``X``, or ``none`` for ``None``;
* ``tuple[X, ...]`` and ``list[X]``: one or more values; ``tuple[X, Y]``: exactly two;
* ``dict[str, X]``: ``KEY=VALUE`` items (values of type ``X``; JSON for ``Any``);
* a nested dataclass: its fields under a dotted prefix, ``--env.n-users``
  (``metadata={"flatten": True}``: without the prefix, in their own help group).

The class's own validation (``__post_init__`` raising ``ValueError``) runs when
the parsed values are turned back into an instance; :func:`parse` reports it as
an argparse error (exit status 2) naming the field. :func:`to_argv` goes the
other way; :func:`to_dict` / :func:`from_dict` (JSON) are
:mod:`liveenv.serialize`'s, the one config serialiser of the workbench.

Why not tyro (measured 2026-12-04 with tyro 1.0.17, the release on PyPI): tyro
refuses the syntax every documented command and recipe uses, ``--weights
gift=0.2`` (it wants ``--weights gift 0.2``) and ``--start-hour none`` (it wants
``None``), so switching would change the options of every command; matching
them takes a custom constructor per type, about as much code as the converters
here. tyro also costs 0.24 s of import on every command. The parts tyro would
replace (argparse wiring, about 300 lines) stay here; the help text of a field
comes from its ``metadata["help"]`` or its attribute docstring, as tyro reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from agents.run.clidocs import class_summary, field_docs
from liveenv.serialize import field_types, from_dict, to_dict, unwrap_optional

T = TypeVar("T")
NONE_WORDS = ("none", "None", "null")

__all__ = [
    "add_arguments",
    "class_summary",
    "field_docs",
    "from_dict",
    "from_namespace",
    "parse",
    "parser_for",
    "to_argv",
    "to_dict",
]


# ----- types -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Spec:
    """How one field is read from the command line."""

    convert: Callable[[str], Any] | None  # one token -> value (None: a flag)
    nargs: int | str | None = None
    choices: tuple[Any, ...] | None = None
    metavar: str | tuple[str, ...] | None = None
    collect: Callable[[list[Any]], Any] | None = None  # the nargs values -> the field value


_METAVARS: dict[Any, str] = {int: "INT", float: "FLOAT", str: "TEXT", Path: "PATH"}


def _scalar(tp: Any, name: str) -> tuple[Callable[[str], Any], tuple[Any, ...] | None]:
    """A converter of one token to ``tp`` and its choices (for Literal / Enum)."""
    if tp is bool:
        return _to_bool, None
    if tp is float:
        return _finite, None
    if tp in (int, str):
        return tp, None
    if tp is Path or (isinstance(tp, type) and issubclass(tp, Path)):
        return Path, None
    if get_origin(tp) is Literal:
        choices = get_args(tp)
        kinds = {type(c) for c in choices}
        convert = kinds.pop() if len(kinds) == 1 else str
        return convert, tuple(choices)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        members = tuple(tp.__members__)
        return (lambda text: tp[text]), members
    if tp is Any:
        return _json_or_text, None
    raise TypeError(f"field {name!r}: type {tp!r} is not supported by agents.run.cliargs")


def _spec(tp: Any, name: str) -> _Spec:
    origin, args = get_origin(tp), get_args(tp)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            convert, choices = _scalar(args[0], name)
            return _Spec(convert, "*", choices, collect=tuple)
        if not args:
            return _Spec(str, "*", collect=tuple)
        converters = [_scalar(a, name)[0] for a in args]

        def fixed(values: list[Any]) -> tuple[Any, ...]:
            return tuple(c(v) for c, v in zip(converters, values, strict=True))

        names = tuple(_METAVARS.get(c, "VALUE") for c in converters)  # type: ignore[call-overload]
        return _Spec(str, len(args), metavar=names, collect=fixed)
    if origin in (list, Sequence):
        convert, choices = _scalar(args[0] if args else str, name)
        return _Spec(convert, "*", choices, collect=list)
    if origin in (dict, Mapping):
        value_tp = args[1] if len(args) == 2 else Any
        value_convert, _ = _scalar(value_tp, name)

        def items(values: list[str]) -> dict[str, Any]:
            return _key_values(values, value_convert, name)

        return _Spec(str, "*", metavar="KEY=VALUE", collect=items)
    convert, choices = _scalar(tp, name)
    return _Spec(None if tp is bool else convert, None, choices)


def _finite(text: str) -> float:
    """A float option: a finite number (inf and nan are refused)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_METAVARS[_finite] = "FLOAT"


def _to_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_values(values: list[str], convert: Callable[[str], Any], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r} is not KEY=VALUE")
        out[key.strip()] = convert(value.strip())
    return out


def _optional(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text in NONE_WORDS else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _typed(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert`` with errors argparse reports as 'invalid <type> value'."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except (ValueError, KeyError) as e:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: {e}") from e

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


# ----- the parser --------------------------------------------------------------
def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return " ".join(_show(v) for v in value) or "(empty)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "(empty)"
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    prefix: str = "",
    exclude: Sequence[str] = (),
    group_title: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Add one option per field of the dataclass ``cls`` to ``parser``
    (``defaults``: field name -> a default that replaces the class's)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints, docs = field_types(cls), field_docs(cls)
    target: Any = parser.add_argument_group(group_title) if group_title else parser
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init:
            continue
        tp, default = hints[f.name], _default(f)
        if defaults and f.name in defaults:
            default = defaults[f.name]
        if dataclasses.is_dataclass(tp):
            sub = prefix if f.metadata.get("flatten") else f"{prefix}{f.name}."
            add_arguments(parser, tp, prefix=sub, group_title=docs.get(f.name) or f.name)  # type: ignore[arg-type]
            continue
        _add_field(target, f.name, tp, default, docs.get(f.name, ""), prefix)


def _add_field(target: Any, name: str, tp: Any, default: Any, doc: str, prefix: str) -> None:
    inner, optional = unwrap_optional(tp)
    spec = _spec(inner, prefix + name)
    dest = prefix + name
    flags = [f"--{prefix}{name.replace('_', '-')}"]
    required = default is dataclasses.MISSING
    shown = "" if required else f" (default: {_show(default)})"
    kwargs: dict[str, Any] = {
        "dest": dest,
        "help": (doc + shown).strip() or None,
        "metavar": _metavar(spec, optional),
    }
    if required:
        kwargs["required"] = True
    else:
        kwargs["default"] = default
    if spec.convert is None:  # a bool flag
        kwargs["action"] = argparse.BooleanOptionalAction
        kwargs["help"] = doc or None
        kwargs.pop("metavar")
        if required:
            kwargs.pop("required")
            kwargs["default"] = False
        target.add_argument(*flags, **kwargs)
        return
    convert = _optional(spec.convert) if optional else spec.convert
    kwargs["type"] = _typed(convert)
    if spec.nargs is not None:
        kwargs["nargs"] = spec.nargs
    if spec.choices is not None:
        kwargs["choices"] = (*spec.choices, None) if optional else spec.choices
    target.add_argument(*flags, **kwargs)


def _metavar(spec: _Spec, optional: bool) -> str | tuple[str, ...] | None:
    if spec.metavar:
        return spec.metavar
    if spec.choices is not None:
        return (
            "{" + ",".join(str(c) for c in (*spec.choices, *(["none"] if optional else []))) + "}"
        )
    name = _METAVARS.get(spec.convert, "VALUE")  # type: ignore[arg-type]
    return f"{name}|none" if optional else name


def from_namespace(
    cls: type[T],
    ns: argparse.Namespace,
    *,
    prefix: str = "",
    exclude: Sequence[str] = (),
    **given: Any,
) -> T:
    """An instance of ``cls`` from parsed options (``given`` fills excluded fields).

    Raises ``ValueError`` from the class's own validation, or naming a value
    that does not convert."""
    hints, values = field_types(cls), dict(given)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in exclude or not f.init or f.name in values:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            sub = prefix if f.metadata.get("flatten") else f"{prefix}{f.name}."
            values[f.name] = from_namespace(tp, ns, prefix=sub)  # type: ignore[type-var]
            continue
        raw = getattr(ns, prefix + f.name)
        values[f.name] = _collect(tp, raw, prefix + f.name)
    return cls(**values)


def _collect(tp: Any, raw: Any, name: str) -> Any:
    inner, _ = unwrap_optional(tp)
    spec = _spec(inner, name)
    if raw is None or spec.collect is None or not isinstance(raw, list):
        return raw
    if len(raw) == 1 and raw[0] is None:  # "--field none" for an optional sequence
        return None
    return spec.collect(raw)


def parser_for(
    cls: type,
    prog: str | None = None,
    description: str | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` (or ``parser`` filled in) for the dataclass ``cls``."""
    doc = description if description is not None else class_summary(cls)
    if parser is None:
        parser = argparse.ArgumentParser(
            prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    add_arguments(parser, cls)
    return parser


def parse(cls: type[T], argv: Sequence[str] | None = None, prog: str | None = None) -> T:
    """Parse ``argv`` into an instance of ``cls``; bad values exit with status 2."""
    parser = parser_for(cls, prog=prog)
    ns = parser.parse_args(argv)
    try:
        return from_namespace(cls, ns)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
        raise  # unreachable: parser.error exits


# ----- back: instance -> command line / JSON -------------------------------------
def to_argv(obj: Any, prefix: str = "") -> list[str]:
    """The options that :func:`parse` turns back into ``obj`` (every field given)."""
    argv: list[str] = []
    hints = field_types(type(obj))
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        value, flag = getattr(obj, f.name), f"--{prefix}{f.name.replace('_', '-')}"
        if dataclasses.is_dataclass(hints[f.name]):
            argv += to_argv(
                value, prefix=prefix if f.metadata.get("flatten") else f"{prefix}{f.name}."
            )
        elif isinstance(value, bool):
            argv.append(flag if value else f"--no-{prefix}{f.name.replace('_', '-')}")
        elif value is None:
            argv += [flag, "none"]
        elif isinstance(value, dict):
            argv += [flag, *(f"{k}={_token(v)}" for k, v in value.items())]
        elif isinstance(value, tuple | list):
            argv += [flag, *(_token(v) for v in value)]
        else:
            argv += [flag, _token(value)]
    return argv


def _token(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


if __name__ == "__main__":  # a quick look: python -m agents.run.cliargs module:Class --help
    module, _, qual = sys.argv[1].partition(":")
    klass: Any = __import__(module, fromlist=[qual])
    print(parse(getattr(klass, qual), sys.argv[2:]))
