from __future__ import annotations

import pytest

from liveenv import EnvConfig, UserConfig, as_weight_vector, make_config
from liveenv.config import ResponseConfig


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("users.n_users", -5, r"users\.n_users=-5 is invalid: must be an integer in \[1, "),
        (
            "users.gifter_share",
            1.5,
            r"users\.gifter_share=1\.5 is invalid: must be a number in \[0, 1\]",
        ),
        ("streamers.content_switch_prob", -0.1, r"streamers\.content_switch_prob=-0\.1"),
        ("max_rooms", 0, r"max_rooms=0 is invalid"),
        ("users.n_users", 2.5, r"must be an integer"),
        ("horizon_hours", float("nan"), r"horizon_hours=nan is invalid"),
    ],
)
def test_bad_values_name_field_value_and_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        make_config("default", **{field: value})


def test_unknown_preset_lists_the_allowed_ones():
    with pytest.raises(
        ValueError, match=r"preset='nope' is unknown; allowed presets: \['cold_start'"
    ):
        make_config("nope")


def test_reward_weights_wrong_length_or_names():
    with pytest.raises(ValueError, match=r"got 2 weights .* expected exactly 6"):
        as_weight_vector([1.0, 2.0])
    with pytest.raises(ValueError, match=r"unknown objective name\(s\) \['clicks'\]"):
        EnvConfig(reward_weights={"clicks": 1.0})
    w = as_weight_vector({"gift": 0.5})
    assert w[5] == 0.5 and w[0] == as_weight_vector(None)[0]


def test_sub_configs_validate_on_their_own():
    with pytest.raises(ValueError, match=r"users\.history_len=0"):
        UserConfig(history_len=0)
    with pytest.raises(ValueError, match="sum to 1"):
        ResponseConfig(gift_price_probs=(0.5,) * 11)
    with pytest.raises(ValueError, match="unknown config field"):
        make_config("default", **{"users.n_userz": 3})


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_save_load_round_trip(tmp_path, suffix):
    cfg = make_config("cold_start", **{"reward_weights": {"gift": 0.3}})
    path = tmp_path / f"cfg{suffix}"
    cfg.save(path)
    assert EnvConfig.load(path) == cfg
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_presets_differ_where_they_should():
    assert make_config("no_drift").streamers.drift_rate == 0.0
    assert (
        make_config("fast_drift").streamers.drift_rate > make_config("default").streamers.drift_rate
    )
    large = make_config("large")
    assert large.users.n_users >= 1_000_000 and large.streamers.n_streamers >= 20_000
    assert (
        make_config("cold_start").users.initial_new_share
        > make_config("default").users.initial_new_share
    )
