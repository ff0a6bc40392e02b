"""Interaction logs: record, read and generate Parquet logs of impressions.

See ``docs/LOG_SCHEMA.md`` for the columns and their mapping to KuaiLive.
"""

from __future__ import annotations

from agents.logs.behaviour import PlatformPolicy, PopularPolicy, RandomPolicy, resolve_policy
from agents.logs.generate import generate_log, make_log_env, run_policy
from agents.logs.reader import (
    log_config,
    log_parts,
    read_log,
    read_log_arrays,
    read_log_table,
    with_past,
)
from agents.logs.recorder import LogRecorder
from agents.logs.schema import LOG_SCHEMA, LOG_VERSION, VECTOR_COLUMNS, check_schema

__all__ = [
    "LOG_SCHEMA",
    "LOG_VERSION",
    "VECTOR_COLUMNS",
    "LogRecorder",
    "PlatformPolicy",
    "PopularPolicy",
    "RandomPolicy",
    "check_schema",
    "generate_log",
    "log_config",
    "log_parts",
    "make_log_env",
    "read_log",
    "read_log_arrays",
    "read_log_table",
    "resolve_policy",
    "run_policy",
    "with_past",
]
