"""The aligner registry: every way to align the generator, by name.

The ``liveenv align`` command (``--method``), the sweeps and the dashboard's
quick alignment read this one table. An aligner is an arguments class (a
subclass of :class:`agents.align.args.AlignArgs` when it needs more options)
and a function ``run(args) -> path of the aligned generator``, usually the
shared loop :func:`agents.align.loop.train` with the aligner's loss.

Adding an aligner is one new file (its args, its loss and ``run``) and one line
here, for example::

    Aligner("ipo", "IPO on best-vs-worst pairs", ("ipo",), IPOArgs, ipo),
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.align.args import AlignArgs
from agents.align.dpo import DPOArgs, dpo
from agents.align.grpo import align

__all__ = ["ALIGNERS", "Aligner", "aligner_for", "method_names"]


@dataclass(frozen=True)
class Aligner:
    """One registered aligner."""

    name: str
    about: str
    methods: tuple[str, ...]  # the values of ``--method`` that select it
    args: type[AlignArgs]
    run: Callable[[Any], Path]


ALIGNERS: dict[str, Aligner] = {a.name: a for a in (
    Aligner("grpo", "GRPO/ECPO: group-relative policy optimisation (OneRec's early-clipped "
            "ratio with --method ecpo, the plain ratio with grpo)", ("ecpo", "grpo"),
            AlignArgs, align),
    Aligner("dpo", "DPO on each sampled group's best-vs-worst pair", ("dpo",), DPOArgs, dpo),
)}  # fmt: skip


def method_names() -> tuple[str, ...]:
    """Every value ``--method`` takes."""
    return tuple(m for a in ALIGNERS.values() for m in a.methods)


def aligner_for(method: str) -> Aligner:
    """The aligner that ``--method method`` (or an aligner's own name) selects."""
    for a in ALIGNERS.values():
        if method == a.name or method in a.methods:
            return a
    raise ValueError(f"method={method!r} is unknown; allowed: {list(method_names())}")
