"""Pretrain the OneLive generator on an interaction log (cleanrl style: one file).

    python -m agents.train.pretrain --log /work/data/default-2d-platform --out runs/pretrain/default

Steps: read the log; split it by time (the latest ``valid_fraction`` of the clicks
validate); fit a SID tokenizer on the training part (or load ``--tokenizer``); cut
examples (:mod:`agents.train.sequences`); all in :mod:`agents.train.generator_data`.
Train with teacher-forced, weighted cross-entropy over the SID levels, AdamW (decay on
matrices only), linear warm-up then cosine decay to ``min_lr_ratio * lr``, gradient
clipping (:mod:`agents.train.generator_objective`). This module: the arguments, the
loop, its checkpoints and metrics.

Files in ``--out``: ``tokenizer.pt``, ``ckpt.pt`` (the latest checkpoint: model config
and weights, optimizer, scheduler, RNG state, step, the metric rows; written
atomically every ``checkpoint_every`` steps), ``model.pt`` (the final model),
``metrics.csv`` (losses per level, gradient norm, largest attention logit, validation
losses, tokens/s) and ``summary.json``. ``--resume`` continues from ``ckpt.pt`` and
ends with exactly the parameters of an uninterrupted run: the batch order is a pure
function of (seed, epoch) and the dropout RNG state is restored.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from agents.progress import progress_bar
from agents.run import cliargs
from agents.train.generator_data import load_data, model_config
from agents.train.generator_objective import (
    batch_loss,
    batch_stream,
    lr_factor,
    make_optimizer,
    max_attention_logit,
    validation_loss,
)
from agents.train.sequences import SequenceConfig, batches_per_epoch
from agents.train.tracking import Tracker
from liveenv.atomic import atomic_write_bytes
from policies.checkpoint import named_path
from policies.onelive.checkpoint import load_checkpoint, save_checkpoint
from policies.onelive.model import OneLiveGenerator

__all__ = ["PretrainArgs", "main", "pretrain"]

#: Arguments that may differ between an interrupted run and its resumption.
RESUMABLE = ("resume", "stop_at_step", "progress", "threads", "tensorboard")


@dataclass
class PretrainArgs:
    """Pretraining of the OneLive generator on one interaction log."""

    log: str = field(default="", metadata={"help": "interaction log directory (required)"})
    out: str = field(default="runs/pretrain", metadata={"help": "output folder"})
    tokenizer: str = field(
        default="", metadata={"help": "fitted SIDTokenizer file; empty: fit one on the train part"}
    )
    sid_mode: str = field(
        default="dynamic", metadata={"help": "tokenizer when fitting: dynamic | static | hybrid"}
    )
    codebook_sizes: tuple[int, ...] = field(
        default=(32, 32, 32), metadata={"help": "tokenizer codebook sizes when fitting"}
    )
    tokenizer_epochs: int = field(default=4, metadata={"help": "tokenizer tower epochs"})
    max_history: int = field(default=20, metadata={"help": "history events per example"})
    weights: str = field(default="none", metadata={"help": "example weights: none | engagement"})
    valid_fraction: float = field(default=0.1, metadata={"help": "latest clicks kept to validate"})
    # 30 min by default: on the demo log this lifted held-out HR@10 (click) from 0.25
    # to 0.30 and HR@1 from 0.02 to 0.05 against the full-vocabulary CE (250 steps)
    live_window_s: float = field(
        default=1800.0,
        metadata={
            "help": "> 0: CE renormalised over the SIDs seen live in the log within "
            "windows of this many seconds (matches constrained decoding); 0: full vocab"
        },
    )
    negatives: bool = field(
        default=False,
        metadata={
            "help": "also train on unclicked impressions: an unlikelihood term "
            "-log(1 - p(shown SID)) under the live-window distribution"
        },
    )
    negative_coef: float = field(default=1.0, metadata={"help": "weight of the negative term"})
    # 1 by default: on fast_drift it lifted held-out click HR@1 from 0.023 to 0.074 and
    # made dynamic SIDs beat static ones (BENCHMARKS.md, OneLive generator)
    live_prior_weight: float = field(
        default=1.0,
        metadata={
            "help": "w >= 0: live-popularity prior in the constrained softmax, "
            "+log sum exp(w * log_viewers) per token; 0: none (also when live_window_s "
            "is 0: the full-vocabulary CE has no live rooms to sum over)"
        },
    )
    # off by default: after alignment its gain on default was within noise (+0.037
    # [-0.108, +0.183]), and with it static SIDs beat dynamic ones on fast_drift
    # (the taste match does the content matching): BENCHMARKS.md, "Room prior"
    room_prior: bool = field(
        default=False,
        metadata={
            "help": "add a learned, personalised score of each live room's statistics "
            "(viewers, like/comment/gift rates, hours live, new streamer) and of the "
            "user's taste match with it to the live prior; off when live_window_s is 0"
        },
    )
    room_affinity: bool = field(
        default=False,
        metadata={
            "help": "the room prior also reads the user's history with each room's "
            "streamer (share of history clicks, minutes watched); needs room_prior"
        },
    )
    room_embed: bool = field(
        default=False,
        metadata={
            "help": "the room prior also learns a bilinear match of the user's taste, "
            "newest click and features with each room's observed content and pooled "
            "embedding (OneLiveConfig.room_embed_dim); needs room_prior"
        },
    )
    d_model: int = field(default=64, metadata={"help": "model width"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    n_layer: int = field(default=3, metadata={"help": "main decoder layers"})
    dropout: float = field(default=0.0, metadata={"help": "dropout probability"})
    use_gate: bool = field(default=True, metadata={"help": "time-aware attention output gate"})
    use_qk_norm: bool = field(default=True, metadata={"help": "RMSNorm on queries and keys"})
    use_mtp: bool = field(default=True, metadata={"help": "sequential MTP (else full-depth AR)"})
    batch_size: int = field(default=256, metadata={"help": "examples per step"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "final lr as a share of lr"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW decay (matrices only)"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warm-up steps"})
    max_steps: int = field(default=1500, metadata={"help": "optimizer steps"})
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm (0: off)"})
    log_every: int = field(default=25, metadata={"help": "steps per metrics row"})
    eval_every: int = field(default=250, metadata={"help": "steps per validation"})
    checkpoint_every: int = field(default=250, metadata={"help": "steps per checkpoint"})
    stop_at_step: int = field(
        default=0, metadata={"help": "stop after this step with a checkpoint (0: run to the end)"}
    )
    resume: bool = field(default=False, metadata={"help": "continue from OUT/ckpt.pt"})
    seed: int = field(default=0, metadata={"help": "seed of init, batch order, tokenizer, dropout"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    tensorboard: bool = field(
        default=True,
        metadata={"help": "also write the metrics rows to TensorBoard under OUT/tb (if installed)"},
    )

    def __post_init__(self) -> None:
        self.codebook_sizes = tuple(self.codebook_sizes)
        checks = {
            "max_history": self.max_history >= 1,
            "d_model": self.d_model >= 1,
            "n_head": self.n_head >= 1,
            "n_layer": self.n_layer >= 1,
            "batch_size": self.batch_size >= 1,
            "max_steps": self.max_steps >= 1,
            "warmup_steps": self.warmup_steps >= 0,
            "log_every": self.log_every >= 1,
            "eval_every": self.eval_every >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
            "stop_at_step": self.stop_at_step >= 0,
            "threads": self.threads >= 1,
            "tokenizer_epochs": self.tokenizer_epochs >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                lo = 0 if name in ("warmup_steps", "stop_at_step", "tokenizer_epochs") else 1
                raise ValueError(
                    f"PretrainArgs.{name}={getattr(self, name)!r} is invalid: must be >= {lo}"
                )
        for name, lo, hi in (
            ("lr", 0.0, 10.0),
            ("min_lr_ratio", 0.0, 1.0),
            ("weight_decay", 0.0, 10.0),
            ("grad_clip", 0.0, 1e6),
            ("dropout", 0.0, 0.99),
            ("valid_fraction", 0.0, 0.99),
            ("negative_coef", 0.0, 100.0),
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and lo <= v <= hi) or (name == "lr" and v == 0):
                raise ValueError(
                    f"PretrainArgs.{name}={v!r} is invalid: must be a float in [{lo}, {hi}]"
                )
        if self.sid_mode not in ("dynamic", "static", "hybrid"):
            raise ValueError(
                f"PretrainArgs.sid_mode={self.sid_mode!r} is invalid: 'dynamic', 'static' "
                "or 'hybrid' (static streamer prefix + dynamic content token)"
            )
        SequenceConfig(
            self.max_history, self.weights, self.valid_fraction, self.live_window_s, self.negatives
        )  # validates
        w = self.live_prior_weight
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ValueError(f"PretrainArgs.live_prior_weight={w!r} is invalid: a float >= 0")
        for name in ("room_affinity", "room_embed"):
            if getattr(self, name) and not self.room_prior:
                raise ValueError(
                    f"PretrainArgs.{name}=True needs room_prior=True "
                    "(the room prior is what reads it)"
                )


# ----- files -------------------------------------------------------------------------
def _csv_columns(n_levels: int) -> list[str]:
    lv = [f"loss_l{i + 1}" for i in range(n_levels)]
    vl = [f"valid_l{i + 1}" for i in range(n_levels)]
    return [
        "step",
        "epoch",
        "lr",
        "loss",
        *lv,
        "grad_norm",
        "max_attn_logit",
        "valid_loss",
        *vl,
        "tokens_per_s",
        "elapsed_s",
    ]


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def _check_resumable(saved: dict[str, Any], args: PretrainArgs) -> None:
    now = cliargs.to_dict(args)
    diff = sorted(k for k in now if k not in RESUMABLE and saved.get(k) != now[k])
    if diff:
        shown = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
        raise ValueError(f"--resume with other arguments than the checkpoint ({shown})")


# ----- the loop ----------------------------------------------------------------------
def pretrain(args: PretrainArgs) -> Path:
    """Run pretraining; return the path of the final model (``ckpt.pt`` when stopped
    early by ``stop_at_step``)."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    resume = args.resume and ckpt_path.is_file()
    saved: dict[str, Any] = {}
    if resume:
        model, saved, opt_state = load_checkpoint(ckpt_path)
        _check_resumable(saved["args"], args)
        tok, tok_path, train, valid, cutoff = load_data(
            args, named_path(ckpt_path, saved["tokenizer"])
        )
    else:
        tok, tok_path, train, valid, cutoff = load_data(args)
        torch.manual_seed(args.seed)  # init and dropout draw from torch's default generator
        obs_dim = 0 if train.taste is None else int(train.taste.shape[1])
        model = OneLiveGenerator(model_config(args, tok, int(train.user_feats.shape[1]), obs_dim))
        opt_state = None
    model.train()
    opt = make_optimizer(model, args)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, args))
    step, rows = 0, []
    if resume:
        opt.load_state_dict(opt_state)
        sched.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        step, rows = int(saved["step"]), list(saved["rows"])
    n_levels = model.config.n_levels
    columns = _csv_columns(n_levels)
    end = min(args.max_steps, args.stop_at_step or args.max_steps)

    def checkpoint(path: Path, at: int) -> None:
        extra = {
            "args": cliargs.to_dict(args),
            "step": at,
            "scheduler": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "rows": rows,
            "tokenizer": str(tok_path),
            "cutoff_ms": cutoff,
            "n_train": len(train),
            "n_valid": len(valid),
        }
        save_checkpoint(path, model, opt, extra)
        write_csv(out / "metrics.csv", rows, columns)

    batches = batch_stream(train, args, step)
    tracker = Tracker(out, args.tensorboard, purge_step=step + 1 if resume else None)
    acc = {"loss": 0.0, "per": torch.zeros(n_levels), "gn": 0.0, "n": 0, "tok": 0}
    train_s, tokens_total = 0.0, 0
    bar = progress_bar(
        total=end,
        initial=step,
        desc="pretrain",
        unit="step",
        mininterval=1.0,
        enabled=args.progress,
    )
    while step < end:
        t0 = time.perf_counter()
        batch, weight, idx = next(batches)
        w = None if args.weights == "none" else weight
        loss, per = batch_loss(
            model, train, batch, idx, w, args.live_window_s > 0, args.negative_coef
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = args.grad_clip if args.grad_clip > 0 else float("inf")
        gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
        opt.step()
        sched.step()
        step += 1
        n_tok = int(batch.hist_mask.sum()) + batch.batch_size * (2 + n_levels)
        train_s += time.perf_counter() - t0
        tokens_total += n_tok
        acc = {
            "loss": acc["loss"] + loss.item(),
            "per": acc["per"] + per,
            "gn": acc["gn"] + gn,
            "n": acc["n"] + 1,
            "tok": acc["tok"] + n_tok,
        }
        bar.update(1)
        if step % args.log_every == 0 or step == end:
            n = acc["n"]
            row: dict[str, Any] = {
                "step": step,
                "epoch": round(step / batches_per_epoch(len(train), args.batch_size), 3),
                "lr": sched.get_last_lr()[0],
                "loss": acc["loss"] / n,
                "grad_norm": acc["gn"] / n,
                "max_attn_logit": max_attention_logit(model, batch),
                "tokens_per_s": tokens_total / max(train_s, 1e-9),
                "elapsed_s": train_s,
            }
            row.update({f"loss_l{i + 1}": float(v) / n for i, v in enumerate(acc["per"])})
            if step % args.eval_every == 0 or step == end:
                vloss, vper = validation_loss(model, valid, live=args.live_window_s > 0)
                row["valid_loss"] = vloss
                row.update({f"valid_l{i + 1}": v for i, v in enumerate(vper)})
            rows.append(row)
            tracker.log(row, step, "pretrain/", exclude=("step",))
            bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            acc = {"loss": 0.0, "per": torch.zeros(n_levels), "gn": 0.0, "n": 0, "tok": 0}
        if step % args.checkpoint_every == 0 or step == end:
            checkpoint(ckpt_path, step)
    bar.close()
    tracker.close()
    tps = tokens_total / max(train_s, 1e-9)
    summary = {
        "steps": step,
        "train_s": train_s,
        "tokens": tokens_total,
        "tokens_per_s": tps,
        "n_train": len(train),
        "n_valid": len(valid),
        "cutoff_ms": cutoff,
        "n_params": model.num_params(),
        "tokenizer": str(tok_path),
        "final_valid_loss": next(
            (r["valid_loss"] for r in reversed(rows) if "valid_loss" in r), None
        ),
    }
    print(
        f"pretrain: {step} steps, {train_s:.1f} s training, {tps:,.0f} tokens/s, "
        f"{len(train)} train / {len(valid)} valid examples"
    )
    if step < args.max_steps:
        return ckpt_path
    final = out / "model.pt"
    save_checkpoint(
        final,
        model,
        None,
        {
            "args": cliargs.to_dict(args),
            "tokenizer": str(tok_path),
            "cutoff_ms": cutoff,
            "step": step,
        },
    )
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return final


def main(argv: Sequence[str] | None = None) -> Path:
    args = cliargs.parse(PretrainArgs, argv, prog="python -m agents.train.pretrain")
    return pretrain(args)


if __name__ == "__main__":
    main()
