"""Run directories: where every ``liveenv`` command writes, and how it resumes.

Layout of a run directory::

    config.json          the arguments of every command run in it (format liveenv.run)
    logs/<name>/         interaction logs (Parquet parts)
    checkpoints/<name>   tokenizer, generator, aligned generator, ... (their own formats)
    results/             tables (CSV + Parquet) and Markdown summaries
    figures/             PNG figures
    report.md            the run's report
    stages/<name>.json   one done-marker per finished stage, written last

A *stage* is one unit of work (log, tokenize, pretrain, ...). :meth:`RunDir.run_stage`
runs it unless its done-marker exists with the same fingerprint (its arguments
and the fingerprints of its inputs) and every output it recorded is still there
with its recorded size and checksum. Paths inside the run directory enter a
fingerprint (and ``config.json``) relative to it (``$RUN/...``), and paths in the
checkpoints and JSON files a stage writes relative to the file's own folder
(:mod:`agents.run.relocate`), so a moved or copied run directory resumes with
nothing redone and holds no path of where it was made; the paths a marker names
must stay inside the run directory.

A run directory is a consistent whole: each marker records the fingerprints of
the stages it was made from (``upstream``). Redoing a finished stage with other
arguments or inputs while later stages were made from it is refused, naming
them, unless ``force``; then those stages are *stale* (:meth:`RunDir.stale`)
until they are redone. Results that differ only in what they were made with
(an evaluation's arguments, an alignment's reward weights) live side by side
instead, keyed by it (:meth:`RunDir.keyed_name`). A stage that fails leaves the
finished one it would have replaced in place. A stage writes its files into a hidden
staging folder (``ctx.stage_dir``) that mirrors the layout; only when the work
returns are the files moved into place and then the marker written, so a crash,
Ctrl-C or a bad input leaves nothing half-written in the run directory.
Long stages that keep checkpoints write them under ``ctx.checkpoint_dir``
(``checkpoints/<stage>.partial/``, kept across crashes) and continue from them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.run.markers import (
    FORMAT,
    VERSION,
    RunDirError,
    StageRecord,
    check_relative,
    file_digest,
    fingerprint_of,
    json_bytes,
)
from agents.run.relocate import relocate_staged
from liveenv.atomic import atomic_write_bytes

SUBDIRS = ("logs", "checkpoints", "results", "figures")
#: a staged folder directly under these replaces its namesake whole (a log, a model
#: folder); elsewhere (results/, figures/) staged files are merged in one by one
UNIT_PARENTS = ("logs", "checkpoints")

__all__ = ["RunDir", "RunDirError", "StageContext", "StageOutcome"]


@dataclass
class StageContext:
    """What a stage's work function gets: where to write, where to checkpoint."""

    run: RunDir
    name: str
    stage_dir: Path  # staging root: mirrors the run dir layout, moved into place on success
    checkpoint_dir: Path  # persistent across crashes: resume state of a long stage (create it)
    notes: list[str] = field(default_factory=list)
    #: run-relative folder the stage copies its checkpoint folder's files into (paths
    #: into the checkpoint folder are written as paths there; see agents.run.relocate)
    partial_output: str = ""

    def path(self, *parts: str) -> Path:
        """A path in the staging folder (parents created), e.g. ``ctx.path("results", "x.csv")``."""
        path = self.stage_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def final(self, *parts: str) -> Path:
        """Where ``ctx.path(*parts)`` will be once the stage finished."""
        return self.run.root.joinpath(*parts)


@dataclass(frozen=True)
class StageOutcome:
    record: StageRecord
    skipped: bool  # True: it was done already and not run again


class RunDir:
    """A run directory (created on first use; see the module doc)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"run directory {self.root} exists and is not a directory")
        for parent in self.root.absolute().parents:
            if parent.exists():
                if not parent.is_dir():
                    raise RunDirError(
                        f"run directory {self.root} cannot be made: {parent} is a file"
                    )
                break

    def require(self) -> None:
        """Refuse a run directory that does not exist (a command that reads one)."""
        if not self.root.is_dir():
            raise RunDirError(
                f"run directory {self.root} does not exist; run `liveenv demo` or `liveenv log` "
                f"with --run-dir {self.root} first, or name an existing one"
            )

    def portable(self, value: Any) -> Any:
        """``value`` (JSON-ready) with every path inside the run directory written
        relative to it (``$RUN/...``): what fingerprints and ``config.json`` hold."""
        if isinstance(value, Mapping):
            return {k: self.portable(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.portable(v) for v in value]
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, str) and os.sep in value:
            root = os.path.realpath(self.root)
            full = os.path.realpath(value)
            if full == root or full.startswith(root + os.sep):
                return "$RUN/" + Path(os.path.relpath(full, root)).as_posix()
        return value

    # ----- layout -------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def report_path(self) -> Path:
        return self.root / "report.md"

    def sub(self, name: str, *parts: str) -> Path:
        """``logs``, ``checkpoints``, ``results``, ``figures`` or ``stages`` (+ parts)."""
        if name not in (*SUBDIRS, "stages"):
            raise ValueError(f"sub={name!r} is unknown; allowed: {[*SUBDIRS, 'stages']}")
        return self.root.joinpath(name, *parts)

    def marker_path(self, stage: str) -> Path:
        plain = stage.replace("_", "").replace("-", "").replace(".", "")
        if not plain.isalnum() or stage.startswith("."):
            raise ValueError(
                f"stage={stage!r} is invalid: letters, digits, '_', '-' and '.' (not first) only"
            )
        return self.root / "stages" / f"{stage}.json"

    def exists(self) -> bool:
        return self.config_path.is_file()

    # ----- config -------------------------------------------------------
    def read_config(self) -> dict[str, Any]:
        """``config.json`` (an empty config when the run directory is new)."""
        if not self.config_path.exists():
            return {"format": FORMAT, "version": VERSION, "commands": {}}
        try:
            data = json.loads(self.config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunDirError(f"{self.config_path} is not valid JSON: {e}") from e
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RunDirError(f"{self.config_path} is not a liveenv run config")
        return data

    def check_command(self, command: str, args: Mapping[str, Any], force: bool = False) -> None:
        """Refuse ``command`` with other arguments than the ones it finished with here
        (naming the fields that differ) unless ``force``: a run directory holds one
        configuration per command (per preset for ``evaluate-<preset>``), so resuming
        never mixes two."""
        old = self.read_config()["commands"].get(command)
        new = self.portable(json.loads(json.dumps(dict(args), default=str)))
        if old is not None and old != new and not force:
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise RunDirError(
                f"{self.root} already ran `{command}` with other arguments ({shown}); "
                f"use another --run-dir, the same arguments to resume, or --force to redo it"
            )

    def record_command(self, command: str, args: Mapping[str, Any], force: bool = False) -> None:
        """Store ``args`` of ``command`` in ``config.json`` (after :meth:`check_command`);
        call it when the command has finished, so a failed attempt leaves no trace."""
        self.check_command(command, args, force)
        config = self.read_config()
        config["commands"][command] = self.portable(json.loads(json.dumps(dict(args), default=str)))
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.config_path, json_bytes(config))

    def keyed_name(
        self,
        name: str,
        made_with: Mapping[str, Any],
        force: bool = False,
        label: str = "",
        fingerprint: Any = None,
    ) -> str:
        """Stage ``name`` when its result here was made with ``made_with`` (or it is not
        done, is stale, or ``force`` redoes it), else ``<name>-[<label>-]<hash>``: a
        result made with other arguments lives beside the run's own, keyed by what it
        was made with (``label``: a readable part of the key). What each was made with
        is ``config.json``'s entry of its name; a run made before those entries
        compares the stage's ``fingerprint`` with its marker's instead."""
        made = self.portable(json.loads(json.dumps(dict(made_with), default=str)))
        done = self.record(name)
        if done is None or force or name in self.stale():
            return name
        old = self.read_config()["commands"].get(name)
        if old is None and fingerprint is not None:
            same = done.fingerprint == fingerprint_of(self.portable(fingerprint))
        else:
            same = old is None or old == made
        return name if same else "-".join([name, *filter(None, [label]), fingerprint_of(made)[:8]])

    # ----- stages -------------------------------------------------------
    def record(self, stage: str) -> StageRecord | None:
        """The done-marker of ``stage`` (None when it has not finished)."""
        path = self.marker_path(stage)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunDirError(f"{path}: corrupt stage marker ({e}); delete it to redo") from e
        return StageRecord.from_dict(data, str(path))

    def records(self) -> list[StageRecord]:
        """Every finished stage, in the order they finished."""
        folder = self.root / "stages"
        found = [self.record(p.stem) for p in folder.glob("*.json")] if folder.is_dir() else []
        return sorted((r for r in found if r is not None), key=lambda r: r.finished)

    def stale(self) -> dict[str, list[str]]:
        """Finished stages made from another version of a stage they depend on
        (redone with ``--force`` since): name -> the stages that changed."""
        records = {r.name: r for r in self.records()}
        out: dict[str, list[str]] = {}
        changed = True
        while changed:
            changed = False
            for r in records.values():
                why = sorted(
                    u
                    for u, fp in r.upstream.items()
                    if u not in records or records[u].fingerprint != fp or u in out
                )
                if why and out.get(r.name) != why:
                    out[r.name], changed = why, True
        return out

    def dependants(self, stage: str) -> list[str]:
        """Finished stages made (directly or not) from ``stage``'s result."""
        records = self.records()
        found: list[str] = []
        frontier = [stage]
        while frontier:
            name = frontier.pop()
            for r in records:
                if name in r.upstream and r.name not in found and r.name != stage:
                    found.append(r.name)
                    frontier.append(r.name)
        return sorted(found)

    def output_path(self, rel: str, source: str = "a stage marker") -> Path:
        """``rel`` (a marker's path) in the run directory; refused when it leads outside."""
        check_relative(rel, source)
        path = self.root / rel
        root = os.path.realpath(self.root)
        if not os.path.realpath(path).startswith(root + os.sep):
            raise RunDirError(f"{source} names {rel!r}, which leads outside {self.root}")
        return path

    def verify(self, record: StageRecord) -> None:
        """Raise :class:`RunDirError` when an output of ``record`` is gone or changed."""
        for rel, meta in record.outputs.items():
            path = self.output_path(rel, str(self.marker_path(record.name)))
            if not path.is_file():
                raise RunDirError(
                    f"{path} (written by stage {record.name!r}) is missing; "
                    f"rerun with --force to redo the stage"
                )
            size = path.stat().st_size
            if size != meta["bytes"]:
                raise RunDirError(
                    f"{path} is {size} bytes but stage {record.name!r} wrote {meta['bytes']}: "
                    f"the file is truncated or was changed; rerun with --force to redo the stage"
                )
            digest = meta.get("sha256")
            if digest and file_digest(path) != digest:
                raise RunDirError(
                    f"{path} does not match the checksum stage {record.name!r} recorded: "
                    f"the file is corrupt or was changed; rerun with --force to redo the stage"
                )

    def run_stage(
        self,
        name: str,
        work: Callable[[StageContext], Mapping[str, Any] | None],
        fingerprint: Any = None,
        force: bool = False,
    ) -> StageOutcome:
        """Run ``work(ctx)`` as stage ``name`` unless it is done with this ``fingerprint``.

        ``work`` writes its files under ``ctx.stage_dir`` and returns a JSON-ready
        summary. A done stage whose outputs are missing or changed raises
        :class:`RunDirError` (``force``: run it again instead). A ``fingerprint``
        mapping with ``"inputs"`` (stage -> fingerprint, see
        :func:`agents.run.stages.stage_fingerprint`) records what the stage was made
        from; redoing a finished stage that later stages were made from, with
        another fingerprint, is refused unless ``force``."""
        portable = self.portable(fingerprint)
        fp = fingerprint_of(portable)
        inputs = portable.get("inputs") if isinstance(portable, Mapping) else None
        upstream = {str(k): str(v) for k, v in dict(inputs or {}).items()}
        done = self.record(name)
        if done is not None and done.fingerprint == fp and not force:
            self.verify(done)
            return StageOutcome(done, skipped=True)
        if done is not None and not force and name not in self.stale():
            later = self.dependants(name)
            if later:
                raise RunDirError(
                    f"{self.root}: stage {name!r} is done here with other arguments or inputs, "
                    f"and {', '.join(repr(x) for x in later)} were made from it; use another "
                    f"--run-dir, the arguments it was made with, or --force to redo it (those "
                    f"stages are then marked stale until they are redone)"
                )
        marker = self.marker_path(name)
        ckpt = self.root / "checkpoints" / f"{name}.partial"
        if force:
            shutil.rmtree(ckpt, ignore_errors=True)
        staging = self.root / f".stage-{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)  # left by a crashed run: never resumed
        staging.mkdir(parents=True)
        ctx = StageContext(self, name, staging, ckpt)
        started = time.time()
        try:
            summary = dict(work(ctx) or {})
            relocate_staged(ctx)
            outputs = self._commit(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(OSError):
                ckpt.rmdir()  # only when empty: a stage that kept no resume state
        if ctx.notes:
            summary.setdefault("notes", list(ctx.notes))
        record = StageRecord(
            name,
            fp,
            outputs,
            json.loads(json.dumps(summary, default=str)),
            started,
            time.time(),
            upstream,
        )
        atomic_write_bytes(marker, json_bytes(record.to_dict()))
        shutil.rmtree(ckpt, ignore_errors=True)  # finished: resume state no longer needed
        return StageOutcome(record, skipped=False)

    def _commit(self, staging: Path) -> dict[str, dict[str, Any]]:
        """Move every staged file into the run dir; return their sizes and checksums.

        A staged ``logs/<name>/`` or ``checkpoints/<name>/`` folder replaces its
        namesake whole; other files are moved one by one with ``os.replace``."""
        outputs: dict[str, dict[str, Any]] = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            rel = path.relative_to(staging)
            outputs[rel.as_posix()] = {"bytes": path.stat().st_size, "sha256": file_digest(path)}
        for top in sorted(staging.iterdir()):
            self._move_tree(top, self.root / top.name, depth=0)
        return outputs

    def _move_tree(self, src: Path, dst: Path, depth: int) -> None:
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            return
        if depth >= 1 and src.parent.name in UNIT_PARENTS:  # logs/<name>: one unit
            if dst.is_dir():
                shutil.rmtree(dst)
            elif dst.exists():
                dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            return
        for child in sorted(src.iterdir()):
            self._move_tree(child, dst / child.name, depth + 1)

    def invalidate(self, *stages: str) -> None:
        """Forget that ``stages`` finished (their outputs stay until overwritten)."""
        for stage in stages:
            self.marker_path(stage).unlink(missing_ok=True)

    def clean_partials(self) -> list[Path]:
        """Remove staging folders left by crashed runs; return what was removed."""
        gone = sorted(self.root.glob(".stage-*.tmp")) if self.root.is_dir() else []
        for path in gone:
            shutil.rmtree(path, ignore_errors=True)
        return gone

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One command at a time per run directory: ``fcntl.flock`` on ``.lock``
        (released by the kernel when a command dies, so a killed run's lock is
        taken over atomically; the file holds the holder's pid for messages)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"run directory {self.root} cannot be made: {e.strerror}") from None
        path = self.root / ".lock"
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError as e:
                raise RunDirError(
                    f"run directory {self.root} is not writable ({e.strerror}); "
                    f"choose another --run-dir or copy it somewhere writable"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise RunDirError(
                    f"{self.root} is in use by another liveenv command (pid {pid}); "
                    f"wait for it to finish"
                ) from None
            try:  # the file we locked may have been unlinked by its last holder
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # while still holding it: see the check above
            os.close(fd)
