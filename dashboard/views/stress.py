"""Stress tests: cold-start and lifecycle breakdowns across presets."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard.data import BREAKDOWN_LABELS, cold_start_gap, stress_table
from dashboard.views.common import current_run, empty_results, presets_of, run_notice

BREAKDOWNS = ("user_cohort", "streamer_cohort", "phase")


def render() -> None:
    run = current_run()
    st.header("Stress tests")
    run_notice(run)
    if empty_results(run):
        return
    st.caption(
        "The same policies on worlds with more newcomers (cold_start) or shorter "
        "broadcasts (short_lifecycle): who suffers, and where in a room's life."
    )
    c = st.columns(3)
    presets = c[0].multiselect("presets", presets_of(run), default=presets_of(run))
    breakdown = c[1].radio(
        "breakdown", BREAKDOWNS, format_func=BREAKDOWN_LABELS.get, horizontal=True
    )
    metric = c[2].selectbox(
        "metric", ["weighted_return", "expected_return", "click", "watch_time", "gift"]
    )
    table = stress_table(run.path, breakdown, metric, presets)
    if table.empty:
        st.write("Choose at least one preset.")
        return
    chart = (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("policy:N", title=None),
            y=alt.Y("mean:Q", title=metric),
            color="policy:N",
            column=alt.Column("group:N", title=BREAKDOWN_LABELS[breakdown]),
            row=alt.Row("preset:N"),
            tooltip=["preset", "policy", "group", "mean", "lo", "hi"],
        )
        .properties(width=120, height=160)
    )
    st.altair_chart(chart)
    st.subheader("Table")
    wide = table.pivot_table(index=["preset", "group"], columns="policy", values="mean")
    st.dataframe(wide.round(3), width="stretch")
    gap = cold_start_gap(run.path, metric)
    if not gap.empty:
        st.subheader("Cold start: new users' return as a share of all users'")
        st.dataframe(gap.round(2), width="stretch")
