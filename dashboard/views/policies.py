"""Policies: the results tables and breakdowns of a run, side by side."""

from __future__ import annotations

import streamlit as st

from dashboard.data import BREAKDOWN_LABELS, breakdown_table, overall_table
from dashboard.views.common import (
    current_run,
    describe_world,
    empty_results,
    presets_of,
    results,
    run_notice,
)
from liveenv.objectives import OBJECTIVES

METRICS = ("weighted_return", "expected_return", *OBJECTIVES)


def render() -> None:
    run = current_run()
    st.header("Policies")
    run_notice(run)
    if empty_results(run):
        return
    c = st.columns(3)
    presets = presets_of(run)
    preset = c[0].selectbox("evaluated on", presets)
    res = results(run, preset)
    summary = res["summary"]
    metric = c[1].selectbox("metric", [m for m in METRICS if f"{m}_mean" in summary])
    breakdown = c[2].selectbox(
        "breakdown", list(BREAKDOWN_LABELS), format_func=BREAKDOWN_LABELS.get
    )
    all_policies = overall_table(summary)["policy"].tolist()
    chosen = st.multiselect("policies", all_policies, default=all_policies)
    meta = res["meta"]
    if meta:
        st.caption(describe_world(meta))
    left, right = st.columns(2)
    overall = overall_table(summary, chosen)
    left.subheader("Overall")
    left.dataframe(overall.round(3), hide_index=True, width="stretch")
    right.subheader(f"{metric} per impression")
    per = summary[(summary["breakdown"] == "all") & summary["policy"].isin(chosen)]
    right.bar_chart(per.set_index("policy")[f"{metric}_mean"], y_label=metric)
    table = breakdown_table(summary, breakdown, metric, chosen)
    left, right = st.columns(2)
    left.subheader(f"{metric} by {BREAKDOWN_LABELS[breakdown]}")
    left.dataframe(table.round(3), width="stretch")
    right.subheader(" ")
    right.bar_chart(table, stack=False, x_label=BREAKDOWN_LABELS[breakdown], y_label=metric)
    with st.expander("summary as written by the run (Markdown)"):
        st.markdown(res["summary_md"])
