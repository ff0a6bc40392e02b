"""TensorBoard scalars beside a trainer's CSV files: one small writer for every loop.

Every trainer with a ``tensorboard: bool`` field (pretraining, alignment, the SB3
trainers) writes TensorBoard event files under ``OUT/tb/`` when the field is on,
the default. Default on, because the event files are small (a few kB per run) and
``tensorboard --logdir`` on a run directory is what people reach for; when the
``tensorboard`` package is missing (``pip install -e '.[agents]'`` brings it) the
trainer says so once and writes nothing, so nothing fails for want of it. The CSV
files (``metrics.csv``, ``curves.csv``, ``learning_curve.csv``) are written as
before either way: TensorBoard is a view, never the record.

A resumed run passes ``purge_step`` (the first step it will log again), so the
events an interrupted run logged after its last checkpoint are dropped and every
curve has one value per step.

    from agents.train.tracking import Tracker

    tracker = Tracker(out, enabled=args.tensorboard)
    tracker.log({"loss": 0.7, "lr": 1e-3}, step=25, prefix="pretrain/")
    tracker.close()
"""

from __future__ import annotations

import atexit
import importlib.util
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "TB_DIR",
    "Tracker",
    "record_curve_point",
    "tensorboard_available",
    "tensorboard_dir",
    "use_tensorboard_logger",
]

#: The folder under a trainer's output folder that holds its event files.
TB_DIR = "tb"

_warned = False


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (which writes event files) is importable."""
    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_dir(out: str | Path, enabled: bool) -> Path | None:
    """``OUT/tb`` when TensorBoard logging is on and possible, else None (warning once
    when it is on but the package is missing)."""
    if not enabled:
        return None
    if not tensorboard_available():
        global _warned
        if not _warned:
            warnings.warn(
                "tensorboard is not installed, so no TensorBoard event files are written "
                "(pip install tensorboard, or --no-tensorboard to silence this)",
                stacklevel=3,
            )
            _warned = True
        return None
    return Path(out) / TB_DIR


class Tracker:
    """Scalars to TensorBoard event files under ``OUT/tb/`` (a no-op when disabled or
    when ``tensorboard`` is not installed). Every :meth:`log` is flushed, so an
    interrupted run keeps what it logged."""

    def __init__(self, out: str | Path, enabled: bool = True, purge_step: int | None = None):
        self.log_dir = tensorboard_dir(out, enabled)
        self._writer: Any = None
        if self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)
            atexit.register(self.close)

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def log(
        self,
        values: Mapping[str, Any],
        step: int,
        prefix: str = "",
        exclude: tuple[str, ...] = (),
    ) -> None:
        """Each finite number of ``values`` (but the keys in ``exclude``) as the scalar
        ``prefix + key`` at ``step``; strings, NaN and the like are left out."""
        if self._writer is None:
            return
        for key, value in values.items():
            if key in exclude or isinstance(value, str):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                try:
                    value = float(value)  # numpy and 0-d torch scalars
                except (TypeError, ValueError):
                    continue
            if math.isfinite(value):
                self._writer.add_scalar(f"{prefix}{key}", float(value), int(step))
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            atexit.unregister(self.close)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----- Stable-Baselines3 ----------------------------------------------------------------
def use_tensorboard_logger(model: Any, out: str | Path, enabled: bool = True) -> Path | None:
    """Give an SB3 ``model`` a logger writing TensorBoard events and SB3's
    ``progress.csv`` to ``OUT/tb`` (SB3's own tags: ``train/*``, ``time/*``); None
    when disabled or not installed (the model keeps its silent default logger)."""
    folder = tensorboard_dir(out, enabled)
    if folder is None:
        return None
    from stable_baselines3.common.logger import configure

    model.set_logger(configure(str(folder), ["csv", "tensorboard"]))
    return folder


def record_curve_point(
    logger: Any, values: Mapping[str, float], step: int, exclude: tuple[str, ...] = ("timesteps",)
) -> None:
    """Write a learning-curve point (``curve/<key>``) through an SB3 ``logger`` at
    ``step`` timesteps, when it writes TensorBoard (:func:`use_tensorboard_logger`).

    The point is dumped at once, with whatever SB3 recorded since its last dump, so
    that one writer keeps the event file in step order."""
    from stable_baselines3.common.logger import TensorBoardOutputFormat

    formats = getattr(logger, "output_formats", [])
    if not any(isinstance(f, TensorBoardOutputFormat) for f in formats):
        return
    for key, value in values.items():
        if key not in exclude and isinstance(value, int | float) and math.isfinite(value):
            logger.record(f"curve/{key}", float(value))
    logger.dump(int(step))
