"""TensorBoard event files beside the CSVs: pretraining, alignment and SB3 write them
under OUT/tb (read back with TensorBoard's own EventAccumulator); off writes none."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_run import build_tiny, tiny_align_args

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from agents.train.tracking import Tracker


def scalars(folder: Path) -> dict[str, list[int]]:
    """Tag -> steps of every scalar in the event files of ``folder`` and below."""
    out: dict[str, list[int]] = {}
    runs = sorted({p.parent for p in folder.rglob("events.out.tfevents.*")})
    assert runs, f"no event files under {folder}"
    for run in runs:
        acc = EventAccumulator(str(run))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out[tag] = [e.step for e in acc.Scalars(tag)]
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return build_tiny(tmp_path_factory.getbasetemp() / "align-tiny")


def test_a_resumed_tracker_keeps_one_value_per_step(tmp_path: Path) -> None:
    with Tracker(tmp_path) as t:
        for step in (1, 2, 3, 4):
            t.log({"loss": 1.0 / step, "note": "text", "nan": float("nan")}, step, "x/")
    with Tracker(tmp_path, purge_step=3) as t:  # interrupted after step 2's checkpoint
        for step in (3, 4, 5):
            t.log({"loss": 0.5}, step, "x/")
    assert scalars(tmp_path / "tb") == {"x/loss": [1, 2, 3, 4, 5]}


def test_off_writes_no_event_files(tmp_path: Path) -> None:
    t = Tracker(tmp_path, enabled=False)
    t.log({"loss": 1.0}, 1)
    t.close()
    assert not t.enabled and not (tmp_path / "tb").exists()


def test_without_the_package_it_says_so_once_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agents.train.tracking as tracking

    monkeypatch.setattr(tracking, "tensorboard_available", lambda: False)
    monkeypatch.setattr(tracking, "_warned", False)
    with pytest.warns(UserWarning, match="tensorboard is not installed"):
        t = Tracker(tmp_path)
    t.log({"loss": 1.0}, 1)
    assert not t.enabled and not (tmp_path / "tb").exists()
    assert tracking.use_tensorboard_logger(object(), tmp_path) is None  # no warning again


def test_pretraining_writes_its_metrics_rows(tiny, tmp_path: Path) -> None:
    from agents.train.pretrain import PretrainArgs, pretrain

    pretrain(
        PretrainArgs(
            log=str(tiny.log),
            out=str(tmp_path),
            tokenizer=str(tiny.tokenizer),
            d_model=16,
            n_head=2,
            n_layer=1,
            max_steps=4,
            batch_size=32,
            warmup_steps=1,
            log_every=2,
            eval_every=4,
            checkpoint_every=4,
            progress=False,
        )
    )
    tags = scalars(tmp_path / "tb")
    assert tags["pretrain/loss"] == [2, 4] and tags["pretrain/loss_l1"] == [2, 4]
    assert tags["pretrain/lr"] == [2, 4] and tags["pretrain/grad_norm"] == [2, 4]
    assert tags["pretrain/valid_loss"] == [4]
    assert "pretrain/step" not in tags
    assert (tmp_path / "metrics.csv").is_file()  # the CSV as before


def test_alignment_writes_its_curve_rows(tiny, tmp_path: Path) -> None:
    from agents.align.grpo import align

    align(tiny_align_args(tiny, tmp_path, iterations=4, log_every=2, checkpoint_every=4))
    tags = scalars(tmp_path / "tb")
    for tag in ("env_return", "kl_ref", "env_greedy_return", "entropy"):
        assert tags[f"align/ecpo/{tag}"] == [0, 2, 4]
    assert tags["align/ecpo/reward"] == [2, 4]  # training statistics: from the first update
    assert (tmp_path / "curves.csv").is_file()


def test_alignment_without_tensorboard_writes_none(tiny, tmp_path: Path) -> None:
    from agents.align.grpo import align

    align(tiny_align_args(tiny, tmp_path, iterations=2, log_every=2, tensorboard=False))
    assert not (tmp_path / "tb").exists() and (tmp_path / "curves.csv").is_file()


def test_sb3_logs_its_training_and_the_learning_curve(tmp_path: Path) -> None:
    from agents.train.sb3 import TrainSB3Args, train_sb3

    args = TrainSB3Args(
        algo="MaskablePPO",
        timesteps=256,
        n_steps=128,
        batch_size=64,
        n_epochs=1,
        eval_every=128,
        eval_seeds=(7,),
        eval_steps=10,
        horizon_hours=0.25,
        start_hour=20.0,
        out=str(tmp_path),
    )
    train_sb3(args)
    tags = scalars(tmp_path / "tb")
    assert tags["curve/eval_reward"] == [1, 128, 256]  # each learning-curve point
    assert "train/loss" in tags and "train/entropy_loss" in tags  # SB3's own
    assert (tmp_path / "tb" / "progress.csv").is_file()


def test_sb3_generator_logs_sb3s_training(tiny, tmp_path: Path) -> None:
    from tiny_run import TINY_WORLD

    from agents.train.sb3_generator import SB3GeneratorArgs, train_sb3_generator

    args = SB3GeneratorArgs(
        generator=str(tiny.generator),
        out=str(tmp_path),
        overrides=dict(TINY_WORLD),
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        timesteps=64,
    )
    train_sb3_generator(args)
    tags = scalars(tmp_path / "tb")
    assert tags["train/loss"] and tags["train/approx_kl"] and "time/fps" in tags
    assert (tmp_path / "model.pt").is_file()
