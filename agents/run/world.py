"""The simulated world a run works in, and where a run keeps what it made.

Every stage of a run (log, tokenizer, models, evaluation) uses one world: a
preset, optionally scaled down to ``n_users`` users and ``n_streamers``
streamers. Scaling keeps the preset's character: the daily influx of new users
and creators shrinks in proportion, so ``cold_start`` stays cold-start heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from liveenv.config import EnvConfig
from liveenv.presets import PRESETS, make_config
from policies.registry import POLICIES

#: Where the pipeline's stages write, relative to the run directory.
LOG_DIR = "logs/train"
TOKENIZER = "checkpoints/tokenizer.pt"
#: the learned policies' folders, as the policy registry names them
#: (generator: model.pt, tokenizer.pt, metrics.csv, summary.json)
GENERATOR = f"checkpoints/{POLICIES['pretrained'].folder}"
REWARD_MODEL = "checkpoints/reward_model"
ALIGNED = f"checkpoints/{POLICIES['aligned'].folder}"
CASCADE = f"checkpoints/{POLICIES['cascade'].folder}"
EVAL_DIR = "results/eval"  # results/eval/<preset>/{table,summary}.csv, summary.md
SWEEP_DIR = "results/sweep"
FIGURES = "figures"
#: Hour of day at which online episodes start (evaluation, alignment's request pool,
#: sweeps): the evening peak, when most rooms are live and choices matter most.
ONLINE_START_HOUR = 20.0
#: Upper bounds of a run's world (its state is held in memory: about a kilobyte per
#: user and per streamer, plus what the simulated days log) and of simulated days
#: (the world's longest episode).
MAX_USERS = 1_000_000
MAX_STREAMERS = 100_000
MAX_DAYS = 365

__all__ = ["WorldArgs", "scaled_config"]


@dataclass
class WorldArgs:
    """The world of a run: a preset, scaled down for speed."""

    preset: str = field(default="default", metadata={"help": f"world preset: {sorted(PRESETS)}"})
    n_users: int = field(default=5000, metadata={"help": "users at the start (0: the preset's)"})
    n_streamers: int = field(
        default=400, metadata={"help": "streamers at the start (0: the preset's)"}
    )

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset={self.preset!r} is unknown; allowed: {sorted(PRESETS)}")
        for name, most in (("n_users", MAX_USERS), ("n_streamers", MAX_STREAMERS)):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= most:
                raise ValueError(
                    f"{name}={value!r} is invalid: must be an integer in [0, {most:_}] "
                    f"(0: the preset's; more does not fit in memory)"
                )

    def overrides(self, preset: str | None = None) -> dict[str, Any]:
        """Dotted config overrides that scale ``preset`` (default: this world's)."""
        return scale_overrides(preset or self.preset, self.n_users, self.n_streamers)

    def online_overrides(self, preset: str | None = None) -> dict[str, Any]:
        """:meth:`overrides` with episodes starting at :data:`ONLINE_START_HOUR`: the
        world of evaluation, of alignment's request pool and of sweeps."""
        return {**self.overrides(preset), "start_hour": ONLINE_START_HOUR}

    def config(self, preset: str | None = None, **more: Any) -> EnvConfig:
        """The scaled config of ``preset`` (default: this world's) with ``more`` overrides."""
        return make_config(preset or self.preset, **{**self.overrides(preset), **more})


def scale_overrides(preset: str, n_users: int, n_streamers: int) -> dict[str, Any]:
    """Overrides that give ``preset`` ``n_users`` users and ``n_streamers`` streamers
    (0: unchanged), with the daily arrivals of new ones scaled in proportion."""
    base = make_config(preset)
    out: dict[str, Any] = {}
    if n_users:
        ratio = n_users / base.users.n_users
        out["users.n_users"] = n_users
        out["users.new_users_per_day"] = base.users.new_users_per_day * ratio
    if n_streamers:
        ratio = n_streamers / base.streamers.n_streamers
        out["streamers.n_streamers"] = n_streamers
        out["streamers.new_streamers_per_day"] = base.streamers.new_streamers_per_day * ratio
    return out


def scaled_config(preset: str, n_users: int, n_streamers: int, **more: Any) -> EnvConfig:
    return make_config(preset, **{**scale_overrides(preset, n_users, n_streamers), **more})
