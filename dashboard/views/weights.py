"""Reward weights: re-score a run under new weights, the sweep's Pareto front with the
nearest swept policy, and a quick alignment-and-evaluation on the small preset."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from agents.align.pareto import pareto_mask
from dashboard.data import (
    front_from_results,
    nearest_swept,
    rescore,
    short_labels,
    sweep_table,
)
from dashboard.quick import QuickAlignArgs, quick_align, quick_align_ready
from dashboard.views.common import current_run, empty_results, presets_of, results, run_notice
from liveenv.objectives import DEFAULT_WEIGHTS, OBJECTIVES

#: Slider range per objective: 0 to this multiple of its default weight.
RANGE = 5.0


def weight_sliders() -> dict[str, float]:
    cols = st.columns(len(OBJECTIVES))
    out = {}
    for col, name in zip(cols, OBJECTIVES, strict=True):
        default = DEFAULT_WEIGHTS[name]
        out[name] = col.slider(
            name, 0.0, RANGE * default, default, default / 10, key=f"w_{name}", format="%.3f"
        )
    return out


def render() -> None:
    run = current_run()
    st.header("Reward weights")
    run_notice(run)
    if empty_results(run):
        return
    st.caption(
        "The reward is the weighted sum of the objectives of an impression. Move the "
        "weights: the run's policies are re-scored, and the sweep shows which aligned "
        "policy fits them best."
    )
    weights = weight_sliders()
    preset = presets_of(run)[0]
    summary = results(run, preset)["summary"]
    scored = rescore(summary, weights)
    best = scored.iloc[0]
    left, right = st.columns([2, 3])
    left.metric(
        "best policy under these weights",
        best["policy"],
        f"{best['weighted return']:.3f} per impression",
    )
    left.dataframe(scored.round(3), hide_index=True, width="stretch")
    right.bar_chart(
        scored.set_index("policy")["weighted return"],
        y_label=f"weighted return per impression on {preset}",
    )
    _pareto(run, summary, weights)
    _quick(run, weights)


def _pareto(run: object, summary: pd.DataFrame, weights: dict[str, float]) -> None:
    st.subheader("Trade-offs: the Pareto front")
    sweep = sweep_table(run.path)  # type: ignore[attr-defined]
    c = st.columns(2)
    x = c[0].selectbox("x axis", OBJECTIVES, index=OBJECTIVES.index("watch_time"))
    y = c[1].selectbox("y axis", OBJECTIVES, index=OBJECTIVES.index("gift"))
    if sweep is not None:
        points = sweep.assign(name=short_labels(sweep))
        nearest = nearest_swept(sweep, weights)
        points["role"] = np.where(points.index == nearest, "nearest to your weights", "swept")
        st.caption(
            f"Each point is the generator aligned to one weight vector of the sweep. "
            f"Nearest to your weights: **{points.loc[nearest, 'name']}**."
        )
    else:
        points = front_from_results(summary).rename(columns={"policy": "name"})
        points["role"] = "policy"
        st.caption(
            "This run has no sweep (`liveenv sweep`): the points are its evaluated "
            "policies instead."
        )
    points["front"] = pareto_mask(points[[x, y]].to_numpy())
    base = alt.Chart(points).encode(
        x=alt.X(f"{x}:Q", title=f"{x} per impression"),
        y=alt.Y(f"{y}:Q", title=f"{y} per impression"),
    )
    dots = base.mark_circle(size=90).encode(
        color=alt.Color("role:N"),
        tooltip=["name", x, y, "front"],
        stroke=alt.condition("datum.front", alt.value("black"), alt.value(None)),
    )
    line = base.transform_filter("datum.front").mark_line(strokeDash=[4, 3]).encode(order=f"{x}:Q")
    labels = base.mark_text(dx=8, dy=-8, fontSize=10).encode(text="name:N")
    st.altair_chart((line + dots + labels).properties(height=360), width="stretch")


def _quick(run: object, weights: dict[str, float]) -> None:
    st.subheader("Quick alignment with these weights")
    ready = quick_align_ready(run.path)  # type: ignore[attr-defined]
    if ready:
        st.caption(f"Not possible here: {ready}")
        return
    c = st.columns(3)
    iterations = c[0].number_input("alignment iterations", 4, 200, 12, 4)
    steps = c[1].number_input("evaluation requests", 100, 2000, 300, 100)
    go = c[2].button("align and evaluate", type="primary")
    if not go:
        st.caption(
            "Aligns the run's pretrained generator to the weights above on the small "
            "preset, then evaluates it beside the pretrained one (a minute or two)."
        )
        return
    bar = st.progress(0.0, text="starting")
    args = QuickAlignArgs(weights=weights, iterations=int(iterations), eval_steps=int(steps))
    table = quick_align(run.path, args, lambda f, text: bar.progress(min(f, 1.0), text=text))  # type: ignore[attr-defined]
    bar.progress(1.0, text="done")
    st.dataframe(table.round(3), hide_index=True, width="stretch")
