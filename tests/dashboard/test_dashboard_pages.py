"""Every dashboard page through Streamlit's AppTest, on the bundled sample run:
no exception, its key elements, and a widget change that changes what it shows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from streamlit.testing.v1 import AppTest

from agents.run.cli import main
from dashboard.data import SAMPLE_RUN, has_results

torch.set_num_threads(1)
APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TIMEOUT = 180
pytestmark = pytest.mark.skipif(
    not has_results(SAMPLE_RUN), reason="dashboard/sample_run has no results"
)


def page(name: str, **state: object) -> AppTest:
    """An AppTest of one page (a ``render()`` of dashboard.views), session state preset."""
    script = f"from dashboard.views import {name}\n{name}.render()\n"
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _charts(at: AppTest) -> int:
    return len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart"))


def _chart_data(at: AppTest, index: int) -> list[dict[str, object]]:
    """The rows of the data set of chart ``index`` (an Altair chart: Arrow IPC bytes)."""
    charts = [*at.get("vega_lite_chart"), *at.get("arrow_vega_lite_chart")]
    dataset = charts[index].proto.datasets[0].data.data
    return pa.ipc.open_stream(dataset).read_all().to_pylist()


def _chart_spec(at: AppTest, index: int) -> dict[str, object]:
    charts = [*at.get("vega_lite_chart"), *at.get("arrow_vega_lite_chart")]
    return json.loads(charts[index].proto.spec)


def _y_sorts(spec: object) -> list[list[str]]:
    """Every explicit sort of a ``y`` (or faceted) encoding in a Vega-Lite spec."""
    found: list[list[str]] = []
    if isinstance(spec, dict):
        y = spec.get("encoding", {}).get("y") if isinstance(spec.get("encoding"), dict) else None
        if isinstance(y, dict) and isinstance(y.get("sort"), list):
            found.append(y["sort"])
        for value in spec.values():
            found += _y_sorts(value)
    elif isinstance(spec, list):
        for value in spec:
            found += _y_sorts(value)
    return found


def _nearest(at: AppTest) -> str:
    return next(c.value for c in at.caption if "Nearest to your weights" in c.value)


def test_the_app_opens_on_the_sample_run_with_its_title() -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["world_hours"] = 0.5
    at.session_state["world_users"] = 1000
    at.run()
    _ok(at)
    assert at.sidebar.title[0].value == "LiveEnv workbench"
    assert "sample run" in at.sidebar.caption[0].value
    assert at.header[0].value == "World"  # the default page


def test_world_shows_rooms_cohorts_and_a_drifting_room() -> None:
    at = page("world", world_hours=0.5, world_users=1000)
    _ok(at)
    labels = [m.label for m in at.metric]
    assert labels == ["rooms live now", "viewers now", "new streamers live", "requests served"]
    assert _charts(at) >= 3
    assert any("One room's content" in s.value for s in at.subheader)
    assert any("SID of room" in m.value for m in at.markdown)  # the sample run has a tokenizer
    live = int(at.metric[0].value)  # the stacked phase chart ends at the same number
    areas = _chart_data(at, 0)
    last = max(r["x"] for r in areas)
    assert sum(r["value"] for r in areas if r["x"] == last) == live
    assert {r["series"] for r in areas} >= {"peak"}
    assert _chart_spec(at, 0)["encoding"]["y"]["stack"] == "zero"
    served = at.metric[3].value
    at.slider(key="world_hours").set_value(1.0).run()
    _ok(at)
    assert at.metric[3].value != served  # more simulated hours, more requests


def test_policies_shows_tables_and_breakdowns_side_by_side() -> None:
    at = page("policies")
    _ok(at)
    assert [s.value for s in at.subheader][:2] == ["Overall", "weighted_return per impression"]
    overall = at.dataframe[0].value
    assert {"random", "oracle", "pretrained"} <= set(overall["policy"])
    assert _charts(at) == 2
    ranked = overall["policy"].tolist()  # the bars in the table's order, every name shown
    assert _y_sorts(_chart_spec(at, 0)) and all(o == ranked for o in _y_sorts(_chart_spec(at, 0)))
    assert all(o == ranked for o in _y_sorts(_chart_spec(at, 1)))
    assert at.dataframe[1].value.columns.tolist() == ranked  # the cohort table too
    for chart in (0, 1):  # weighted return cannot be negative: nor can its interval
        rows = _chart_data(at, chart)
        assert all(r["lo"] is None or r["lo"] >= 0 for r in rows)
    at.multiselect[0].set_value(["random", "oracle"]).run()
    _ok(at)
    assert set(at.dataframe[0].value["policy"]) == {"random", "oracle"}
    at.selectbox[2].set_value("phase").run()
    assert at.dataframe[1].value.index.tolist() == ["warmup", "peak", "decline"]


def test_reward_weights_rescore_and_show_the_front() -> None:
    at = page("weights")
    _ok(at)
    assert [s.label for s in at.slider] == [
        "click",
        "watch_time",
        "like",
        "comment",
        "follow",
        "gift",
    ]
    before = at.dataframe[0].value.set_index("policy")["weighted return"]
    assert before.idxmax() == "oracle" and at.metric[0].value != "oracle"  # never the best
    assert at.metric[0].value == before.drop("oracle").idxmax()
    assert at.slider(key="w_gift").max >= 0.2  # a gift weight of 0.2 can be set
    assert any("Pareto" in s.value for s in at.subheader) and _charts(at) >= 2
    # the sample's sweep (`make sample-run`, the demo budget): watch_time 0.02 / 0.1 / 0.5
    assert "**watch_time=0.1**" in _nearest(at)
    front = [r for r in _chart_data(at, -1) if r["role"] == "nearest to your weights"]
    assert [r["name"] for r in front] == ["watch_time=0.1"]  # highlighted in the chart
    at.slider(key="w_watch_time").set_value(0.5).run()
    _ok(at)
    after = at.dataframe[0].value.set_index("policy")["weighted return"]
    assert (after - before.reindex(after.index)).abs().max() > 1e-6
    assert "**watch_time=0.5**" in _nearest(at)  # a larger weight: another swept policy
    front = [r for r in _chart_data(at, -1) if r["role"] == "nearest to your weights"]
    assert [r["name"] for r in front] == ["watch_time=0.5"]
    quick = [c.value for c in at.caption if c.value.startswith("Not possible here")]
    assert quick and "reward_model.pt" in quick[0]  # the sample run keeps no training files


def test_stress_tests_compare_presets() -> None:
    at = page("stress")
    _ok(at)
    table = at.dataframe[0].value
    presets = set(table.index.get_level_values("preset"))
    assert {"default", "cold_start"} <= presets
    assert _charts(at) == len(presets)  # a chart per preset
    for chart in range(len(presets)):  # every policy named on its axis, none dropped
        spec = _chart_spec(at, chart)
        assert set(_y_sorts(spec)[0]) == set(table.columns)
        assert '"labelOverlap": false' in json.dumps(spec)
    at.radio[0].set_value("phase").run()
    _ok(at)
    groups = set(at.dataframe[0].value.index.get_level_values("group"))
    assert groups <= {"warmup", "peak", "decline"}


def test_playback_steps_through_one_users_session() -> None:
    at = page("playback", play_steps=300)
    _ok(at)
    assert [m.label for m in at.metric] == ["rank by true expected utility", "weighted reward"]
    first = at.markdown[0].value
    assert first.startswith("**Request 1 of")
    if at.slider(key="play_request").max > 1:
        at.slider(key="play_request").set_value(2).run()
        _ok(at)
        assert at.markdown[0].value.startswith("**Request 2 of") and at.markdown[0].value != first
    session = at.dataframe[0].value
    assert {"streamer", "time", "what the user did", "reward"} <= set(session.columns)
    assert session["time"].str.fullmatch(r"\d\d:\d\d").all()  # 19:08, not 19.140000
    assert len(session.columns) <= 13  # fits a laptop's width


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run with a pretrained generator, a reward model and results (CLI, ~15 s)."""
    run = str(tmp_path_factory.mktemp("dash") / "run")
    common = ["--run-dir", run, "--no-progress"]
    for argv in (
        ["log", "--n-users", "600", "--n-streamers", "60", "--days", "0.04", "--start-hour", "20"],
        ["tokenize", "--epochs", "1", "--codebook-sizes", "4", "4"],
        [
            "pretrain",
            "--max-steps",
            "8",
            "--batch-size",
            "16",
            "--d-model",
            "16",
            "--n-head",
            "2",
            "--n-layer",
            "1",
            "--warmup-steps",
            "1",
            "--eval-every",
            "4",
        ],
        ["reward", "--epochs", "1", "--hidden", "8", "--fusion-hidden", "8", "--no-figure"],
        [
            "evaluate",
            "--seeds",
            "0",
            "--steps",
            "40",
            "--policies",
            "random",
            "oracle",
            "pretrained",
            "--no-expected",
        ],
    ):
        assert main([*argv, *common]) == 0, argv
    return Path(run)


def test_reward_weights_run_a_quick_alignment_with_progress(trained_run: Path) -> None:
    at = page("weights", run_dir=str(trained_run))
    _ok(at)
    assert "sample run" not in " ".join(i.value for i in at.info)  # the run itself is shown
    assert [b.label for b in at.button] == ["align and evaluate"]
    at.number_input[0].set_value(4)  # alignment iterations (the smallest)
    at.number_input[1].set_value(100)  # evaluation requests
    at.slider(key="w_gift").set_value(0.1)
    at.button[0].click().run()
    _ok(at)
    bar = at.get("progress")
    assert len(bar) == 1 and bar[0].proto.value == 100 and bar[0].proto.text == "done"
    table = at.dataframe[-1].value
    assert {"pretrained", "aligned"} <= set(table["policy"])
    assert {"weighted_return", "gift"} <= set(table.columns)
