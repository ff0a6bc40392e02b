"""The objective of generator pretraining and its optimisation
(:mod:`agents.train.pretrain` runs them).

:func:`batch_loss`: teacher-forced, weighted cross-entropy over the SID levels, over
the full vocabulary or renormalised over the SIDs live in the example's window, plus
an unlikelihood term for unclicked impressions; :func:`validation_loss` averages it
over a data set. :func:`make_optimizer` (AdamW, decay on matrices only) and
:func:`lr_factor` (linear warm-up, then cosine decay to ``min_lr_ratio * lr``);
:func:`batch_stream` (the batch order, a pure function of (seed, epoch), so a resumed
run sees the same batches); :func:`max_attention_logit` (a stability metric).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from agents.train.sequences import SequenceData, batches_per_epoch, iterate_batches
from policies.onelive.config import GeneratorBatch
from policies.onelive.decoding import constrained_loss, constrained_nll, level_loss
from policies.onelive.model import OneLiveGenerator

if TYPE_CHECKING:
    from agents.train.pretrain import PretrainArgs

__all__ = [
    "batch_loss",
    "batch_stream",
    "lr_factor",
    "make_optimizer",
    "max_attention_logit",
    "validation_loss",
]


def make_optimizer(model: OneLiveGenerator, args: PretrainArgs) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))


def lr_factor(step: int, args: PretrainArgs) -> float:
    """Multiplier of ``args.lr`` after ``step`` optimizer steps: warm-up, then cosine."""
    if step < args.warmup_steps:
        return (step + 1) / args.warmup_steps
    span = max(1, args.max_steps - args.warmup_steps)
    progress = min(1.0, (step - args.warmup_steps) / span)
    return args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def batch_stream(
    data: SequenceData, args: PretrainArgs, start_step: int
) -> Iterator[tuple[GeneratorBatch, torch.Tensor, torch.Tensor]]:
    """Batches from optimizer step ``start_step`` on (epochs reshuffled by seed)."""
    per_epoch = batches_per_epoch(len(data), args.batch_size)
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        it = iterate_batches(data, args.batch_size, args.seed, epoch)
        for i, item in enumerate(it):
            if i >= skip:
                yield item
        epoch, skip = epoch + 1, 0


def batch_loss(
    model: OneLiveGenerator,
    data: SequenceData,
    batch: GeneratorBatch,
    idx: torch.Tensor,
    weights: torch.Tensor | None,
    live: bool,
    negative_coef: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pretraining objective of examples ``idx``: CE over the full vocabulary, or
    (``live``) renormalised over the SIDs live in their window; with negatives
    (``data.label``) plus ``negative_coef`` times the mean unlikelihood
    ``-log(1 - p(SID))`` of the unclicked examples. Returns (loss, per-level CE of the
    clicked examples)."""
    if not live:
        return model.loss(batch, weights)
    sids, mask, stats = data.live(idx, model.config.room_embed_dim)
    if data.label is None:
        return constrained_loss(model, batch, sids, mask, weights=weights, live_stats=stats)
    nll = constrained_nll(model, batch, sids, mask, stats)  # (B, L)
    pos = data.label[idx]
    w = (weights if weights is not None else torch.ones(len(pos))) * pos  # clicks only
    loss, per = level_loss(nll, w, model.config.level_loss_weights)
    if bool((~pos).any()):
        p_sid = torch.exp(-nll[~pos].sum(1))  # constrained probability of the shown SID
        unlikely = -torch.log1p(-p_sid.clamp(max=1.0 - 1e-6))
        loss = loss + negative_coef * unlikely.mean()
    return loss, per


@torch.no_grad()
def validation_loss(
    model: OneLiveGenerator, data: SequenceData, batch_size: int = 1024, live: bool = False
) -> tuple[float, list[float]]:
    """Mean (weighted-sum) loss and per-level CE over ``data`` in eval mode."""
    was = model.training
    model.eval()
    total, per_sum, n = 0.0, None, 0
    for i in range(0, len(data), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(data)))
        loss, per = batch_loss(model, data, data.batch(idx), idx, None, live)
        total += float(loss) * len(idx)
        per_sum = per * len(idx) if per_sum is None else per_sum + per * len(idx)
        n += len(idx)
    model.train(was)
    if n == 0:
        return float("nan"), []
    return total / n, (per_sum / n).tolist()


@torch.no_grad()
def max_attention_logit(model: OneLiveGenerator, batch: GeneratorBatch) -> float:
    """Largest |pre-softmax attention logit| over all layers on ``batch`` (eval mode)."""
    was = model.training
    model.eval()
    model.set_track_logits(True)
    try:
        model(batch)
        maxima = model.attention_logit_maxima()
    finally:
        model.set_track_logits(False)
        model.train(was)
    return max(maxima.values()) if maxima else float("nan")
