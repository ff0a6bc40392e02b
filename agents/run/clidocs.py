"""The help text of a config dataclass's fields, for :mod:`agents.run.cliargs`:
``field(metadata={"help": ...})``, else the string literal right after the field
(an attribute docstring), else a ``# comment`` on the field's line, else a
``name: text`` line of the class docstring.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize

__all__ = ["class_summary", "field_docs"]


def field_docs(cls: type) -> dict[str, str]:
    """The help text of every field of ``cls`` (see the module doc for the sources)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # base classes first, subclasses override
        if dataclasses.is_dataclass(klass):
            docs.update(_class_doc_fields(klass))
            docs.update(_source_docs(klass))
    for f in dataclasses.fields(cls):
        text = f.metadata.get("help") or f.metadata.get("doc")
        if text:
            docs[f.name] = str(text)
    return {k: _plain_rst(v) for k, v in docs.items()}


def _class_doc_fields(cls: type) -> dict[str, str]:
    """Fields described in the class docstring: a line ``name: text`` (or
    ``a / b / c: text`` for several fields), continued on more-indented lines."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    names = {f.name for f in dataclasses.fields(cls)}
    docs: dict[str, str] = {}
    current: list[str] = []
    for line in doc.splitlines():
        head, sep, text = line.partition(":")
        keys = [k.strip() for k in head.split("/")] if sep and not line[:1].isspace() else []
        if keys and all(k in names for k in keys):
            current = keys
            for k in keys:
                docs[k] = text.strip()
        elif current and line[:1].isspace() and line.strip():
            for k in current:
                docs[k] = f"{docs[k]} {line.strip()}".strip()
        else:
            current = []
    return docs


def _source_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings and same-line comments of a class body, by field name."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in _tokens(source)
        if tok.type == tokenize.COMMENT
    }
    body = next((n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)), None)
    docs: dict[str, str] = {}
    if body is None:
        return docs
    nodes = body.body
    for i, node in enumerate(nodes):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name, nxt = node.target.id, nodes[i + 1] if i + 1 < len(nodes) else None
        if (
            isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[name] = " ".join(inspect.cleandoc(nxt.value.value).split())
        elif node.end_lineno in comments:
            docs[name] = comments[node.end_lineno]
    return docs


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return []


def class_summary(cls: type) -> str | None:
    """The first paragraph of the class docstring (not the generated signature)."""
    doc = cls.__doc__ or ""
    if doc.startswith(f"{cls.__name__}("):  # the signature dataclasses generates
        return None
    return _plain_rst(inspect.cleandoc(doc).split("\n\n")[0]) or None


def _plain_rst(text: str) -> str:
    """Sphinx roles as plain names: ``:class:`~a.b.C``` -> ``C``."""
    return re.sub(r":\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
