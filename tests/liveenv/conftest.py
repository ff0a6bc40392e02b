from __future__ import annotations

import pytest

from liveenv import make_config

#: Gift pull on: rooms that draw more gifts per minute hold viewers less.
GIFT_PULL = {"streamers.gift_pull_sigma": 1.0, "response.gift_hold_cost": 0.5}


@pytest.fixture(params=[{}, GIFT_PULL], ids=["default", "gift_pull"])
def world_overrides(request) -> dict[str, float]:
    """Config overrides of the two response worlds the exactness tests run in:
    the default one (every gift pull 1) and one whose streamers differ in gift pull."""
    return request.param


@pytest.fixture
def tiny_config():
    """A small world that builds in milliseconds and still has live rooms."""
    return make_config(
        "default",
        **{
            "users.n_users": 3000,
            "streamers.n_streamers": 300,
            "horizon_hours": 2.0,
            "max_rooms": 128,
        },
    )
