"""Policies: the results tables and breakdowns of a run, every chart in the ranked
table's order."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.charts import group_bars, ranked_bars
from dashboard.data import (
    BREAKDOWN_LABELS,
    breakdown_table,
    group_order,
    interval_note,
    intervals,
    overall_table,
    ranking,
)
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
    preset = c[0].selectbox("evaluated on", presets_of(run))
    res = results(run, preset)
    summary = res["summary"]
    metric = c[1].selectbox("metric", [m for m in METRICS if f"{m}_mean" in summary])
    breakdown = c[2].selectbox(
        "breakdown", list(BREAKDOWN_LABELS), format_func=BREAKDOWN_LABELS.get
    )
    all_policies = ranking(summary)
    chosen = st.multiselect("policies", all_policies, default=all_policies)
    if res["meta"]:
        st.caption(describe_world(res["meta"]))
    order = [p for p in all_policies if p in chosen]
    _overall(summary, metric, order)
    _breakdown(summary, metric, breakdown, order)
    with st.expander("summary as written by the run (Markdown)"):
        st.markdown(res["summary_md"])


def _overall(summary: pd.DataFrame, metric: str, order: list[str]) -> None:
    st.subheader("Overall")
    table = overall_table(summary, order).drop(columns="impressions", errors="ignore")
    st.dataframe(_interval_text(table), hide_index=True, width="stretch", column_config=_formats())
    st.subheader(f"{metric} per impression")
    bars = intervals(summary, metric, policies=order)
    st.altair_chart(ranked_bars(bars, order, metric, metric), width="stretch")
    st.caption(f"Ranked as in the table above. {interval_note(bars, metric)}")


def _interval_text(table: pd.DataFrame) -> pd.DataFrame:
    """``lo`` and ``hi`` as one readable column (``-`` where one seed gives none)."""
    if not {"lo", "hi"} <= set(table.columns):
        return table
    if table["lo"].isna().all():  # one seed: no interval at all
        return table.drop(columns=["lo", "hi"])
    text = [
        "-" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]"
        for lo, hi in zip(table["lo"], table["hi"], strict=True)
    ]
    out = table.drop(columns=["lo", "hi"])
    out.insert(out.columns.get_loc("weighted return") + 1, "95 % interval", text)
    return out


def _formats() -> dict[str, object]:
    number = st.column_config.NumberColumn(format="%.3f")
    cols = ("weighted return", "oracle-normalised", *OBJECTIVES, "gini", "coverage")
    return {c: number for c in cols}


def _breakdown(summary: pd.DataFrame, metric: str, breakdown: str, order: list[str]) -> None:
    label = BREAKDOWN_LABELS[breakdown]
    st.subheader(f"{metric} by {label}")
    table = breakdown_table(summary, breakdown, metric, order)
    st.dataframe(
        table,
        width="stretch",
        column_config={p: st.column_config.NumberColumn(format="%.3f") for p in table.columns},
    )
    long = intervals(summary, metric, breakdown, order)
    groups = group_order(breakdown, long["group"].unique().tolist())
    if breakdown == "hour":
        wide = table.copy()
        wide.index = wide.index.astype(int)
        st.line_chart(wide, x_label="hour of day", y_label=metric)
        return
    st.altair_chart(group_bars(long, order, groups, metric, label))
    st.caption(
        f"One panel per {label}, policies ranked as in the table. {interval_note(long, metric)}"
    )
