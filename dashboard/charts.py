"""The dashboard's charts, as plain functions that return Altair charts (no Streamlit),
so their order, labels and scales are tested like any other function.

They share a few rules that keep a chart readable at laptop width:

* policies are always listed in one order, the ranked table's, and drawn as
  horizontal bars so that every name is shown in full;
* legends go under the chart with unlimited label width, never over the marks;
* numbers on axes and in tooltips are formatted (``.3~g``), never raw floats;
* an interval is drawn from ``lo`` to ``hi`` (the caller clips what cannot be
  negative at 0, see :func:`dashboard.data.with_intervals`).
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

NUMBER = ".3~g"
LEGEND = alt.Legend(orient="bottom", columns=4, labelLimit=0, title=None)
#: pixels per bar of a horizontal bar chart
BAR_PX = 24
#: width of all panels of a faceted chart together: fits beside the policy names in the
#: main column of a 1400-px window with the sidebar open
PANELS_PX = 720
#: every policy name, whole (Vega drops labels it finds too close or too long)
POLICY_AXIS = alt.Axis(labelLimit=0, labelOverlap=False)

__all__ = ["group_bars", "lines", "pareto_chart", "ranked_bars", "stacked_area"]


def _tooltip(fields: Sequence[str], numbers: Sequence[str]) -> list[alt.Tooltip]:
    return [alt.Tooltip(f, format=NUMBER) if f in numbers else alt.Tooltip(f) for f in fields]


def ranked_bars(
    frame: pd.DataFrame, order: Sequence[str], value: str, title: str, highlight: str = ""
) -> alt.LayerChart:
    """One horizontal bar per policy (``frame``: ``policy``, ``mean``, optional ``lo``,
    ``hi``), top to bottom in ``order``, with its interval when it has one."""
    data = frame.assign(highlight=frame["policy"] == highlight) if highlight else frame
    y = alt.Y("policy:N", sort=list(order), title=None, axis=POLICY_AXIS)
    x = alt.X("mean:Q", title=title, axis=alt.Axis(format=NUMBER, tickCount=8))
    color = (
        alt.condition("datum.highlight", alt.value("#e45756"), alt.value("#4c78a8"))
        if highlight
        else alt.value("#4c78a8")
    )
    numbers = [c for c in ("mean", "lo", "hi") if c in data]
    base = alt.Chart(data).encode(y=y)
    bars = base.mark_bar().encode(x=x, color=color, tooltip=_tooltip(["policy", *numbers], numbers))
    layers: list[alt.Chart] = [bars]
    if {"lo", "hi"} <= set(data.columns):
        layers.append(base.mark_rule(color="black").encode(x="lo:Q", x2="hi:Q"))
    return alt.layer(*layers).properties(height=alt.Step(BAR_PX))


def group_bars(
    frame: pd.DataFrame, order: Sequence[str], groups: Sequence[str], value: str, group: str
) -> alt.FacetChart:
    """``frame`` (``policy``, ``group``, ``mean``, optional ``lo``, ``hi``): a panel per
    group in ``groups`` order, one horizontal bar per policy in ``order``."""
    numbers = [c for c in ("mean", "lo", "hi") if c in frame]
    base = alt.Chart().encode(
        y=alt.Y("policy:N", sort=list(order), title=None, axis=POLICY_AXIS),
    )
    bars = base.mark_bar().encode(
        x=alt.X("mean:Q", title=value, axis=alt.Axis(format=NUMBER, tickCount=5)),
        color=alt.Color("policy:N", sort=list(order), legend=None),
        tooltip=_tooltip(["policy", "group", *numbers], numbers),
    )
    layers: list[alt.Chart] = [bars]
    if {"lo", "hi"} <= set(frame.columns):
        layers.append(base.mark_rule(color="black").encode(x="lo:Q", x2="hi:Q"))
    width = max(120, min(280, PANELS_PX // max(len(groups), 1)))
    return (
        alt.layer(*layers, data=frame)
        .properties(width=width, height=alt.Step(BAR_PX))
        .facet(column=alt.Column("group:N", sort=list(groups), title=group))
        .resolve_scale(x="shared")
    )


def pareto_chart(points: pd.DataFrame, x: str, y: str, x_title: str, y_title: str) -> alt.Chart:
    """``points`` (``label``, ``x``, ``y``, ``role``, ``front``): each point with a short
    label (the caller merges labels of points that coincide), the front joined."""
    pad = alt.Scale(zero=False, padding=40, nice=False)
    drawn = ["pretrained", "policy", "swept", "nearest to your weights"]  # the last on top
    points = points.sort_values("role", key=lambda r: r.map(drawn.index), kind="stable")
    base = alt.Chart(points).encode(
        x=alt.X("x:Q", title=x_title, scale=pad, axis=alt.Axis(format=NUMBER, tickCount=8)),
        y=alt.Y(
            "y:Q", title=y_title, scale=pad, axis=alt.Axis(format=NUMBER, titleLimit=0, tickCount=6)
        ),
    )
    colors = {
        "nearest to your weights": "#e45756",
        "swept": "#4c78a8",
        "pretrained": "#9d9d9d",
        "policy": "#4c78a8",
    }
    roles = [r for r in colors if r in set(points["role"])]
    dots = base.mark_circle(size=110, opacity=0.9).encode(
        color=alt.Color(
            "role:N",
            scale=alt.Scale(domain=roles, range=[colors[r] for r in roles]),
            legend=LEGEND,
        ),
        tooltip=_tooltip(["label", "name", "x", "y", "front"], ["x", "y"]),
    )
    line = base.transform_filter("datum.front").mark_line(strokeDash=[4, 3]).encode(order="x:Q")
    # labels point away from the nearer edge of the plot, so none is clipped
    left = base.transform_filter("datum.side == 'left'").mark_text(dx=9, dy=-9, align="left")
    right = base.transform_filter("datum.side == 'right'").mark_text(dx=-9, dy=-9, align="right")
    labels = [m.encode(text="label:N") for m in (left, right)]
    return alt.layer(line, dots, *labels).properties(height=380)


def lines(frame: pd.DataFrame, x_title: str, y_title: str) -> alt.Chart:
    """``frame`` (``x``, ``series``, ``value``): a line per series, the legend under it."""
    return (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("x:Q", title=x_title),
            y=alt.Y("value:Q", title=y_title, axis=alt.Axis(format=NUMBER)),
            color=alt.Color("series:N", legend=LEGEND),
            tooltip=["series", alt.Tooltip("x:Q", format=NUMBER), "value"],
        )
        .properties(height=300)
    )


def stacked_area(
    frame: pd.DataFrame, order: Sequence[str], x_title: str, y_title: str
) -> alt.Chart:
    """``frame`` (``x``, ``series``, ``value``): areas stacked in ``order`` (bottom
    first), so the top edge is the total."""
    colors = ["#f58518", "#4c78a8", "#72b7b2", "#e45756", "#54a24b"][: len(order)]
    return (
        alt.Chart(frame)
        .mark_area()
        .encode(
            x=alt.X("x:Q", title=x_title),
            y=alt.Y("value:Q", title=y_title, stack="zero"),
            color=alt.Color(
                "series:N",
                sort=list(order),
                scale=alt.Scale(domain=list(order), range=colors),
                legend=LEGEND,
            ),
            order=alt.Order("rank:Q"),
            tooltip=["x", "series", "value"],
        )
        .transform_calculate(rank=f"indexof({list(order)!r}, datum.series)")
        .properties(height=300)
    )
