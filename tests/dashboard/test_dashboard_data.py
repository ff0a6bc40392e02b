"""The dashboard's data functions: run choice, re-scoring, Pareto front, world trace, playback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from agents.align.pareto import pareto_mask
from agents.run.world import scaled_config
from dashboard.charts import ranked_bars
from dashboard.data import (
    SAMPLE_RUN,
    best_contender,
    breakdown_table,
    busiest_users,
    choose_run,
    interval_note,
    intervals,
    nearest_swept,
    overall_table,
    pareto_points,
    playback,
    privileged_policies,
    ranking,
    rescore,
    sweep_rate,
)
from dashboard.world_trace import (
    busiest_rooms,
    cohort_shares,
    live_by_phase,
    room_drift,
    trace_world,
)
from liveenv.objectives import DEFAULT_WEIGHTS, OBJECTIVES
from policies.baselines import OraclePolicy, PopularPolicy

torch.set_num_threads(1)
TINY = {"n_users": 1000, "n_streamers": 100}


def _summary() -> pd.DataFrame:
    """A summary table as agents.evaluate.online writes it: two policies, one breakdown."""
    rows = []
    for policy, scale in (("a", 1.0), ("b", 2.0)):
        base = {"policy": policy, "n_seeds": 2, "n_impressions": 100}
        rates = {f"{m}_mean": scale * (i + 1) / 10 for i, m in enumerate(OBJECTIVES)}
        ci = {
            "weighted_return_mean": scale,
            "weighted_return_lo": scale - 0.1,
            "weighted_return_hi": scale + 0.1,
            "oracle_normalised_mean": scale / 2,
        }
        rows.append({**base, "breakdown": "all", "group": "all", **rates, **ci})
        for g, v in (("heavy", 3.0), ("new", 1.0), ("light", 2.0)):
            rows.append(
                {
                    **base,
                    "breakdown": "user_cohort",
                    "group": g,
                    **rates,
                    **ci,
                    "weighted_return_mean": v * scale,
                }
            )
    return pd.DataFrame(rows)


def test_the_sample_run_is_shown_when_no_run_has_results(tmp_path: Path) -> None:
    choice = choose_run(tmp_path)
    assert choice.is_sample and choice.path == SAMPLE_RUN
    assert "has no evaluation results" in choice.note
    assert choose_run(None).is_sample


def test_rescoring_is_linear_in_the_weights() -> None:
    s = _summary()
    once = rescore(s, DEFAULT_WEIGHTS).set_index("policy")["weighted return"]
    twice = rescore(s, {k: 2 * v for k, v in DEFAULT_WEIGHTS.items()}).set_index("policy")
    assert np.allclose(twice["weighted return"], 2 * once)
    only_gift = rescore(s, dict.fromkeys(OBJECTIVES, 0.0) | {"gift": 1.0}).set_index("policy")
    assert only_gift.loc["b", "weighted return"] == pytest.approx(2 * 0.6)
    with pytest.raises(ValueError, match="unknown objective"):
        rescore(s, {"likes": 1.0})


def test_tables_keep_the_natural_order_of_groups() -> None:
    s = _summary()
    assert overall_table(s)["policy"].tolist() == ["b", "a"]
    table = breakdown_table(s, "user_cohort")
    assert table.index.tolist() == ["new", "light", "heavy"]
    assert table.loc["heavy", "b"] == 6.0


def test_pareto_front_and_nearest_swept_weights() -> None:
    pts = np.array([[1.0, 5.0], [2.0, 4.0], [1.5, 3.0], [3.0, 1.0], [0.5, 0.5]])
    assert pareto_mask(pts).tolist() == [True, True, False, True, False]
    sweep = pd.DataFrame(
        [
            {f"w_{m}": DEFAULT_WEIGHTS[m] for m in OBJECTIVES} | {"w_gift": g}
            for g in (0.005, 0.02, 0.08)
        ]
    )
    assert nearest_swept(sweep, DEFAULT_WEIGHTS) == 1
    assert nearest_swept(sweep, {"gift": 0.07}) == 2
    assert nearest_swept(sweep, {"gift": 0.0}) == 0


def test_world_trace_follows_rooms_and_their_content() -> None:
    config = scaled_config("default", **TINY, start_hour=20.0)
    trace = trace_world(config, hours=0.5, seed=0)
    rooms = trace.rooms
    # one snapshot per 30-s tick that served a request: nearly all 60 in an evening
    assert 55 <= rooms["time_h"].nunique() <= 60
    assert set(rooms["phase"]) <= {"warmup", "peak", "decline"} and (rooms["viewers"] >= 0).all()
    assert live_by_phase(trace).to_numpy().sum() == len(rooms)
    assert cohort_shares(trace).to_numpy().sum() == trace.requests["requests"].sum() > 0
    room = busiest_rooms(trace, 1)[0]
    drift = room_drift(trace, room)
    assert drift["similarity_to_start"].iloc[0] == pytest.approx(1.0)
    assert len(drift) == (rooms["room_id"] == room).sum()
    again = trace_world(config, hours=0.5, seed=0)
    pd.testing.assert_frame_equal(again.rooms, rooms)  # a seed reproduces the world


def test_playback_records_what_was_shown_and_what_happened() -> None:
    config = scaled_config("default", **TINY, start_hour=20.0)
    oracle = playback(OraclePolicy(), config, seed=0, steps=120)
    popular = playback(PopularPolicy(), config, seed=0, steps=120)
    assert len(oracle) == 120 and (oracle["oracle_rank"] == 1).all()  # greedy on true utility
    assert (popular["oracle_rank"] >= 1).all() and (
        popular["oracle_rank"] <= popular["live_rooms"]
    ).all()
    weights = np.array([DEFAULT_WEIGHTS[m] for m in OBJECTIVES])
    assert np.allclose(popular[list(OBJECTIVES)].to_numpy() @ weights, popular["reward"])
    assert (popular.loc[popular["click"] == 0, "watch_time"] == 0).all()
    users = busiest_users(popular, 3)
    counts = popular["user_id"].value_counts()
    assert counts[users[0]] == counts.max()


@pytest.mark.slow
def test_quick_alignment_runs_in_chunks_and_evaluates(tmp_path: Path) -> None:
    from agents.run.demo import DemoArgs, run_demo
    from agents.run.world import WorldArgs
    from dashboard.quick import QuickAlignArgs, quick_align, quick_align_ready

    run = tmp_path / "run"
    assert quick_align_ready(run)  # nothing trained yet: says why
    args = DemoArgs(
        world=WorldArgs(n_users=1500, n_streamers=120),
        days=0.2,
        start_hour=18.0,
        budget="tiny",
        stress_presets=(),
        skip=("align", "cascade", "cascade_coldstart", "evaluate", "sweep"),
    )
    run_demo(args, run, progress=False)
    if quick_align_ready(run):
        pytest.skip(quick_align_ready(run))
    seen: list[float] = []
    table = quick_align(
        run,
        QuickAlignArgs(weights={"gift": 0.1}, iterations=4, chunk=2, eval_steps=40),
        lambda f, _: seen.append(f),
    )
    assert set(table["policy"]) >= {"pretrained", "aligned", "random", "oracle"}
    assert seen == sorted(seen) and len(seen) >= 3  # progress after each chunk, then evaluation
    low, high = table["low (95 %)"], table["high (95 %)"]  # the quick look says how sure
    assert (low >= 0).all() and (low <= table["weighted_return"]).all()
    assert (table["weighted_return"] <= high).all()


def test_intervals_of_non_negative_quantities_start_at_zero() -> None:
    s = _summary()
    s.loc[s["policy"] == "a", "weighted_return_lo"] = -0.7  # a t-interval over two seeds
    s["oracle_normalised_lo"], s["oracle_normalised_hi"] = -0.3, 0.9
    assert (intervals(s, "weighted_return")["lo"] >= 0).all()
    assert (intervals(s, "weighted_return", "user_cohort")["lo"] >= 0).all()
    assert (overall_table(s)["lo"] >= 0).all()
    assert (intervals(s, "oracle_normalised")["lo"] == -0.3).all()  # a score can be negative
    assert "start at 0" in interval_note(intervals(s, "weighted_return"), "weighted_return")
    one_seed = intervals(s, "weighted_return").assign(lo=np.nan, hi=np.nan)
    assert "no intervals" in interval_note(one_seed, "weighted_return")


def test_tables_and_charts_share_the_ranked_order() -> None:
    s = _summary()
    assert ranking(s) == ["b", "a"] == overall_table(s)["policy"].tolist()
    assert breakdown_table(s, "user_cohort").columns.tolist() == ["b", "a"]
    chart = ranked_bars(intervals(s, "weighted_return"), ranking(s), "", "w").to_dict()
    assert chart["layer"][0]["encoding"]["y"]["sort"] == ["b", "a"]
    assert chart["layer"][0]["encoding"]["y"]["axis"]["labelOverlap"] is False


def test_the_oracle_is_never_the_best_policy() -> None:
    scored = pd.DataFrame({"policy": ["oracle", "popular", "random"], "weighted return": [3, 2, 1]})
    assert "oracle" in privileged_policies()
    assert best_contender(scored)["policy"] == "popular"


def test_pareto_points_read_the_figures_columns_and_never_overlap_labels() -> None:
    base = {f"w_{m}": DEFAULT_WEIGHTS[m] for m in OBJECTIVES}
    rows = []
    for label, gift, wt, exp_gift in (
        ("g1", 0.005, 1.0, 0.10),
        ("g2", 0.08, 1.0, 0.10),  # the same place on the plot as g1
        ("g3", 0.32, 0.5, 0.30),
        ("pretrained", 0.02, 0.9, 0.20),
    ):
        rates = {m: 0.0 for m in OBJECTIVES} | {"gift": 9.0, "watch_time": wt}
        expected = {f"expected_{m}_mean": 0.0 for m in OBJECTIVES}
        expected |= {"expected_gift_mean": exp_gift, "expected_watch_time_mean": wt}
        rows.append({"label": label, **base, "w_gift": gift, **rates, **expected})
    sweep = pd.DataFrame(rows)
    nearest = nearest_swept(sweep, DEFAULT_WEIGHTS)
    assert sweep.loc[nearest, "label"] != "pretrained"  # a reference, aligned to nothing
    points = pareto_points(sweep, "watch_time", "gift", nearest)
    assert points["y"].tolist() == [0.10, 0.10, 0.30, 0.20]  # expected rates, as the figure
    assert sweep_rate(sweep, "gift")[1] == "expected gift"
    assert points["label"].tolist() == ["1,2", "", "3", "4"]
    assert points["role"].tolist()[3] == "pretrained"


def test_weight_sliders_reach_past_the_sweep_and_ten_times_the_default() -> None:
    from dashboard.views.weights import slider_max

    assert slider_max("gift", None) >= 0.2
    sweep = pd.DataFrame({"w_gift": [0.02, 0.5]})
    assert slider_max("gift", sweep) >= 1.0
