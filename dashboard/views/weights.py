"""Reward weights: re-score a run under new weights, the sweep's Pareto front with the
nearest swept policy, and a quick alignment-and-evaluation on the small preset."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from agents.align.pareto import pareto_mask
from dashboard.charts import pareto_chart, ranked_bars
from dashboard.data import (
    best_contender,
    front_from_results,
    nearest_swept,
    pareto_points,
    privileged_policies,
    rescore,
    sweep_rate,
    sweep_table,
)
from dashboard.quick import QuickAlignArgs, quick_align, quick_align_ready
from dashboard.views.common import current_run, empty_results, presets_of, results, run_notice
from liveenv.objectives import DEFAULT_WEIGHTS, OBJECTIVES

#: Slider range per objective: 0 to this multiple of its default weight (or twice the
#: largest weight the run's sweep tried, if more).
RANGE = 20.0
#: Slider steps per default weight.
STEPS = 20


def slider_max(name: str, sweep: pd.DataFrame | None) -> float:
    """Upper end of ``name``'s slider: ``RANGE`` times its default weight, or twice the
    largest weight the sweep gave it."""
    top = RANGE * DEFAULT_WEIGHTS[name]
    if sweep is not None and f"w_{name}" in sweep:
        top = max(top, 2.0 * float(sweep[f"w_{name}"].max()))
    step = DEFAULT_WEIGHTS[name] / STEPS
    return round(step * round(top / step), 10)


def weight_sliders(sweep: pd.DataFrame | None) -> dict[str, float]:
    cols = st.columns(len(OBJECTIVES))
    out = {}
    for col, name in zip(cols, OBJECTIVES, strict=True):
        default = DEFAULT_WEIGHTS[name]
        out[name] = col.slider(
            name,
            0.0,
            slider_max(name, sweep),
            default,
            default / STEPS,
            key=f"w_{name}",
            format="%.3f",
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
    sweep = sweep_table(run.path)
    weights = weight_sliders(sweep)
    preset = presets_of(run)[0]
    summary = results(run, preset)["summary"]
    _rescored(rescore(summary, weights), preset)
    _pareto(sweep, summary, weights)
    _quick(run, weights)


def _rescored(scored: pd.DataFrame, preset: str) -> None:
    best = best_contender(scored)
    refs = privileged_policies() & set(scored["policy"])
    left, right = st.columns([2, 3])
    left.metric(
        "best policy under these weights",
        best["policy"],
        f"{best['weighted return']:.3f} per impression",
    )
    if refs:
        left.caption(
            f"{', '.join(sorted(refs))}: a privileged reference (it reads the world's true "
            "expected utilities), shown for scale but never counted as the best policy."
        )
    left.dataframe(
        scored,
        hide_index=True,
        width="stretch",
        column_config={"weighted return": st.column_config.NumberColumn(format="%.3f")},
    )
    bars = scored.rename(columns={"weighted return": "mean"})
    right.altair_chart(
        ranked_bars(
            bars, scored["policy"].tolist(), "", "weighted return per impression", best["policy"]
        ),
        width="stretch",
    )
    right.caption(
        f"Evaluated on `{preset}`, re-scored under the weights above (exact: the reward is "
        f"linear in the objective rates). Red: the best policy."
    )


def _pareto(sweep: pd.DataFrame | None, summary: pd.DataFrame, weights: dict[str, float]) -> None:
    st.subheader("Trade-offs: the Pareto front")
    c = st.columns(2)
    x = c[0].selectbox("x axis", OBJECTIVES, index=OBJECTIVES.index("watch_time"))
    y = c[1].selectbox("y axis", OBJECTIVES, index=OBJECTIVES.index("gift"))
    if sweep is not None:
        nearest = nearest_swept(sweep, weights)
        points = pareto_points(sweep, x, y, nearest)
        x_name, y_name = sweep_rate(sweep, x)[1], sweep_rate(sweep, y)[1]
        st.caption(
            f"Each point is the generator aligned to one weight vector of the sweep "
            f"(the same numbers as `figures/sweep_pareto.png`); points that coincide share "
            f"a label. Nearest to your weights: **{points.loc[nearest, 'name']}**."
        )
    else:
        points = _policy_points(summary, x, y)
        x_name, y_name = x, y
        st.caption(
            "This run has no sweep (`liveenv sweep`): the points are its evaluated "
            "policies instead."
        )
    st.altair_chart(
        pareto_chart(points, x, y, f"{x_name} per impression", f"{y_name} per impression"),
        width="stretch",
    )
    shown = points[["label", "name", "x", "y", "front", "role"]].rename(
        columns={"label": "#", "name": "weights", "x": x_name, "y": y_name, "front": "on the front"}
    )
    shown["#"] = points["number"].astype(str)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            x_name: st.column_config.NumberColumn(format="%.4f"),
            y_name: st.column_config.NumberColumn(format="%.4f"),
        },
    )


def _policy_points(summary: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    points = front_from_results(summary).rename(columns={"policy": "name", x: "x", y: "y"})
    points = points[["name", "x", "y"]].assign(role="policy")
    points["number"] = range(1, len(points) + 1)
    points["label"] = points["name"]
    points["front"] = pareto_mask(points[["x", "y"]].to_numpy())
    return points


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
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if c != "policy"
        },
    )
    st.caption(
        f"A quick look, not a verdict: one simulated day, {int(steps)} requests per policy, "
        f"{int(iterations)} alignment iterations. The interval treats the requests of that "
        "day as independent, so it is narrower than the day-to-day spread; for a real "
        "comparison run `liveenv align --weights ...` then `liveenv evaluate` on several "
        "seeds."
    )
