"""Paths inside the files a stage writes, made relative so that a run directory
can be moved or copied whole.

Trainers write absolute paths into their checkpoints and JSON summaries (their
arguments, the tokenizer a generator reads, the model it was aligned from).
Before a stage's files move into place (:meth:`agents.run.rundir.RunDir.run_stage`),
every path in its ``.pt`` and ``.json`` files that leads into the run directory
is rewritten relative to the folder of the file that holds it (read back with
:func:`policies.checkpoint.named_path`). A path into the stage's staging folder
is first written as where that file ends up, one into its checkpoint folder
(``checkpoints/<stage>.partial/``, deleted when the stage finishes) as where the
stage copies those files (``ctx.partial_output``). Paths outside the run
directory (inputs given from elsewhere) are left as they are.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liveenv.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from agents.run.rundir import StageContext

__all__ = ["relocate_staged", "relocator"]

Relocate = Callable[[str], str]


def relocate_staged(ctx: StageContext) -> list[str]:
    """Rewrite the paths in every staged ``.pt`` and ``.json`` file of ``ctx`` (see the
    module doc); return the staged files that changed, relative to the staging folder."""
    changed = []
    for path in sorted(p for p in ctx.stage_dir.rglob("*") if p.suffix in _REWRITERS):
        if not path.is_file():
            continue
        rel = path.relative_to(ctx.stage_dir)
        if _REWRITERS[path.suffix](path, relocator(ctx, ctx.final(*rel.parts).parent)):
            changed.append(rel.as_posix())
    return changed


def relocator(ctx: StageContext, folder: Path) -> Relocate:
    """A function that writes an absolute path into the run directory relative to
    ``folder`` (where the file holding it ends up) and leaves any other string alone."""
    root = os.path.realpath(ctx.run.root)
    moves = [(os.path.realpath(ctx.stage_dir), root)]
    if ctx.partial_output:
        target = os.path.join(root, *ctx.partial_output.split("/"))
        moves.insert(0, (os.path.realpath(ctx.checkpoint_dir), target))
    here = os.path.realpath(folder)

    def relocate(value: str) -> str:
        if not os.path.isabs(value):
            return value
        full = os.path.realpath(value)
        for src, dst in moves:
            if _inside(full, src):
                full = dst + full[len(src) :]
                break
        if not _inside(full, root):
            return value
        return Path(os.path.relpath(full, here)).as_posix()

    return relocate


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


def _walk(value: Any, relocate: Relocate, changed: list[str]) -> Any:
    """``value`` with every string passed through ``relocate`` (``changed`` collects
    the strings it rewrote); containers keep their type, anything else is kept."""
    if isinstance(value, str):
        new = relocate(value)
        if new != value:
            changed.append(value)
        return new
    if isinstance(value, dict):
        items = {k: _walk(v, relocate, changed) for k, v in value.items()}
        return items if type(value) is dict else type(value)(items)
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return type(value)(_walk(v, relocate, changed) for v in value)
    return value


def _rewrite_json(path: Path, relocate: Relocate) -> bool:
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):  # not JSON after all: left alone
        return False
    changed: list[str] = []
    new = _walk(data, relocate, changed)
    if changed:
        atomic_write_bytes(path, (json.dumps(new, indent=2) + "\n").encode())
    return bool(changed)


def _rewrite_torch(path: Path, relocate: Relocate) -> bool:
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a plain torch file (e.g. a pickled object): left alone
        return False
    changed: list[str] = []
    new = _walk(payload, relocate, changed)
    if changed:
        buf = io.BytesIO()
        torch.save(new, buf)
        atomic_write_bytes(path, buf.getvalue())
    return bool(changed)


_REWRITERS: dict[str, Callable[[Path, Relocate], bool]] = {
    ".json": _rewrite_json,
    ".pt": _rewrite_torch,
}
