"""Reward-weight sweeps: the grid, the tables and the Pareto front, and resuming a
sweep (or one of its cells) after an interruption without redoing finished work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_run import TINY_WORLD, build_tiny

from agents.align.grpo import align
from agents.align.pareto import (
    REFERENCE,
    nearby_groups,
    pareto_figure,
    pareto_mask,
    steering,
    summarise,
)
from agents.align.sweep import DONE, RESULT, SweepArgs, cell_align_args, cell_specs, sweep
from liveenv.objectives import OBJECTIVES

FAST_ALIGN = {
    "pool_requests": 48,
    "pool_steps_per_seed": 48,
    "eval_requests": 8,
    "iterations": 2,
    "requests_per_iter": 8,
    "group_size": 4,
    "behaviour": "random",
    "figures": False,
    "log_every": 1,
    "checkpoint_every": 1,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return build_tiny(tmp_path_factory.getbasetemp() / "align-tiny")


def _args(tiny, out: Path, **changes) -> SweepArgs:
    base = dict(
        generator=str(tiny.generator),
        reward_model=str(tiny.reward_model),
        out=str(out),
        grid={"gift": "0.01;0.5"},
        seeds=(0,),
        eval_seeds=(0,),
        eval_steps=25,
        overrides=dict(TINY_WORLD),
        align=dict(FAST_ALIGN),
        workers=1,
        progress=False,
    )
    base.update(changes)
    return SweepArgs(**base)


def test_grid_and_list_give_the_weight_vectors() -> None:
    args = SweepArgs(generator="g", weights=("click=1",), grid={"gift": "0.1,0.2", "like": "1;2"})
    vecs = args.weight_vectors()
    assert len(vecs) == 1 + 4
    g, lk = OBJECTIVES.index("gift"), OBJECTIVES.index("like")
    assert sorted((v[g], v[lk]) for v in vecs[1:]) == [(0.1, 1), (0.1, 2), (0.2, 1), (0.2, 2)]
    specs = cell_specs(SweepArgs(generator="g", grid={"gift": "0.1,0.2"}, seeds=(0, 1)))
    assert specs[0]["label"] == REFERENCE and len(specs) == 1 + 4
    assert len({s["dir"] for s in specs}) == len(specs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grid": {"gifts": "1"}}, "unknown objective"),
        ({"grid": {"gift": "a"}}, "numbers"),
        ({"method": "ppo"}, "SweepArgs.method"),
        ({"pareto_x": "views"}, "pareto_x"),
        ({"align": {"itterations": 3}}, "unknown alignment argument"),
        ({}, "no weight vector"),
    ],
)
def test_bad_sweeps_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SweepArgs(generator="g", **changes)


def test_summary_steering_and_pareto_front() -> None:
    rows = []
    for w, seed in [(w, s) for w in (0.01, 0.02, 0.05, 0.1) for s in (0, 1)]:
        rates = {k: 0.1 for k in OBJECTIVES} | {
            "gift": 0.2 + 3 * w + 0.001 * seed,
            "watch_time": 2.0 - 4 * w,
        }
        rows.append(
            {
                "label": f"g{w}",
                "seed": seed,
                **{f"w_{k}": 1.0 for k in OBJECTIVES},
                "w_gift": w,
                **rates,
                "weighted_return": 1.0,
                "expected_return": 1.0,
                "oracle_normalised": 0.5,
                "expected_normalised": 0.5,
                "kl_ref": w,
            }
        )
    summary = summarise(pd.DataFrame(rows))
    assert len(summary) == 4 and (summary["n_seeds"] == 2).all()
    steer = steering(summary)
    gift = steer[steer["objective"] == "gift"].iloc[0]
    assert gift["spearman"] == pytest.approx(1.0) and gift["monotone"]
    assert gift["max_kl_ref"] == pytest.approx(0.1)
    assert gift["rate"] == "gift"  # no expected columns: the realised rates
    assert pareto_mask(np.array([[1, 3], [2, 2], [3, 1], [1.5, 1]])).tolist() == [
        True,
        True,
        True,
        False,
    ]
    # with the chosen rooms' expected feedback, steering reads it, not the noisy draws
    noisy = [
        r | {"gift": 0.5 - r["w_gift"], **{f"expected_{k}": r[k] for k in OBJECTIVES}} for r in rows
    ]
    gift = steering(summarise(pd.DataFrame(noisy))).set_index("objective").loc["gift"]
    assert gift["rate"] == "expected_gift" and gift["monotone"]
    assert gift["spearman"] == pytest.approx(1.0) and gift["realised_rates"].startswith("0.49")


def test_sweep_writes_tables_and_resumes_without_redoing_cells(tiny, tmp_path: Path) -> None:
    args = _args(tiny, tmp_path / "sweep")
    paths = sweep(args)
    results = pd.read_csv(paths["results"])
    assert len(results) == 3 and set(results["label"]) >= {REFERENCE}
    assert {"kl_ref", "oracle_normalised", *OBJECTIVES} <= set(results.columns)
    assert paths["pareto"].is_file() and "Reward-weight sweep" in paths["markdown"].read_text()
    cells = sorted((tmp_path / "sweep" / "cells").iterdir())
    stamps = {c.name: (c / RESULT).stat().st_mtime_ns for c in cells}
    # an interruption inside the last cell: its result and marker never got written
    victim = next(c for c in cells if c.name != REFERENCE)
    (victim / DONE).unlink()
    (victim / RESULT).unlink()
    again = pd.read_csv(sweep(args)["results"])
    for c in cells:
        if c != victim:
            assert (c / RESULT).stat().st_mtime_ns == stamps[c.name]  # not recomputed
    assert (victim / DONE).is_file()
    key = ["label", "seed", *OBJECTIVES]
    pd.testing.assert_frame_equal(results[key], again[key])  # the same numbers


def test_a_cell_interrupted_mid_alignment_continues_from_its_checkpoint(
    tiny, tmp_path: Path
) -> None:
    args = _args(
        tiny, tmp_path / "sweep", grid={"gift": "0.3"}, align={**FAST_ALIGN, "iterations": 4}
    )
    spec = cell_specs(args)[1]
    align(cell_align_args(spec).__class__(**{**vars(cell_align_args(spec)), "stop_at": 2}))
    before = pd.read_csv(Path(spec["dir"]) / "align" / "curves.csv").drop(columns="wall_s")
    sweep(args)
    curves = pd.read_csv(Path(spec["dir"]) / "align" / "curves.csv").drop(columns="wall_s")
    assert curves["iteration"].tolist() == [0, 1, 2, 3, 4]
    pd.testing.assert_frame_equal(curves.iloc[: len(before)], before)  # kept, not redone


@pytest.mark.slow
def test_sweep_in_parallel_processes(tiny, tmp_path: Path) -> None:
    paths = sweep(_args(tiny, tmp_path / "par", workers=2, grid={"gift": "0.01;0.1;0.5"}))
    assert len(pd.read_csv(paths["results"])) == 4


@pytest.mark.slow
def test_sweep_on_a_local_ray_instance(tiny, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install ray)")
    paths = sweep(_args(tiny, tmp_path / "ray", ray_address="local"))
    assert len(pd.read_csv(paths["results"])) == 3


def test_pareto_figure_labels_points_that_would_overlap_once(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    assert nearby_groups(np.array([1.0, 1.01, 2.0]), np.array([5.0, 5.0, 1.0])) == [[0, 1], [2]]
    assert nearby_groups(np.array([]), np.array([])) == []
    saved: list[Figure] = []
    rows = []
    for w, gift in ((0.005, 0.30), (0.08, 0.30), (0.32, 0.10)):
        rates = {f"{k}_mean": 1.0 for k in OBJECTIVES} | {"gift_mean": gift}
        rows.append({"label": f"g{w}", **{f"w_{k}": 1.0 for k in OBJECTIVES}, "w_gift": w, **rates})
    summary = pd.DataFrame(rows).assign(**{f"{k}_sd": np.nan for k in OBJECTIVES})
    original = Figure.savefig
    try:
        Figure.savefig = lambda self, *a, **k: (saved.append(self), original(self, *a, **k))[1]
        pareto_figure(summary, "watch_time", "gift", tmp_path / "pareto.png")
    finally:
        Figure.savefig = original
    texts = [t.get_text() for t in saved[0].axes[0].texts]
    assert texts == ["watch_time=1, gift=0.005; watch_time=1, gift=0.08", "watch_time=1, gift=0.32"]
