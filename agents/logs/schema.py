"""The Parquet schema of an interaction log: one row per exposure (impression).

A request answered with a slate of ``K`` rooms gives ``K`` rows (one per slate
position); the rows of rooms the user did not enter have ``is_click = false``
and zero feedback (KuaiLive's "negative" file). Clicked rows carry the watch
time and the interactions that followed (KuaiLive's click, like, comment and
gift files). ``docs/LOG_SCHEMA.md`` describes every column and the mapping.

Every column carries a ``doc`` entry in its field metadata; every file carries
:data:`LOG_VERSION` and the environment's config in its schema metadata.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from liveenv.world import ROOM_STAT_COLUMNS

#: Bumped when a column is added, removed, renamed or retyped.
LOG_VERSION = "1"

_F32_LIST = pa.list_(pa.float32())

#: (name, type, doc) of every column, in file order.
COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("episode", pa.int32(), "episode index within the recording run (0 at the first reset)"),
    (
        "request_id",
        pa.int64(),
        "request index within the run; the K rows of a slate share it; negative: an event "
        "of the platform's past (before the episode), kept so histories include it",
    ),
    ("user_id", pa.int64(), "user id (KuaiLive user_id)"),
    ("streamer_id", pa.int64(), "streamer id of the shown room (KuaiLive streamer_id)"),
    ("live_id", pa.int64(), "id of the broadcast (live room) shown (KuaiLive live_id)"),
    ("timestamp_ms", pa.int64(), "simulated request time in ms since the epoch of the world"),
    ("day", pa.int32(), "simulated day: floor(timestamp / 24 h)"),
    ("hour", pa.int8(), "hour of day of the request, 0..23"),
    ("slot", pa.int32(), "position of the room in the observation's room table (the action)"),
    ("slate_pos", pa.int8(), "position in the slate, 0 = top"),
    ("is_click", pa.bool_(), "the user entered the room"),
    ("watch_time_ms", pa.int64(), "watch time in ms (0 when not clicked)"),
    ("like", pa.bool_(), "the user liked during the watch"),
    ("comment", pa.bool_(), "the user commented during the watch"),
    ("follow", pa.bool_(), "the user followed the streamer during the watch"),
    ("gift_price", pa.float32(), "price of the gift sent (platform units), 0 when none"),
    ("reward", pa.float32(), "weighted feedback of this row: the env's reward on the clicked row"),
    (
        "policy_propensity",
        pa.float64(),
        "P(behaviour policy picks this room at this slate position | rooms above it); NaN if unknown",
    ),
    ("policy", pa.string(), "name of the behaviour policy"),
    ("user_cohort", pa.string(), "new / light / heavy at the time of the request"),
    ("streamer_cohort", pa.string(), "new / established at the time of the request"),
    ("phase", pa.string(), "lifecycle phase of the room: warmup / peak / decline"),
    ("followed", pa.bool_(), "the user followed the room's streamer before the request"),
    ("content_emb", _F32_LIST, "observed 30-s content embedding of the room (obs_dim)"),
    ("pooled_emb", _F32_LIST, "observed pooled streamer embedding (obs_dim)"),
    ("room_stats", _F32_LIST, "observed room statistics, liveenv.world.ROOM_STAT_COLUMNS order"),
    ("user_feat", _F32_LIST, "observed user features (liveenv.population.USER_FEATURES)"),
)

#: Columns holding one float32 vector per row (stacked into 2-D arrays by the reader).
VECTOR_COLUMNS: tuple[str, ...] = ("content_emb", "pooled_emb", "room_stats", "user_feat")
#: Columns holding short category strings.
STRING_COLUMNS: tuple[str, ...] = ("policy", "user_cohort", "streamer_cohort", "phase")


def _field(name: str, dtype: pa.DataType, doc: str) -> pa.Field:
    return pa.field(name, dtype, nullable=False, metadata={"doc": doc})


#: The schema of every part file (field docs in the metadata of each field).
LOG_SCHEMA: pa.Schema = pa.schema(
    [_field(*c) for c in COLUMNS], metadata={"liveenv.log_version": LOG_VERSION}
)


def column_doc(name: str) -> str:
    """The documentation of column ``name``."""
    return LOG_SCHEMA.field(name).metadata[b"doc"].decode()


def check_schema(schema: pa.Schema, source: str = "log") -> None:
    """Raise ``ValueError`` naming the first column of :data:`LOG_SCHEMA` that
    ``schema`` lacks or types differently. Extra columns are allowed."""
    for expected in LOG_SCHEMA:
        idx = schema.get_field_index(expected.name)
        if idx < 0:
            raise ValueError(
                f"{source}: column {expected.name!r} is missing; a liveenv log (version "
                f"{LOG_VERSION}) has columns {LOG_SCHEMA.names}"
            )
        got = schema.field(idx).type
        if not got.equals(expected.type):
            raise ValueError(
                f"{source}: column {expected.name!r} has type {got}, expected {expected.type}"
            )


def room_emb_dim(obs: dict[str, Any]) -> int:
    """Width of the content (= pooled) embedding in the observation's room rows, which
    a log splits into ``content_emb | pooled_emb | room_stats``."""
    return (obs["rooms"].shape[-1] - len(ROOM_STAT_COLUMNS)) // 2


__all__ = [
    "COLUMNS",
    "LOG_SCHEMA",
    "LOG_VERSION",
    "STRING_COLUMNS",
    "VECTOR_COLUMNS",
    "check_schema",
    "column_doc",
    "room_emb_dim",
]
