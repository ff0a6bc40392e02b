"""Typed, validated configuration of the world and the environment.

Every numeric field carries its allowed range in its metadata; construction
checks them all and a bad value raises ``ValueError`` naming the field, the
value and the range. Configs round-trip through JSON (always) and YAML (when
PyYAML is installed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liveenv.atomic import atomic_write_bytes
from liveenv.objectives import DEFAULT_WEIGHTS, as_weight_vector

INF = math.inf


def _num(
    default: float, lo: float, hi: float = INF, *, integer: bool = False, doc: str = ""
) -> Any:
    """A numeric dataclass field whose allowed closed range is ``[lo, hi]``."""
    return field(default=default, metadata={"range": (lo, hi), "integer": integer, "doc": doc})


def _validate(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            continue  # validated by its own __post_init__
        if "range" not in f.metadata:
            continue
        lo, hi = f.metadata["range"]
        kind = "an integer" if f.metadata["integer"] else "a number"
        ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        )
        if ok and f.metadata["integer"]:
            ok = float(value) == int(value)
        if not ok or not (lo <= value <= hi) or (isinstance(value, float) and math.isnan(value)):
            raise ValueError(f"{name}={value!r} is invalid: must be {kind} in [{lo}, {hi}]")


@dataclass(frozen=True)
class StreamerConfig:
    """Streamers, their broadcasts (live rooms) and the content of each room."""

    n_streamers: int = _num(800, 1, 10_000_000, integer=True, doc="streamers at the start")
    new_streamers_per_day: float = _num(20.0, 0, doc="creators who join per simulated day")
    initial_new_share: float = _num(0.05, 0, 1, doc="share of initial streamers that are new")
    new_days: float = _num(7.0, 0, doc="a streamer is 'new' for this many days")
    broadcasts_per_day: float = _num(1.25, 0, 24, doc="mean broadcasts a streamer starts per day")
    break_mean_min: float = _num(
        20.0, 0, 1440, doc="mean break between two broadcasts of one streamer (minutes)"
    )
    duration_median_min: float = _num(134.0, 1, 1440, doc="median broadcast length (minutes)")
    duration_sigma: float = _num(0.61, 0, 5, doc="log-normal sigma of broadcast length")
    min_duration_min: float = _num(5.0, 0.5, 1440, doc="shortest broadcast (minutes)")
    max_duration_min: float = _num(1440.0, 1, 2880, doc="longest broadcast (minutes)")
    evening_share: float = _num(0.72, 0, 1, doc="share of broadcasts planned around 20:30")
    noon_share: float = _num(0.12, 0, 1, doc="share planned around 12:00 (rest: any hour)")
    n_content_types: int = _num(8, 1, 64, integer=True, doc="chatting, singing, gaming, PK...")
    content_switch_prob: float = _num(0.01, 0, 1, doc="chance per 30-s segment to switch type")
    drift_rate: float = _num(0.04, 0, 5, doc="per-segment std of drift within a type (0: none)")
    style_weight: float = _num(0.6, 0, 10, doc="weight of the streamer's own style in content")
    obs_noise: float = _num(0.03, 0, 10, doc="per-segment noise of the observed embedding")
    room_noise: float = _num(0.05, 0, 10, doc="per-broadcast noise of the observed embedding")
    quality_sigma: float = _num(0.45, 0, 5, doc="log-normal sigma of streamer quality")
    fans_quality: float = _num(
        2.0, 0, 10, doc="log fans per unit of log quality (popularity follows quality)"
    )
    fans_sigma: float = _num(1.0, 0, 5, doc="log-normal sigma of fan counts around that trend")
    warmup_share: float = _num(0.1, 0, 1, doc="first share of a broadcast that is warm-up")
    decline_start: float = _num(0.65, 0, 1, doc="share of a broadcast after which it declines")
    gift_pull_sigma: float = _num(
        0.7, 0, 5, doc="log-normal sigma of gift pull, gifts per minute watched (PK, selling)"
    )

    def __post_init__(self) -> None:
        _validate(self, "streamers.")
        if self.evening_share + self.noon_share > 1:
            raise ValueError(
                f"streamers.evening_share + noon_share = {self.evening_share + self.noon_share}"
                " is invalid: must be <= 1"
            )


@dataclass(frozen=True)
class UserConfig:
    """Viewers: interests, demographics, activity, propensities and habits."""

    n_users: int = _num(20_000, 1, 100_000_000, integer=True, doc="users at the start")
    new_users_per_day: float = _num(400.0, 0, doc="users who join per simulated day")
    initial_new_share: float = _num(0.02, 0, 1, doc="share of initial users that are new")
    new_days: float = _num(1.0, 0, doc="a user is 'new' for this many days")
    n_interest_clusters: int = _num(12, 1, 1000, integer=True, doc="latent interest clusters")
    interest_noise: float = _num(0.55, 0, 10, doc="spread of a user around its cluster")
    demographic_fidelity: float = _num(0.7, 0, 1, doc="how strongly demographics follow clusters")
    visits_per_day: float = _num(1.5, 0, 1000, doc="median visits per user per day")
    activity_sigma: float = _num(1.0, 0, 5, doc="log-normal sigma of activity (heavy tail)")
    heavy_visits_per_day: float = _num(3.0, 0, doc="users at or above this rate are 'heavy'")
    like_sigma: float = _num(1.0, 0, 5, doc="log-normal sigma of like propensity")
    comment_sigma: float = _num(1.0, 0, 5, doc="log-normal sigma of comment propensity")
    gifter_share: float = _num(0.10, 0, 1, doc="share of users who ever gift")
    interest_drift: float = _num(0.01, 0, 1, doc="std of interest drift per request")
    boredom_rate: float = _num(0.15, 0, 1, doc="how fast watched content bores a user")
    session_continue: float = _num(0.8, 0, 1, doc="base chance to ask for another room")
    max_session_requests: int = _num(40, 1, 10_000, integer=True, doc="requests per visit, at most")
    gap_mean_s: float = _num(4.0, 0, 3600, doc="mean pause between two requests of a visit")
    return_boost_max: float = _num(2.5, 1, 100, doc="largest return-rate multiplier")
    return_boost_min: float = _num(0.3, 0, 1, doc="smallest return-rate multiplier")
    return_sensitivity: float = _num(0.5, 0, 10, doc="how much satisfaction moves return rate")
    history_len: int = _num(20, 1, 1000, integer=True, doc="recent events in the observation")
    boredom_recovery_per_day: float = _num(
        1.0, 0, 1000, doc="boredom fades by exp(-rate * days away) between visits (0: never)"
    )
    follow_lapse_per_day: float = _num(
        0.3, 0, 100, doc="each follow lapses with chance 1 - exp(-rate * days away) per visit"
    )
    past_days: int = _num(
        2,
        0,
        365,
        integer=True,
        doc="days the platform ran before an episode (histories, follows, fans; see "
        "liveenv.past); 0: a blank start",
    )
    past_sharpness: float = _num(
        4.0, 0, 100, doc="how sharply the past platform's recommender follows true appeal"
    )

    def __post_init__(self) -> None:
        _validate(self, "users.")


@dataclass(frozen=True)
class ResponseConfig:
    """How a user answers one impression (see :mod:`liveenv.response`)."""

    follow_bonus: float = _num(0.35, 0, 10, doc="appeal added when the user follows the streamer")
    boredom_weight: float = _num(0.5, 0, 10, doc="appeal lost to content the user is bored of")
    quality_weight: float = _num(0.35, 0, 10, doc="appeal per unit of log streamer quality")
    phase_weight: float = _num(0.25, 0, 10, doc="appeal lost in warm-up and decline")
    click_bias: float = _num(-1.5, -20, 20, doc="click logit at zero appeal")
    click_slope: float = _num(2.5, 0, 50, doc="click logit per unit of appeal")
    bounce_bias: float = _num(1.8, -20, 20, doc="logit of leaving in the first seconds")
    bounce_slope: float = _num(3.0, 0, 50, doc="bounce logit lost per unit of appeal")
    bounce_mean_s: float = _num(5.0, 0.1, 30, doc="mean watch of a bounce (seconds)")
    leave_bias: float = _num(0.1, -20, 20, doc="leave logit at each 30-s boundary")
    leave_slope: float = _num(8.0, 0, 50, doc="leave logit lost per unit of appeal")
    gift_hold_cost: float = _num(
        0.4, 0, 10, doc="leave logit added per unit of log gift pull of the room's streamer"
    )
    like_per_min: float = _num(0.0035, 0, 10, doc="like rate per minute watched")
    comment_per_min: float = _num(0.0037, 0, 10, doc="comment rate per minute watched")
    follow_per_min: float = _num(0.0015, 0, 10, doc="follow rate per minute watched")
    gift_per_min: float = _num(0.08, 0, 10, doc="gift rate per minute for gifters")
    engagement_slope: float = _num(1.5, 0, 20, doc="interaction rates grow exp(slope*appeal)")
    max_watch_min: float = _num(240.0, 1, 1440, doc="longest single watch (minutes)")
    gift_prices: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 88, 200, 520, 1314, 3344)
    # KuaiLive: median 2, p90 88, p99 about 1,500, 44 % of gifts at the lowest price
    gift_price_probs: tuple[float, ...] = (
        0.44,
        0.12,
        0.08,
        0.07,
        0.06,
        0.07,
        0.08,
        0.035,
        0.025,
        0.015,
        0.005,
    )

    def __post_init__(self) -> None:
        _validate(self, "response.")
        prices = np.asarray(self.gift_prices, dtype=float)
        probs = np.asarray(self.gift_price_probs, dtype=float)
        if prices.ndim != 1 or prices.size == 0 or np.any(prices <= 0):
            raise ValueError(f"response.gift_prices={self.gift_prices!r}: must be positive prices")
        if probs.shape != prices.shape:
            raise ValueError(
                f"response.gift_price_probs has {probs.size} entries, gift_prices has "
                f"{prices.size}: they must have the same length"
            )
        if np.any(probs < 0) or not math.isclose(probs.sum(), 1.0, abs_tol=1e-6):
            raise ValueError(
                f"response.gift_price_probs={self.gift_price_probs!r}: must be >= 0 and sum to 1"
            )

    @property
    def max_watch_segments(self) -> int:
        return int(math.ceil(self.max_watch_min * 2))


@dataclass(frozen=True)
class EnvConfig:
    """Everything that defines one world and its Gymnasium interface."""

    streamers: StreamerConfig = field(default_factory=StreamerConfig)
    users: UserConfig = field(default_factory=UserConfig)
    response: ResponseConfig = field(default_factory=ResponseConfig)
    latent_dim: int = _num(16, 2, 512, integer=True, doc="latent interest/content width")
    obs_dim: int = _num(16, 1, 512, integer=True, doc="observed content embedding width")
    max_rooms: int = _num(256, 1, 100_000, integer=True, doc="live-room slots in the observation")
    slate_size: int = _num(1, 1, 100, integer=True, doc="rooms recommended per request")
    horizon_hours: float = _num(24.0, 1 / 60, 24 * 365, doc="simulated length of an episode")
    start_hour: float = _num(0.0, 0, 24, doc="hour of day at which an episode starts")
    reward_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    #: An action inside the action space that shows no live room (a masked slot,
    #: or a slate that repeats a slot). "skip" (the default): a no-op; the request
    #: is answered with nothing (zero feedback, so the lowest reward there is; the
    #: visit ends; ``info["invalid_action"]`` is True), so that agents and the env
    #: checkers that sample the whole action space run. "raise": refused with a
    #: ``ValueError`` (strict use: a policy that should never pick a masked slot).
    masked_action: str = "skip"
    #: "scalar": ``step`` returns the weighted reward as a float; "vector": it
    #: returns the feedback vector as a float32 array in ``reward_space``
    #: (MO-Gymnasium's convention; the ``liveenv/<Preset>-MO-v0`` ids).
    reward_mode: str = "scalar"
    #: The platform: who the users and streamers are, their interest clusters and
    #: the latent -> observed content projection are drawn from this seed, so every
    #: ``reset(seed=...)`` replays the same platform with new dynamics (arrivals,
    #: broadcasts, content, responses). ``None`` draws a new platform from the reset
    #: seed each time (domain randomisation: models must generalise across worlds).
    world_seed: int | None = 0
    preset: str = "custom"

    def __post_init__(self) -> None:
        _validate(self, "")
        vec = as_weight_vector(self.reward_weights, "reward_weights")
        object.__setattr__(
            self, "reward_weights", dict(zip(DEFAULT_WEIGHTS, vec.tolist(), strict=True))
        )
        if self.masked_action not in ("raise", "skip"):
            raise ValueError(
                f"masked_action={self.masked_action!r} is invalid: must be 'skip' or 'raise'"
            )
        if self.reward_mode not in ("scalar", "vector"):
            raise ValueError(
                f"reward_mode={self.reward_mode!r} is invalid: must be 'scalar' or 'vector'"
            )
        ws = self.world_seed
        if ws is not None and (
            isinstance(ws, bool) or not isinstance(ws, int | np.integer) or not 0 <= ws < 2**63
        ):
            raise ValueError(
                f"world_seed={ws!r} is invalid: must be None or an integer in [0, 2**63)"
            )
        if self.slate_size > self.max_rooms:
            raise ValueError(
                f"slate_size={self.slate_size} is invalid: must be <= max_rooms={self.max_rooms}"
            )

    # ----- derived values -------------------------------------------------
    @property
    def weight_vector(self) -> np.ndarray:
        return as_weight_vector(self.reward_weights)

    @property
    def horizon_s(self) -> float:
        return self.horizon_hours * 3600.0

    # ----- (de)serialisation ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvConfig:
        return _from_dict(cls, data, "")

    def replace(self, **changes: Any) -> EnvConfig:
        """A copy with top-level or dotted (``"users.n_users"``) fields changed."""
        data = self.to_dict()
        for key, value in changes.items():
            *parents, leaf = key.split(".")
            node = data
            for p in parents:
                if p not in node or not isinstance(node[p], dict):
                    raise ValueError(f"unknown config section {p!r} in {key!r}")
                node = node[p]
            if leaf not in node:
                raise ValueError(f"unknown config field {key!r}")
            node[leaf] = value
        return EnvConfig.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write as JSON, or YAML when the suffix is .yaml/.yml (atomically)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        else:
            text = json.dumps(self.to_dict(), indent=2)
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EnvConfig:
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(
                f"{path}: expected a mapping of config fields, got {type(data).__name__}"
            )
        return cls.from_dict(data)


def _from_dict(cls: type, data: dict[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown config field(s) {[prefix + u for u in unknown]}; allowed: {sorted(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        ftype = fields[name].type
        sub = {
            "StreamerConfig": StreamerConfig,
            "UserConfig": UserConfig,
            "ResponseConfig": ResponseConfig,
        }
        if isinstance(ftype, str) and ftype in sub and isinstance(value, dict):
            value = _from_dict(sub[ftype], value, f"{prefix}{name}.")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode())
