from __future__ import annotations

import pytest

from liveenv import make_config


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
