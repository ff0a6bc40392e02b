"""Progress of a long stage, for a person at a terminal and for a log file alike.

:func:`progress_bar` is the one progress bar of the workbench (pretraining, the
reward model, alignment and its request pool, evaluation, the sweep, logging):

* on a terminal (stderr is a TTY): tqdm's bar, redrawn at most once a second;
* otherwise (a pipe, a log file, CI): one plain line every ``every_s`` seconds
  (a minute by default), ``pretrain:  41% 412/1000 [01:00<01:26, 6.87step/s]``,
  and a last line when the stage ends, if it printed any; a stage shorter than
  ``every_s`` prints nothing;
* ``enabled=False`` (``--no-progress``): nothing at all.

It returns a ``tqdm`` either way, so callers use ``update``, ``set_postfix``,
``close`` and ``with`` as usual.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import IO, Any

from tqdm.auto import tqdm
from tqdm.std import tqdm as std_tqdm

#: seconds between two lines when stderr is not a terminal (``$LIVEENV_PROGRESS_S`` overrides)
EVERY_S = 60.0
ENV_VAR = "LIVEENV_PROGRESS_S"
#: a line of a log: no bar drawing, the numbers only
LOG_FORMAT = (
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)

__all__ = ["ENV_VAR", "EVERY_S", "LineProgress", "progress_bar"]


class LineProgress(std_tqdm):
    """A tqdm that writes whole lines, at most one every ``mininterval`` seconds (for
    logs: no carriage returns, no redraws), and a last one on close if it wrote any."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lines = 0
        self._last_line_t: float | None = None
        self._last_line_n: float | None = None
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        start = getattr(self, "start_t", None)  # None: tqdm's first draw, from __init__
        if self.disable or msg == "" or start is None:
            return False  # nothing to clear: a log keeps its lines
        now = self._time()
        last = self._last_line_t if self._last_line_t is not None else start
        if now - last >= self.mininterval:
            self._line(msg)
            self._last_line_t = now
        return True

    def _line(self, msg: str | None = None) -> None:
        line = msg if msg is not None else self.format_meter(**self.format_dict)
        self.fp.write(line.strip() + "\n")
        self.fp.flush()
        self._lines += 1
        self._last_line_n = self.n

    def close(self) -> None:
        if not self.disable and self._lines and self._last_line_n != self.n:  # say it ended
            self._line()
        super().close()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return -1


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    every_s: float | None = None,
    file: IO[str] | None = None,
    **kwargs: Any,
) -> tqdm:
    """A progress bar over ``iterable`` (or ``total`` steps) named ``desc``: a live bar
    on a terminal, a line every ``every_s`` seconds otherwise, nothing when not
    ``enabled`` (``every_s`` None: ``$LIVEENV_PROGRESS_S``, else a minute). ``kwargs``
    go to tqdm (``initial``, ``leave``, ``postfix``, ...)."""
    stream = file if file is not None else sys.stderr
    if not enabled:
        return std_tqdm(iterable, total=total, disable=True)
    if _is_terminal(stream):
        kwargs.setdefault("mininterval", 1.0)
        if _columns(stream) == 0:  # a terminal that reports no size (some emulators, `script`)
            kwargs.setdefault("ncols", 80)
            kwargs.setdefault("nrows", 24)
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, **kwargs)
    kwargs.pop("mininterval", None)
    if every_s is None:
        every_s = float(os.environ.get(ENV_VAR) or EVERY_S)
    kwargs["leave"] = False  # LineProgress.close writes the last line itself
    if total is not None or hasattr(iterable, "__len__"):
        kwargs.setdefault("bar_format", LOG_FORMAT)
    return LineProgress(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        mininterval=every_s,
        maxinterval=max(every_s, 10.0),
        **kwargs,
    )
