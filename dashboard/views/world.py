"""World: live rooms over simulated time, one room's drifting content and SID, cohorts."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard.charts import lines, stacked_area
from dashboard.views.common import current_run, tokenizer_file, world_of_run
from dashboard.world_trace import (
    WorldTrace,
    busiest_rooms,
    cohort_shares,
    live_by_phase,
    room_drift,
    trace_world,
)
from liveenv.presets import PRESETS

LIVE_PRESETS = [p for p in PRESETS if p != "large"]


@st.cache_data(show_spinner="simulating the world ...", max_entries=8)
def _trace(
    preset: str,
    n_users: int,
    n_streamers: int,
    hours: float,
    start_hour: float,
    seed: int,
    tokenizer: str | None,
) -> WorldTrace:
    from agents.run.world import scaled_config

    config = scaled_config(preset, n_users, n_streamers, start_hour=start_hour)
    return trace_world(config, hours, seed, tokenizer)


def render() -> None:
    run = current_run()
    st.header("World")
    st.caption(
        "A small world simulated live: the rooms of the recommender's room table at "
        "every 30-s tick, under the most-popular policy."
    )
    world = world_of_run(run)
    c = st.columns(5)
    preset = c[0].selectbox(
        "preset",
        LIVE_PRESETS,
        index=LIVE_PRESETS.index(world.preset) if world.preset in LIVE_PRESETS else 0,
    )
    hours = c[1].slider("simulated hours", 0.5, 4.0, 1.5, 0.5, key="world_hours")
    start = c[2].slider("start hour", 0, 23, 19, key="world_start")
    n_users = c[3].number_input(
        "users", 500, 20_000, min(world.n_users or 3000, 20_000), 500, key="world_users"
    )
    seed = c[4].number_input("seed", 0, 10_000, 0, key="world_seed")
    tok = tokenizer_file(run)
    trace = _trace(
        preset,
        int(n_users),
        max(int(n_users) // 10, 50),
        float(hours),
        float(start),
        int(seed),
        str(tok) if tok else None,
    )
    _overview(trace)
    _drift(trace, tok is not None)


def _overview(trace: WorldTrace) -> None:
    rooms = trace.rooms
    last = rooms[rooms["time_h"] == rooms["time_h"].max()]
    m = st.columns(4)
    m[0].metric("rooms live now", len(last))
    m[1].metric("viewers now", f"{int(last['viewers'].sum()):,}")
    m[2].metric("new streamers live", int(last["new_streamer"].sum()))
    m[3].metric("requests served", f"{int(trace.requests['requests'].sum()):,}")
    left, right = st.columns(2)
    left.subheader("Live rooms by lifecycle phase")
    phases = live_by_phase(trace)
    long = phases.rename_axis("x").reset_index().melt("x", var_name="series", value_name="value")
    left.altair_chart(
        stacked_area(long, list(phases.columns), "hours simulated", "rooms live"),
        width="stretch",
    )
    left.caption(
        f"Stacked: the top edge is every live room ({int(phases.iloc[-1].sum())} at the end, "
        "the number above)."
    )
    right.subheader("Viewers of the busiest rooms")
    top = busiest_rooms(trace, 8)
    viewers = rooms[rooms["room_id"].isin(top)].pivot_table(
        index="time_h", columns="room_id", values="viewers"
    )
    viewers.columns = [f"room {c}" for c in viewers.columns]
    long = viewers.rename_axis("x").reset_index().melt("x", var_name="series", value_name="value")
    right.altair_chart(lines(long.dropna(), "hours simulated", "viewers"), width="stretch")
    st.subheader("Requests by user cohort")
    st.bar_chart(cohort_shares(trace), x_label="hours", y_label="requests per 15 min")


def _drift(trace: WorldTrace, has_tokenizer: bool) -> None:
    st.subheader("One room's content over its broadcast")
    rooms = busiest_rooms(trace, 15)
    if not rooms:
        st.write("No room stayed live long enough; simulate more hours.")
        return
    room = st.selectbox("room", rooms, format_func=lambda r: f"room {r}", key="world_room")
    drift = room_drift(trace, room)
    left, right = st.columns(2)
    left.line_chart(
        drift.set_index("time_h")["similarity_to_start"],
        x_label="hours",
        y_label="similarity to its start",
    )
    left.caption("Cosine similarity of each 30-s content segment to the room's first one.")
    color = "sid:N" if has_tokenizer else "time_h:Q"
    chart = (
        alt.Chart(drift)
        .mark_line(point=True)
        .encode(
            x="pc1:Q",
            y="pc2:Q",
            order="time_h:Q",
            color=color,
            tooltip=["time_h", *(["sid"] if has_tokenizer else [])],
        )
    )
    right.altair_chart(chart.properties(title="content trajectory (PCA)"), width="stretch")
    if not has_tokenizer:
        st.caption("No tokenizer in this run: SIDs appear after `liveenv tokenize`.")
        return
    changes = drift[drift["sid_changed"] | (drift.index == 0)][["time_h", "sid"]]
    st.write(
        f"SID of room {room}: {drift['sid'].nunique()} distinct over "
        f"{len(drift)} ticks; it changed {int(drift['sid_changed'].sum())} times."
    )
    st.dataframe(
        changes.rename(columns={"time_h": "hours simulated"}),
        hide_index=True,
        width="stretch",
        column_config={"hours simulated": st.column_config.NumberColumn(format="%.2f")},
    )
