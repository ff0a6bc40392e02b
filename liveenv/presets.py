"""Named world presets and their registered Gymnasium ids."""

from __future__ import annotations

from collections.abc import Callable

from liveenv.config import EnvConfig


def _default() -> EnvConfig:
    return EnvConfig(preset="default")


def _cold_start() -> EnvConfig:
    return EnvConfig(preset="cold_start").replace(
        **{
            "users.initial_new_share": 0.3,
            "users.new_users_per_day": 6000.0,
            "streamers.initial_new_share": 0.3,
            "streamers.new_streamers_per_day": 200.0,
        }
    )


def _fast_drift() -> EnvConfig:
    return EnvConfig(preset="fast_drift").replace(
        **{"streamers.content_switch_prob": 0.12, "streamers.drift_rate": 0.12}
    )


def _no_drift() -> EnvConfig:
    return EnvConfig(preset="no_drift").replace(
        **{"streamers.content_switch_prob": 0.0, "streamers.drift_rate": 0.0}
    )


def _short_lifecycle() -> EnvConfig:
    return EnvConfig(preset="short_lifecycle").replace(
        **{
            "streamers.duration_median_min": 30.0,
            "streamers.duration_sigma": 0.5,
            "streamers.broadcasts_per_day": 4.0,
        }
    )


def _gift_tradeoff() -> EnvConfig:
    """Streamers differ in gift pull (PK battles, selling): rooms that draw many
    gifts per minute hold viewers less, so gifts and watch time favour different rooms."""
    return EnvConfig(preset="gift_tradeoff").replace(
        **{"streamers.gift_pull_sigma": 1.0, "response.gift_hold_cost": 0.6}
    )


def _large() -> EnvConfig:
    return EnvConfig(preset="large", max_rooms=512).replace(
        **{
            "users.n_users": 1_000_000,
            "users.new_users_per_day": 20_000.0,
            "streamers.n_streamers": 20_000,
            "streamers.new_streamers_per_day": 500.0,
            "response.max_watch_min": 120.0,
        }
    )


PRESETS: dict[str, Callable[[], EnvConfig]] = {
    "default": _default,
    "cold_start": _cold_start,
    "fast_drift": _fast_drift,
    "no_drift": _no_drift,
    "short_lifecycle": _short_lifecycle,
    "gift_tradeoff": _gift_tradeoff,
    "large": _large,
}

#: Registered Gymnasium id of each preset.
ENV_IDS: dict[str, str] = {
    name: "liveenv/" + "".join(p.capitalize() for p in name.split("_")) + "-v0" for name in PRESETS
}


#: Registered multi-objective id of each preset: ``step`` returns the feedback
#: vector (``reward_mode="vector"``), as MO-Gymnasium expects.
MO_ENV_IDS: dict[str, str] = {name: i.removesuffix("-v0") + "-MO-v0" for name, i in ENV_IDS.items()}


def make_config(preset: str = "default", **overrides: object) -> EnvConfig:
    """The config of a named preset, with optional dotted-field overrides."""
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is unknown; allowed presets: {sorted(PRESETS)}")
    cfg = PRESETS[preset]()
    return cfg.replace(**overrides) if overrides else cfg
