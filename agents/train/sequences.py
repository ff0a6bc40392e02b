"""Pretraining examples for the generator from an interaction log.

One example per positive interaction (a clicked row): the user's context at that
request (user features, the history of that user's earlier logged clicks of the same
episode, at most ``max_history``, and the request time) predicts the SID of the
clicked room *at that time*. Inputs are built by
:mod:`policies.onelive.features` exactly as the policy builds them from an
observation (the log is first turned into the observation's ``history_*`` arrays), so
training and serving see the same tensors.

With ``SequenceConfig.negatives`` every unclicked impression is an example too
(``label`` False, its shown room's SID as the target), for the unlikelihood term of
:func:`agents.train.generator_objective.batch_loss`.

Example weights (``SequenceConfig.weights``), by what followed the click:

* ``"none"``: every click weighs 1;
* ``"engagement"``: ``1 + long view + 0.5 like + 0.5 comment + follow + gift``
  (indicators), divided by its mean so the loss keeps its scale.

Train/valid split by time: the last ``valid_fraction`` of the examples (by request
time) are the validation set; their histories may reach into the training period,
as they would online.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.logs.reader import with_past
from policies.cascade.features import history_last, history_taste, streamer_affinity, taste_match
from policies.onelive.config import GeneratorBatch
from policies.onelive.features import (
    LONG_VIEW_MIN,
    FeatureBuilder,
    SIDEncoder,
    embed_blocks,
    history_from_log,
    log_column,
    scaled_room_stats,
)

__all__ = [
    "WEIGHT_SCHEMES",
    "SequenceConfig",
    "SequenceData",
    "build_examples",
    "example_weights",
    "iterate_batches",
    "split_by_time",
    "time_cutoff_ms",
]

WEIGHT_SCHEMES = ("none", "engagement")


@dataclass(frozen=True)
class SequenceConfig:
    """How examples are cut from a log.

    max_history: newest history events per example (the observation holds
        ``users.history_len``; keep them equal so training matches serving).
    weights: per-example weight scheme, one of :data:`WEIGHT_SCHEMES`.
    valid_fraction: share of the examples, the latest by time, kept for validation.
    live_window_s: > 0 attaches to every example the SIDs of the rooms seen live in the
        log within the same window of that many seconds (each room at its latest state
        in the window) plus the target itself, for the live-constrained objective
        (:func:`policies.onelive.decoding.constrained_loss`); 0: none.
    negatives: also keep every unclicked impression as an example with ``label`` 0
        (its shown room's SID as the target, for an unlikelihood term); needs
        ``live_window_s > 0``.
    """

    max_history: int = 20
    weights: str = "none"
    valid_fraction: float = 0.1
    live_window_s: float = 0.0
    negatives: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_history, int) or self.max_history < 1:
            raise ValueError(
                f"SequenceConfig.max_history={self.max_history!r} is invalid: must be an int >= 1"
            )
        if self.weights not in WEIGHT_SCHEMES:
            raise ValueError(
                f"SequenceConfig.weights={self.weights!r} is invalid: must be one of "
                f"{list(WEIGHT_SCHEMES)}"
            )
        v = self.valid_fraction
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v < 1.0:
            raise ValueError(
                f"SequenceConfig.valid_fraction={v!r} is invalid: must be a float in [0, 1)"
            )
        w = self.live_window_s
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not 0.0 <= w < 86_400:
            raise ValueError(
                f"SequenceConfig.live_window_s={w!r} is invalid: must be in [0, 86400) seconds"
            )
        if self.negatives and w <= 0:
            raise ValueError(
                "SequenceConfig.negatives=True needs live_window_s > 0 (the unlikelihood of "
                "an unclicked room is taken under the live-constrained distribution)"
            )


@dataclass
class SequenceData:
    """N examples as tensors (see :class:`GeneratorBatch` for the model inputs)."""

    user_feats: Tensor  # (N, U) float
    hist_sid: Tensor  # (N, H, L) long, -1 padding
    hist_feedback: Tensor  # (N, H) long, -1 padding
    hist_time: Tensor  # (N, H, T) float
    hist_mask: Tensor  # (N, H) bool
    now_time: Tensor  # (N, T) float
    target_sid: Tensor  # (N, L) long
    weight: Tensor  # (N,) float
    timestamp_ms: Tensor  # (N,) long, request time
    log_row: Tensor  # (N,) long, row of the impression in the log
    live_group: Tensor | None = None  # (N,) long, window of the example in live_table
    live_self: Tensor | None = None  # (N,) long, entry of the example's own room in its window
    target_stats: Tensor | None = None  # (N, S) float, scaled statistics of the shown room
    target_content: Tensor | None = None  # (N, o) float, observed content of the shown room
    taste: Tensor | None = None  # (N, o) float, the user's history taste (history_taste)
    target_streamer: Tensor | None = None  # (N,) long, streamer of the shown room
    hist_streamer: Tensor | None = None  # (N, H) long, streamer of each history click (-1 pad)
    hist_minutes: Tensor | None = None  # (N, H) float, minutes watched in each history click
    last: Tensor | None = None  # (N, o) float, the newest clicked content (history_last)
    target_pooled: Tensor | None = None  # (N, o) float, pooled embedding of the shown streamer
    # shared: SIDs (G, M, L), mask (G, M), scaled statistics (G, M, S), observed
    # content (G, M, o), streamer (G, M) and pooled embedding (G, M, o) of each window's rooms
    live_table: tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor] | None = None
    label: Tensor | None = None  # (N,) bool, False: an unclicked impression; None: all clicks

    def positives(self) -> SequenceData:
        """The clicked examples only (all of them when there are no negatives)."""
        return self if self.label is None else self.subset(torch.nonzero(self.label)[:, 0])

    def __len__(self) -> int:
        return int(self.target_sid.shape[0])

    def subset(self, idx: Tensor | np.ndarray) -> SequenceData:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return SequenceData(
            **{
                f.name: getattr(self, f.name)
                if f.name == "live_table"
                else (None if getattr(self, f.name) is None else getattr(self, f.name)[idx])
                for f in fields(self)
            }
        )

    def live(self, idx: Tensor | None = None, embed_dim: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """Live SIDs (B, M + 1, L), mask (B, M + 1) and live-prior input (B, M + 1,
        ``prior_width(embed_dim)``: scaled room statistics, the user's taste match and
        streamer affinity, with ``embed_dim`` also the ``ROOM_EMBED_BLOCKS``, as
        :func:`policies.onelive.features.room_stat_features` builds them) of examples
        ``idx``: the other rooms of their window (each at its latest state there), then
        the example's own room at the time of the example (so the target is always
        allowed, and every room is there once)."""
        if (
            self.live_table is None
            or self.live_group is None
            or self.live_self is None
            or self.target_stats is None
            or self.target_content is None
            or self.taste is None
            or self.target_streamer is None
            or self.hist_streamer is None
            or self.hist_minutes is None
        ):
            raise ValueError("these examples carry no live sets (SequenceConfig.live_window_s=0)")
        idx = torch.arange(len(self)) if idx is None else torch.as_tensor(idx, dtype=torch.long)
        sids, mask, stats, content, streamer, pooled = self.live_table
        g = self.live_group[idx]
        own = torch.zeros_like(mask[g]).scatter_(1, self.live_self[idx][:, None], True)
        rooms = torch.cat([content[g], self.target_content[idx][:, None]], 1)  # (B, M + 1, o)
        match = torch.from_numpy(taste_match(self.taste[idx].numpy(), rooms.numpy()))
        room_streamer = torch.cat([streamer[g], self.target_streamer[idx][:, None]], 1)
        seen = streamer_affinity(
            self.hist_streamer[idx].numpy(),
            self.hist_minutes[idx].numpy(),
            self.hist_mask[idx].numpy(),
            room_streamer.numpy(),
        )
        stats = torch.cat([stats[g], self.target_stats[idx][:, None]], 1)  # (B, M + 1, S)
        parts = [stats, match[..., None], torch.from_numpy(seen)]
        if embed_dim:
            parts.append(self._embed_blocks(idx, g, rooms, pooled, embed_dim))
        return (
            torch.cat([sids[g], self.target_sid[idx][:, None, :]], 1),
            torch.cat([mask[g] & ~own, torch.ones(len(idx), 1, dtype=torch.bool)], 1),
            torch.cat(parts, -1),
        )

    def _embed_blocks(
        self, idx: Tensor, g: Tensor, rooms: Tensor, pooled: Tensor, embed_dim: int
    ) -> Tensor:
        """(B, M + 1, 4o) content, pooled, taste, last of :meth:`live`'s rooms."""
        if self.last is None or self.target_pooled is None or self.taste is None:
            raise ValueError("these examples carry no embeddings for room_embed_dim > 0")
        pool = torch.cat([pooled[g], self.target_pooled[idx][:, None]], 1)  # (B, M + 1, o)
        request = torch.cat([self.taste[idx], self.last[idx]], -1)  # (B, 2o)
        return embed_blocks(torch.cat([rooms, pool], -1), request, embed_dim)

    def batch(self, idx: Tensor | np.ndarray | None = None) -> GeneratorBatch:
        """The examples ``idx`` (all by default) as a GeneratorBatch with targets."""
        d = self if idx is None else self.subset(idx)
        return GeneratorBatch(
            user_feats=d.user_feats,
            hist_sid=d.hist_sid,
            hist_feedback=d.hist_feedback,
            hist_time=d.hist_time,
            hist_mask=d.hist_mask,
            now_time=d.now_time,
            target_sid=d.target_sid,
        )

    def n_tokens(self, idx: Tensor | None = None) -> int:
        """Real tokens of the examples: user + history + BOS + target SID tokens."""
        mask = self.hist_mask if idx is None else self.hist_mask[idx]
        n = mask.shape[0]
        return int(mask.sum()) + n * (2 + self.target_sid.shape[1])


def example_weights(log: Any, rows: np.ndarray, scheme: str) -> np.ndarray:
    """``(len(rows),)`` float32 weights of the clicked log ``rows`` (see the module doc)."""
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(f"weights scheme {scheme!r} is unknown; allowed: {list(WEIGHT_SCHEMES)}")
    if scheme == "none" or len(rows) == 0:
        return np.ones(len(rows), dtype=np.float32)
    long_view = log_column(log, "watch_time_ms")[rows] >= LONG_VIEW_MIN * 60_000
    w = (
        1.0
        + long_view
        + 0.5 * log_column(log, "like")[rows]
        + 0.5 * log_column(log, "comment")[rows]
        + log_column(log, "follow")[rows]
        + (log_column(log, "gift_price")[rows] > 0)
    ).astype(np.float64)
    return (w / w.mean()).astype(np.float32)


def build_examples(
    log: Any,
    tokenizer: SIDEncoder,
    config: SequenceConfig | None = None,
    past: dict[str, np.ndarray] | None = None,
) -> SequenceData:
    """Every clicked row of ``log`` as an example (chronological order of the log), and
    with ``config.negatives`` every unclicked row too (``label`` False).

    ``log``: a DataFrame (``read_log``) or dict of arrays (``read_log_arrays``).
    Each shown room is encoded once (its SID at the time); histories gather the clicks,
    starting with the ``past``'s (``read_log_arrays(..., rows="past")``, same columns;
    never examples themselves).
    """
    cfg = config or SequenceConfig()
    is_click = log_column(log, "is_click").astype(bool)
    click = np.flatnonzero(is_click)
    if len(click) == 0:
        raise ValueError("log has no clicks (is_click all false): no examples to build")
    rows = np.arange(len(is_click)) if cfg.negatives else click
    content = log_column(log, "content_emb")
    obs_dim = content.shape[1]
    builder = FeatureBuilder(tokenizer, obs_dim, cfg.max_history)
    builder.cache.update(log_column(log, "streamer_id"), log_column(log, "pooled_emb"))
    streamer = log_column(log, "streamer_id")[rows]
    sid_rows = tokenizer.encode(content[rows], builder.cache.lookup(streamer), streamer)
    sid_of_row = np.full((len(content), sid_rows.shape[1]), -1, dtype=np.int64)
    sid_of_row[rows] = sid_rows  # histories only ever gather clicked rows
    hist_log, n_past = with_past(log, past)  # the past's events first
    if n_past:
        ps = past["streamer_id"]
        sid_past = tokenizer.encode(past["content_emb"], builder.cache.lookup(ps), ps)
        sid_of_row = np.concatenate([sid_past, sid_of_row])
    hist = history_from_log(hist_log, cfg.max_history, rows=rows + n_past)
    hist_sid = np.where(hist["history_mask"][..., None] > 0, sid_of_row[hist["history_row"]], -1)
    b = builder.batch_from_obs(hist, hist_sid=hist_sid, update_cache=False)
    live_group = live_self = target_stats = target_content = taste = live_table = None
    hist_streamer = hist_minutes = target_streamer = last = target_pooled = None
    if cfg.live_window_s > 0:
        stats = _log_room_stats(log)
        live_group, live_self, live_table = live_sets(
            log, tokenizer, builder, rows, cfg.live_window_s, stats
        )
        target_stats = stats[torch.as_tensor(rows)]
        target_content = torch.as_tensor(np.asarray(content[rows], dtype=np.float32))
        taste = torch.from_numpy(history_taste(hist))
        last = torch.from_numpy(history_last(hist))
        target_pooled = torch.from_numpy(builder.cache.lookup(streamer))
        h = cfg.max_history  # the newest events, as the batch keeps them
        hist_streamer = torch.from_numpy(hist["history_streamer"][:, -h:].copy())
        hist_minutes = torch.from_numpy(hist["history_feedback"][:, -h:, 1].copy())
        target_streamer = torch.as_tensor(streamer.astype(np.int64))
    label = is_click[rows]
    weight = np.ones(len(rows), dtype=np.float32)
    weight[label] = example_weights(log, rows[label], cfg.weights)
    return SequenceData(
        user_feats=b.user_feats,
        hist_sid=b.hist_sid,
        hist_feedback=b.hist_feedback,
        hist_time=b.hist_time,
        hist_mask=b.hist_mask,
        now_time=b.now_time,
        target_sid=torch.as_tensor(sid_rows, dtype=torch.long),
        weight=torch.as_tensor(weight),
        timestamp_ms=torch.as_tensor(log_column(log, "timestamp_ms")[rows].astype(np.int64)),
        log_row=torch.as_tensor(rows, dtype=torch.long),
        live_group=live_group,
        live_self=live_self,
        target_stats=target_stats,
        target_content=target_content,
        taste=taste,
        target_streamer=target_streamer,
        hist_streamer=hist_streamer,
        hist_minutes=hist_minutes,
        last=last,
        target_pooled=target_pooled,
        live_table=live_table,
        label=torch.as_tensor(label) if cfg.negatives else None,
    )


def _log_room_stats(log: Any) -> Tensor:
    """``(n, S)`` float32 scaled statistics of the shown room of every log row."""
    stats = np.array(log_column(log, "room_stats"), dtype=np.float32)  # a writable copy
    return scaled_room_stats(torch.from_numpy(stats))


def live_sets(
    log: Any,
    tokenizer: SIDEncoder,
    builder: FeatureBuilder,
    rows: np.ndarray,
    window_s: float,
    stats: Tensor,
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """For the log ``rows``: their window index, the entry of their own room in it, and
    per window the SIDs, mask, room statistics (``stats``, one row per log row),
    observed content, streamer and pooled embedding of the rooms (distinct ``live_id``)
    shown in it, each at its latest state in the window."""
    t = log_column(log, "timestamp_ms").astype(np.int64)
    window = t // int(round(window_s * 1000))
    live = log_column(log, "live_id").astype(np.int64)
    key = np.stack([window, live], 1)
    order = np.lexsort((t, live, window))  # by window, room, time
    last = np.r_[np.any(np.diff(key[order], axis=0) != 0, axis=1), True]
    pick = order[last]  # the latest row of every (window, room)
    streamer = log_column(log, "streamer_id")[pick]
    content = log_column(log, "content_emb")[pick]
    pick_pooled = builder.cache.lookup(streamer)
    sids = tokenizer.encode(content, pick_pooled, streamer)
    groups, first, counts = np.unique(window[pick], return_index=True, return_counts=True)
    table = np.zeros((len(groups), int(counts.max()), sids.shape[1]), dtype=np.int64)
    mask = np.zeros(table.shape[:2], dtype=bool)
    views = torch.zeros((*table.shape[:2], stats.shape[1]))
    rooms = torch.zeros((*table.shape[:2], content.shape[1]))
    streamers = torch.full(table.shape[:2], -1, dtype=torch.long)
    pooled = torch.zeros_like(rooms)
    pick_streamer = torch.as_tensor(streamer.astype(np.int64))
    pick_stats, pick_content = stats[torch.as_tensor(pick)], torch.as_tensor(content)
    for g, (f, c) in enumerate(zip(first, counts, strict=True)):
        table[g, :c], mask[g, :c], views[g, :c] = sids[f : f + c], True, pick_stats[f : f + c]
        rooms[g, :c], streamers[g, :c] = pick_content[f : f + c], pick_streamer[f : f + c]
        pooled[g, :c] = torch.from_numpy(pick_pooled[f : f + c])
    group_of = np.searchsorted(groups, window[rows])
    span = int(live.max()) + 1  # (window, room) as one sortable key, the order of `pick`
    own = np.searchsorted(window[pick] * span + live[pick], window[rows] * span + live[rows])
    tables = (torch.as_tensor(table), torch.as_tensor(mask), views, rooms, streamers, pooled)
    return torch.as_tensor(group_of), torch.as_tensor(own - first[group_of]), tables


def time_cutoff_ms(log: Any, valid_fraction: float) -> int:
    """Request time (ms) from which the latest ``valid_fraction`` of the clicks lie."""
    ts = log_column(log, "timestamp_ms")[log_column(log, "is_click").astype(bool)]
    if valid_fraction <= 0 or len(ts) == 0:
        return int(ts.max()) + 1 if len(ts) else 0
    return int(np.quantile(ts, 1.0 - valid_fraction, method="lower"))


def split_by_time(data: SequenceData, cutoff_ms: int) -> tuple[SequenceData, SequenceData]:
    """(examples before ``cutoff_ms``, examples at or after it)."""
    late = data.timestamp_ms >= cutoff_ms
    return data.subset(torch.nonzero(~late)[:, 0]), data.subset(torch.nonzero(late)[:, 0])


def iterate_batches(
    data: SequenceData, batch_size: int, seed: int, epoch: int, shuffle: bool = True
) -> Iterator[tuple[GeneratorBatch, Tensor, Tensor]]:
    """(batch, weights, example indices) of one epoch; the order is a pure function of
    ``(seed, epoch)``, so a resumed run sees the same batches. Drops no examples."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is invalid: must be >= 1")
    n = len(data)
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_mix(seed, epoch)))
    else:
        order = torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        yield data.batch(idx), data.weight[idx], idx


def batches_per_epoch(n_examples: int, batch_size: int) -> int:
    return max(1, math.ceil(n_examples / batch_size))


def _mix(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])
