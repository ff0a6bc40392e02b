"""Stress tests: cold-start and lifecycle breakdowns across presets."""

from __future__ import annotations

import streamlit as st

from dashboard.charts import group_bars
from dashboard.data import (
    BREAKDOWN_LABELS,
    cold_start_gap,
    group_order,
    interval_note,
    ranking,
    stress_table,
)
from dashboard.views.common import current_run, empty_results, presets_of, results, run_notice

BREAKDOWNS = ("user_cohort", "streamer_cohort", "phase")
METRICS = ("weighted_return", "expected_return", "click", "watch_time", "gift")


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
    all_presets = presets_of(run)
    presets = st.multiselect("presets", all_presets, default=all_presets)
    c = st.columns(2)
    breakdown = c[0].radio(
        "breakdown", BREAKDOWNS, format_func=BREAKDOWN_LABELS.get, horizontal=True
    )
    metric = c[1].selectbox("metric", METRICS)
    table = stress_table(run.path, breakdown, metric, presets)
    if table.empty:
        st.write("Choose at least one preset.")
        return
    order = ranking(results(run, all_presets[0])["summary"])
    order += sorted(set(table["policy"]) - set(order))
    groups = group_order(breakdown, table["group"].unique().tolist())
    label = BREAKDOWN_LABELS[breakdown]
    for preset in presets:
        st.markdown(f"**{preset}**")
        mine = table[table["preset"] == preset]
        st.altair_chart(
            group_bars(mine, [p for p in order if p in set(mine["policy"])], groups, metric, label)
        )
    st.caption(
        f"Policies ranked as on the Policies page ({all_presets[0]}). "
        + interval_note(table, metric)
    )
    st.subheader("Table")
    wide = table.pivot_table(index=["preset", "group"], columns="policy", values="mean")
    wide = wide[[p for p in order if p in wide.columns]]
    rows = [(p, g) for p in presets for g in groups if (p, g) in wide.index]
    wide = wide.reindex(rows)
    st.dataframe(
        wide,
        width="stretch",
        column_config={p: st.column_config.NumberColumn(format="%.3f") for p in wide.columns},
    )
    gap = cold_start_gap(run.path, metric)
    if not gap.empty:
        st.subheader("Cold start: new users' return as a share of all users'")
        st.dataframe(
            gap.reindex([p for p in order if p in gap.index]),
            width="stretch",
            column_config={p: st.column_config.NumberColumn(format="%.2f") for p in gap.columns},
        )
