"""Playback: step through one user's session under a chosen policy."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from agents.run.model_stages import available_policies, run_policies
from agents.run.rundir import RunDir
from dashboard.charts import NUMBER
from dashboard.data import busiest_users, playback
from dashboard.views.common import current_run, world_of_run
from liveenv.objectives import OBJECTIVES, as_weight_vector
from liveenv.presets import PRESETS
from policies.registry import baseline_names

ACTIONS = ("like", "comment", "follow", "gift")


@st.cache_resource(show_spinner="loading the policy ...", max_entries=8)
def _policy(run_path: str, name: str) -> object:
    run = None if name in baseline_names() else RunDir(run_path)
    return run_policies(run, [name])[name]


@st.cache_data(show_spinner="playing the policy ...", max_entries=16)
def _play(
    run_path: str, name: str, preset: str, n_users: int, n_streamers: int, seed: int, steps: int
) -> pd.DataFrame:
    from agents.run.world import scaled_config

    config = scaled_config(preset, n_users, n_streamers, start_hour=19.0)
    return playback(_policy(run_path, name), config, seed, steps)


def render() -> None:
    run = current_run()
    st.header("Playback")
    st.caption(
        "One user's requests under a policy: what was recommended, what the user did, "
        "and the reward vector of each impression."
    )
    world = world_of_run(run)
    names = list(available_policies(RunDir(run.path)))
    c = st.columns(4)
    name = c[0].selectbox("policy", names, index=names.index("popular"), key="play_policy")
    presets = [p for p in PRESETS if p != "large"]
    preset = c[1].selectbox(
        "preset", presets, index=presets.index(world.preset) if world.preset in presets else 0
    )
    seed = int(c[2].number_input("seed", 0, 10_000, 0, key="play_seed"))
    steps = int(
        c[3].select_slider("requests simulated", [300, 600, 1000, 2000], 600, key="play_steps")
    )
    frame = _play(
        str(run.path), name, preset, world.n_users or 3000, world.n_streamers or 300, seed, steps
    )
    users = busiest_users(frame)
    user = st.selectbox(
        "user (most requests first)",
        users,
        format_func=lambda u: f"user {u} ({int((frame['user_id'] == u).sum())} requests)",
    )
    session = frame[frame["user_id"] == user].reset_index(drop=True)
    i = st.slider("request", 1, len(session), 1, key="play_request") - 1 if len(session) > 1 else 0
    _one_request(session.iloc[i], len(session), i)
    st.subheader("The whole session")
    st.dataframe(
        session_table(session, i),
        hide_index=True,
        width="stretch",
        column_config={
            "reward": st.column_config.NumberColumn(format="%.3f"),
            "viewers": st.column_config.NumberColumn(format="%d"),
        },
    )


def clock(hour: float) -> str:
    """``19.14`` -> ``19:08`` (hours past midnight of the first day; later days wrap)."""
    minutes = round(float(hour) * 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def what_happened(row: pd.Series) -> str:
    """``watched 3.2 min; like, gift 5.0`` or ``swiped away``."""
    if row["click"] <= 0:
        return "swiped away"
    done = [a if a != "gift" else f"gift {row['gift']:.1f}" for a in ACTIONS if row[a] > 0]
    return f"watched {row['watch_time']:.1f} min" + (f"; {', '.join(done)}" if done else "")


def session_table(session: pd.DataFrame, current: int) -> pd.DataFrame:
    """One readable row per request of a session, the one on screen marked."""
    return pd.DataFrame(
        {
            "": ["▶" if k == current else "" for k in range(len(session))],
            "step": session["step"],
            "time": session["hour"].map(clock),
            "rooms live": session["live_rooms"],
            "streamer": session["streamer"],
            "cohort": session["streamer_cohort"],
            "phase": session["phase"],
            "viewers": session["viewers"].round().astype(int),
            "followed": session["followed"],
            "rank": [
                f"{r} of {n}"
                for r, n in zip(session["oracle_rank"], session["live_rooms"], strict=True)
            ],
            "history": session["history_len"],
            "what the user did": session.apply(what_happened, axis=1),
            "reward": session["reward"],
        }
    )


def _one_request(row: pd.Series, n: int, i: int) -> None:
    st.markdown(
        f"**Request {i + 1} of {n}** at {clock(row['hour'])}, user cohort "
        f"`{row['user_cohort']}`, {row['history_len']} past visits in the history, "
        f"{row['live_rooms']} rooms live."
    )
    left, mid, right = st.columns(3)
    left.markdown("**Recommended**")
    left.write(
        f"streamer {row['streamer']} ({row['streamer_cohort']}), room in its "
        f"{row['phase']} phase, {int(row['viewers']):,} viewers"
        f"{', followed by the user' if row['followed'] else ''}"
    )
    left.metric("rank by true expected utility", f"{row['oracle_rank']} of {row['live_rooms']}")
    mid.markdown("**What the user did**")
    mid.write(what_happened(row))
    mid.metric("weighted reward", f"{row['reward']:.3f}")
    right.markdown("**Reward vector (weight x feedback)**")
    w = as_weight_vector(None)
    parts = pd.DataFrame(
        {
            "objective": list(OBJECTIVES),
            "contribution": [float(row[m]) * float(w[k]) for k, m in enumerate(OBJECTIVES)],
        }
    )
    right.altair_chart(contribution_chart(parts), width="stretch")


def contribution_chart(parts: pd.DataFrame) -> alt.Chart:
    """One horizontal bar per objective, in the objectives' order."""
    return (
        alt.Chart(parts)
        .mark_bar()
        .encode(
            y=alt.Y("objective:N", sort=list(OBJECTIVES), title=None),
            x=alt.X(
                "contribution:Q",
                title="weight x feedback",
                axis=alt.Axis(format=NUMBER),
                scale=alt.Scale(domainMin=0),
            ),
            tooltip=["objective", alt.Tooltip("contribution:Q", format=NUMBER)],
        )
        .properties(height=alt.Step(24))
    )
