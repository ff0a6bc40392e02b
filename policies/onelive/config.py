"""Configuration and input contract of the OneLive-style generator.

`OneLiveConfig` is a frozen dataclass validated on construction; every error
names the field, the bad value and the allowed range. `GeneratorBatch` is the
tensor batch the model reads (see its docstring for shapes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from liveenv.serialize import DictConfig


def _bad(field: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"OneLiveConfig.{field}={value!r} is invalid: must be {allowed}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@dataclass(frozen=True)
class OneLiveConfig(DictConfig):
    """Hyper-parameters of `OneLiveGenerator`.

    vocab_sizes: codebook size of each SID level (coarse to fine); its length is
        the number of levels L.
    level_loss_weights: weight w_l of each level's cross-entropy; None means all
        ones (resolved on construction, so the stored value is always a tuple).
    use_mtp: True = sequential multi-token prediction (main stack predicts
        level 1, one small module per further level); False = full-depth
        autoregressive decoding (the ablation).
    gate_bias_init: initial bias of the attention output gate; +3 gives
        sigmoid(3) ~ 0.95, i.e. the gate starts open.
    track_logits: record each attention layer's largest |pre-softmax logit|
        (slower path); can be switched at run time with `set_track_logits`.
    live_prior_weight: w >= 0 of the live-popularity prior inside the constrained
        softmax (`policies.onelive.decoding`): each level's logit of a token gets
        ``+ log sum exp(w * log_viewers)`` over the live rooms under the extended
        prefix, in training and in decoding, so the generator learns what live
        popularity does not explain. 0 (default): no prior.
    room_prior: add a learned, personalised score of every live room to that prior
        (:class:`policies.onelive.model.RoomPrior`): the room's row of
        ``policies.onelive.features.ROOM_PRIOR_COLUMNS`` (its log-scaled statistics:
        viewers, like, comment and gift rates, hours live, new streamer; and the
        cosine of the user's taste with its content now) times weights computed
        from the user's features and feedback history. It starts at zero (the prior
        is then ``w * log_viewers`` alone) and is trained with everything else, in
        pretraining and in alignment. False (default): none.
    room_affinity: the room prior also reads the user's history with each room's
        streamer (``ROOM_AFFINITY_COLUMNS``: the share of history clicks on it and the
        minutes watched there). Needs ``room_prior``. False (default, and in
        checkpoints from before it existed): the first seven columns only.
    room_embed_dim: o > 0, the world's observed embedding width: the room prior also adds
        a learned bilinear match ``[taste, last, user] A [content, pooled]`` of the user's
        history taste, newest clicked content and features with each room's observed
        content and pooled embedding (``policies.onelive.features.ROOM_EMBED_BLOCKS``;
        the cosine ``taste_match`` is the special case A = I). A starts at zero. Needs
        ``room_prior``. 0 (default): none.
    """

    vocab_sizes: tuple[int, ...] = (64, 64, 64)
    user_dim: int = 16
    time_dim: int = 4
    n_feedback_types: int = 7
    max_history: int = 50
    d_model: int = 64
    n_head: int = 4
    n_layer: int = 3
    mlp_ratio: int = 4
    dropout: float = 0.0
    use_gate: bool = True
    use_qk_norm: bool = True
    use_mtp: bool = True
    level_loss_weights: tuple[float, ...] | None = None
    gate_bias_init: float = 3.0
    norm_eps: float = 1e-6
    track_logits: bool = False
    live_prior_weight: float = 0.0
    room_prior: bool = False
    room_affinity: bool = False
    room_embed_dim: int = 0

    def __post_init__(self) -> None:
        vs = self.vocab_sizes
        if isinstance(vs, list):
            vs = tuple(vs)
            object.__setattr__(self, "vocab_sizes", vs)
        if not isinstance(vs, tuple) or len(vs) == 0 or not all(_is_int(v) and v >= 2 for v in vs):
            raise _bad("vocab_sizes", self.vocab_sizes, "a non-empty tuple of ints >= 2")
        for name, lo in (
            ("user_dim", 1),
            ("time_dim", 1),
            ("n_feedback_types", 1),
            ("max_history", 1),
            ("d_model", 1),
            ("n_head", 1),
            ("n_layer", 1),
            ("mlp_ratio", 1),
        ):
            v = getattr(self, name)
            if not _is_int(v) or v < lo:
                raise _bad(name, v, f"an int >= {lo}")
        if not _is_int(self.room_embed_dim) or self.room_embed_dim < 0:
            raise _bad("room_embed_dim", self.room_embed_dim, "an int >= 0")
        if self.room_embed_dim and not self.room_prior:
            raise _bad(
                "room_embed_dim",
                self.room_embed_dim,
                "0 unless room_prior=True (the prior reads it)",
            )
        if self.d_model % self.n_head != 0:
            raise _bad("d_model", self.d_model, f"a multiple of n_head={self.n_head}")
        if not _is_num(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise _bad("dropout", self.dropout, "a float in [0, 1)")
        for name in (
            "use_gate",
            "use_qk_norm",
            "use_mtp",
            "track_logits",
            "room_prior",
            "room_affinity",
        ):
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, getattr(self, name), "a bool")
        if self.room_affinity and not self.room_prior:
            raise _bad("room_affinity", True, "False unless room_prior=True (the prior reads it)")
        if not _is_num(self.gate_bias_init) or not math.isfinite(self.gate_bias_init):
            raise _bad("gate_bias_init", self.gate_bias_init, "a finite float")
        lpw = self.live_prior_weight
        if not _is_num(lpw) or not math.isfinite(lpw) or lpw < 0:
            raise _bad("live_prior_weight", lpw, "a finite float >= 0")
        if not _is_num(self.norm_eps) or not 0.0 < self.norm_eps < 1.0:
            raise _bad("norm_eps", self.norm_eps, "a float in (0, 1)")
        w = self.level_loss_weights
        if w is None:
            w = (1.0,) * len(vs)
        if isinstance(w, list):
            w = tuple(w)
        ok = (
            isinstance(w, tuple)
            and len(w) == len(vs)
            and all(_is_num(x) and math.isfinite(x) and x >= 0 for x in w)
            and sum(w) > 0
        )
        if not ok:
            raise _bad(
                "level_loss_weights",
                self.level_loss_weights,
                f"None or {len(vs)} finite floats >= 0 (one per level) with a positive sum",
            )
        object.__setattr__(self, "level_loss_weights", tuple(float(x) for x in w))

    # Derived values -------------------------------------------------------
    @property
    def n_levels(self) -> int:
        return len(self.vocab_sizes)

    @property
    def has_live_prior(self) -> bool:
        """Whether decoding needs the live rooms' statistics (a viewers weight or a room prior)."""
        return self.live_prior_weight > 0 or self.room_prior

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def n_positions(self) -> int:
        """Rows of the position table: 0 = BOS, 1..max_history = recency, last = user."""
        return self.max_history + 2


@dataclass
class GeneratorBatch:
    """One batch of requests (all tensors on the same device).

    user_feats    (B, U) float  user features (U = config.user_dim)
    hist_sid      (B, H, L) long  SID of the room at each history interaction
    hist_feedback (B, H) long  feedback type in [0, n_feedback_types)
    hist_time     (B, H, T) float  time features of each history event
    hist_mask     (B, H) bool  True where the slot is real; any padding layout.
                  Values in masked slots are ignored (may be -1 / NaN).
    now_time      (B, T) float  time features of the request
    target_sid    (B, L) long or None  next room's SID (teacher forcing)
    History is in chronological order (oldest first) among the real slots.
    """

    user_feats: Tensor
    hist_sid: Tensor
    hist_feedback: Tensor
    hist_time: Tensor
    hist_mask: Tensor
    now_time: Tensor
    target_sid: Tensor | None = None

    @classmethod
    def random(
        cls,
        cfg: OneLiveConfig,
        batch_size: int,
        n_hist: int,
        *,
        p_real: float = 0.8,
        generator: torch.Generator | None = None,
    ) -> GeneratorBatch:
        """A random, valid batch with targets (for tests and benchmarks); masked slots
        hold garbage (-1 tokens, NaN times) on purpose."""
        B, H, g = batch_size, n_hist, generator

        def tokens(*shape: int) -> Tensor:  # (*shape, L)
            return torch.stack(
                [torch.randint(0, v, shape, generator=g) for v in cfg.vocab_sizes], -1
            )

        mask = torch.rand(B, H, generator=g) < p_real
        sid = tokens(B, H).masked_fill(~mask[..., None], -1)
        fb = torch.randint(0, cfg.n_feedback_types, (B, H), generator=g).masked_fill(~mask, -1)
        t = torch.randn(B, H, cfg.time_dim, generator=g).masked_fill(~mask[..., None], float("nan"))
        return cls(
            user_feats=torch.randn(B, cfg.user_dim, generator=g),
            hist_sid=sid,
            hist_feedback=fb,
            hist_time=t,
            hist_mask=mask,
            now_time=torch.randn(B, cfg.time_dim, generator=g),
            target_sid=tokens(B),
        )

    @property
    def batch_size(self) -> int:
        return int(self.user_feats.shape[0])

    def map(self, fn: Any) -> GeneratorBatch:
        """Apply `fn` to every tensor (None stays None)."""
        return GeneratorBatch(
            **{
                f.name: (None if (t := getattr(self, f.name)) is None else fn(t))
                for f in fields(self)
            }
        )

    def to(self, device: torch.device | str) -> GeneratorBatch:
        return self.map(lambda t: t.to(device))

    def repeat_interleave(self, n: int) -> GeneratorBatch:
        """Each request repeated n times in a row: (B, ...) -> (B*n, ...)."""
        return self.map(lambda t: t.repeat_interleave(n, dim=0))

    def validate(self, cfg: OneLiveConfig) -> None:
        """Raise ValueError when a shape or dtype disagrees with the contract."""
        b = self.batch_size
        h = self.hist_sid.shape[1] if self.hist_sid.dim() == 3 else -1
        L, T = cfg.n_levels, cfg.time_dim
        expect = {
            "user_feats": ((b, cfg.user_dim), True),
            "hist_sid": ((b, h, L), False),
            "hist_feedback": ((b, h), False),
            "hist_time": ((b, h, T), True),
            "hist_mask": ((b, h), None),
            "now_time": ((b, T), True),
        }
        if self.target_sid is not None:
            expect["target_sid"] = ((b, L), False)
        for name, (shape, is_float) in expect.items():
            t = getattr(self, name)
            if tuple(t.shape) != shape:
                raise ValueError(
                    f"GeneratorBatch.{name} has shape {tuple(t.shape)}, expected {shape}"
                )
            ok = (
                t.dtype == torch.bool
                if is_float is None
                else (t.is_floating_point() if is_float else t.dtype == torch.long)
            )
            if not ok:
                kind = {None: "bool", True: "floating", False: "long"}[is_float]
                raise ValueError(f"GeneratorBatch.{name} has dtype {t.dtype}, expected {kind}")
        if h > cfg.max_history:
            raise ValueError(
                f"GeneratorBatch.hist_sid has {h} history slots > max_history={cfg.max_history}"
            )
