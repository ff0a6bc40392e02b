"""The online evaluation harness on a tiny world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.evaluate.episodes import BREAKDOWNS, run_episode
from agents.evaluate.online import evaluate
from agents.evaluate.tables import clip_low, figure_breakdown, figure_overall, markdown_summary
from liveenv.env import LiveStreamEnv
from liveenv.objectives import OBJECTIVES
from liveenv.presets import make_config
from policies.baselines import OraclePolicy, PopularPolicy, RandomPolicy

TINY = {"users.n_users": 2000, "streamers.n_streamers": 150, "horizon_hours": 1, "start_hour": 20}
STEPS, SEEDS = 250, (0, 1)


@pytest.fixture(scope="module")
def result():
    return evaluate(
        {"popular": PopularPolicy()},
        seeds=SEEDS,
        steps_per_seed=STEPS,
        overrides=TINY,
        progress=False,
        expected=True,
    )


def test_references_are_added_and_oracle_wins(result) -> None:
    assert result.references == {"random": "random", "oracle": "oracle"}
    overall = result.overall().set_index("policy")
    r = overall["weighted_return_mean"]
    assert r["oracle"] > r["popular"] and r["oracle"] > r["random"]
    assert result.ranking()[0] == "oracle"
    assert overall.loc["oracle", "oracle_normalised_mean"] == pytest.approx(1.0)
    assert overall.loc["random", "oracle_normalised_mean"] == pytest.approx(0.0)


def test_expected_return_and_its_normalised_score(result) -> None:
    o = result.overall().set_index("policy")
    e = o["expected_return_mean"]
    assert e["oracle"] > max(e["popular"], e["random"])
    per_imp = result.impressions.groupby(["policy", "seed"])["expected_return"]
    assert per_imp.count().eq(STEPS).all()
    assert o.loc["oracle", "expected_normalised_mean"] == pytest.approx(1.0)
    assert "expected return" in markdown_summary(result)
    imp = result.impressions  # per objective, weighted as the env's reward, it is the return
    fb = imp[[f"expected_{k}" for k in OBJECTIVES]].to_numpy()
    np.testing.assert_allclose(fb @ result.config.weight_vector, imp["expected_return"])
    assert (imp["expected_click"].between(0, 1)).all() and (fb >= 0).all()
    assert imp.groupby("policy")["expected_watch_time"].mean()["oracle"] > 0


def test_tidy_table_shape_and_counts(result) -> None:
    t = result.table
    assert set(t["policy"]) == {"popular", "random", "oracle"}
    assert set(t["breakdown"]) == {"all", *BREAKDOWNS}
    assert not t.duplicated(["policy", "seed", "breakdown", "group"]).any()
    for col in ("n_impressions", "weighted_return", *OBJECTIVES, "oracle_normalised"):
        assert col in t
    sums = t.groupby(["policy", "seed", "breakdown"])["n_impressions"].sum()
    assert (sums == STEPS).all()  # every breakdown partitions the impressions
    assert set(t.loc[t["breakdown"] == "user_cohort", "group"]) <= {"new", "light", "heavy"}
    assert set(t.loc[t["breakdown"] == "streamer_cohort", "group"]) <= {"new", "established"}
    assert set(t.loc[t["breakdown"] == "phase", "group"]) <= {"warmup", "peak", "decline"}
    assert set(t.loc[t["breakdown"] == "hour", "group"]) <= {"20", "21"}
    whole = t[t["breakdown"] == "all"]
    assert whole["gini"].between(0, 1).all() and whole["coverage"].between(0, 1).all()
    assert t.loc[t["breakdown"] != "all", "gini"].isna().all()
    # the weighted return is the env's weights applied to the objective rates
    w = result.config.weight_vector
    np.testing.assert_allclose(whole[list(OBJECTIVES)].to_numpy() @ w, whole["weighted_return"])


def test_summary_has_cis_across_seeds(result) -> None:
    s = result.overall()
    assert (s["n_seeds"] == len(SEEDS)).all()
    assert (s["weighted_return_lo"] <= s["weighted_return_mean"]).all()
    assert (s["weighted_return_mean"] <= s["weighted_return_hi"]).all()


def test_report_files(result, tmp_path) -> None:
    paths = result.save(tmp_path)
    back = pd.read_parquet(paths["table_parquet"])
    assert len(back) == len(result.table)
    assert len(pd.read_csv(paths["table_csv"])) == len(result.table)
    md = paths["summary_md"].read_text()
    assert "| oracle |" in md and "oracle-normalised" in md and md == markdown_summary(result)
    for name in ("weighted_return", "by_user_cohort", "by_hour"):
        assert paths[name].stat().st_size > 1000


def test_seeds_reproduce_and_masks_hold() -> None:
    env = LiveStreamEnv(make_config("default", **TINY))
    a, ea = run_episode(RandomPolicy(), env, seed=3, max_steps=80)
    b, eb = run_episode(RandomPolicy(), env, seed=3, max_steps=80)
    pd.testing.assert_frame_equal(a, b)
    assert ea.tolist() == eb.tolist() and ea.sum() == 80
    c, _ = run_episode(RandomPolicy(), env, seed=4, max_steps=80)
    assert not a.equals(c)


def test_episode_stops_at_truncation() -> None:
    env = LiveStreamEnv(make_config("default", **{**TINY, "horizon_hours": 0.05}))
    frame, _ = run_episode(PopularPolicy(), env, seed=0, max_steps=None)
    assert 0 < len(frame) < 1000


def test_without_references_and_bad_inputs() -> None:
    res = evaluate(
        {"pop": PopularPolicy()},
        seeds=(0,),
        steps_per_seed=20,
        overrides=TINY,
        add_references=False,
        progress=False,
    )
    assert res.table["oracle_normalised"].isna().all() and res.references == {}
    assert np.isnan(res.overall()["weighted_return_lo"]).all()  # one seed: no interval
    with pytest.raises(ValueError, match="slate_size"):
        evaluate(
            {"p": PopularPolicy(slate_size=2)},
            seeds=(0,),
            steps_per_seed=5,
            overrides=TINY,
            progress=False,
        )
    with pytest.raises(ValueError, match="seeds"):
        evaluate({"p": PopularPolicy()}, seeds=(), overrides=TINY, progress=False)
    with pytest.raises(ValueError, match="workers=0"):
        evaluate({"p": PopularPolicy()}, seeds=(0,), overrides=TINY, progress=False, workers=0)


def test_existing_references_are_reused() -> None:
    res = evaluate(
        {"rnd": RandomPolicy(name="rnd"), "orc": OraclePolicy(name="orc")},
        seeds=(0,),
        steps_per_seed=20,
        overrides=TINY,
        progress=False,
    )
    assert res.references == {"random": "rnd", "oracle": "orc"}
    assert set(res.table["policy"]) == {"rnd", "orc"}


class CountingPopular(PopularPolicy):
    """Counts the episodes it starts (the harness resets a policy per episode)."""

    def reset(self, seed: int | None = None) -> None:
        self.episodes = getattr(self, "episodes", 0) + 1
        super().reset(seed)


def test_episode_store_resumes_without_replaying(tmp_path) -> None:
    kwargs = dict(
        steps_per_seed=30,
        overrides=TINY,
        progress=False,
        add_references=False,
        episode_dir=tmp_path / "episodes",
    )
    first = evaluate({"pop": CountingPopular()}, seeds=(0, 1), **kwargs)
    again = CountingPopular()
    more = evaluate({"pop": again}, seeds=(0, 1, 2), **kwargs)
    assert again.episodes == 1  # seeds 0 and 1 came from the store
    pd.testing.assert_frame_equal(
        more.table[more.table["seed"] < 2].reset_index(drop=True),
        first.table.reset_index(drop=True),
    )
    fresh = evaluate({"pop": PopularPolicy()}, seeds=(0, 1, 2), **{**kwargs, "episode_dir": None})
    pd.testing.assert_frame_equal(more.table, fresh.table)


def test_figures_clip_intervals_at_zero_and_keep_legends_off_the_bars(result) -> None:
    """With two seeds the Student-t interval of a rate can reach far below 0; the figures
    show it from 0 (the rate cannot be negative) and put the legend beside the axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.container import ErrorbarContainer

    assert clip_low("weighted_return", -3.0) == 0.0 and clip_low("gift", -1.0) == 0.0
    assert clip_low("oracle_normalised", -0.5) == -0.5  # a score can be negative
    for fig in (figure_overall(result), figure_breakdown(result, "phase")):
        ax = fig.axes[0]
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        segs = [
            np.reshape(s, (-1, 2)) for c in bars for col in c.lines[2] for s in col.get_segments()
        ]
        lows = [s[:, 1].min() for s in segs if len(s)]
        assert lows and min(lows) >= 0.0
        assert ax.get_ylim()[0] == 0.0
    fig = figure_breakdown(result, "phase")
    FigureCanvasAgg(fig).draw()
    ax, legend = fig.axes[0], fig.axes[0].get_legend()
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # beside, not on top
