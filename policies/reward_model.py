"""Multi-objective reward model: one tower per objective and a weight-aware fusion tower.

Each tower predicts the expected value of one objective of
:data:`liveenv.objectives.OBJECTIVES` for one (request, live room) pair, over
the same inputs: the user's context (user features, the pooled clicked history
and its similarity to the room) and the room's observed row. Predictions are in
the units of the objectives (click, like, comment, follow: probabilities of the
impression; watch minutes and gift value: expected amounts per impression,
zeros for a swipe included), so ``weights @ towers`` is the expected reward.

The fusion tower (OneRec's "P-Score" idea) reads every tower's hidden state and
prediction together with the reward weights and refines the six predictions;
it is trained on the *weighted sum of the per-objective losses*, each
objective's loss weighted by its share ``|w_k| m_k / sum_j |w_j| m_j`` of the
reward (``m_k`` the mean of objective ``k``). Weights are drawn per training row
around the configured weights (``weight_jitter``), so at scoring time a change
of weights changes the fused score twice: through ``w @ nu`` and through the
tower's own weight input.

Inputs come from a :class:`liveenv.env.LiveStreamEnv` observation (single or
batched) or from its log-side twin (same keys, ``R = 1`` for the shown room).
Losses (:data:`OBJECTIVE_KIND`): binary cross-entropy for the 0/1 objectives and
for gifts (whose price the world draws independently of the context, so the
expected value is ``P(gift) x`` the mean price of a gift: far less variance than
regressing the heavy-tailed value), Poisson deviance (a proper scoring rule for
the mean) for watch minutes, scaled by their mean.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liveenv.objectives import DEFAULT_WEIGHTS, N_OBJECTIVES, OBJECTIVES, as_weight_vector
from liveenv.serialize import DictConfig
from policies.base import Obs, ScoringPolicy, as_batch
from policies.checkpoint import load_torch, save_torch

FORMAT = "liveenv.reward_model"
VERSION = 1

#: How each objective is modelled: "binary" (0/1: BCE), "amount" (>= 0: Poisson
#: deviance on the value over its mean) or "valued" (an event with a value drawn
#: independently of the context, like a gift's price: BCE on the event, times the
#: mean value of an event).
OBJECTIVE_KIND: dict[str, str] = {
    "click": "binary",
    "watch_time": "amount",
    "like": "binary",
    "comment": "binary",
    "follow": "binary",
    "gift": "valued",
}
_AMOUNT = torch.tensor([OBJECTIVE_KIND[k] == "amount" for k in OBJECTIVES])

#: Observation keys the model reads.
CONTEXT_KEYS = (
    "user",
    "history_streamer",
    "history_content",
    "history_feedback",
    "history_age",
    "history_mask",
    "rooms",
    "room_followed",
    "room_streamer",
    "time",
)
N_INTERACTIONS = 7  # similarity / same-streamer / followed features per slot


def _bad(name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"RewardModelConfig.{name}={value!r} is invalid: must be {allowed}")


@dataclass(frozen=True)
class RewardModelConfig(DictConfig):
    """Shape and behaviour of :class:`RewardModel`.

    user_dim, obs_dim, n_room_stats, time_dim: widths of the observation's
        ``user`` row, content embeddings, room statistics and ``time`` row.
    hidden, n_layers: width and depth of each objective tower (ReLU MLP).
    fusion_hidden: width of the fusion tower.
    reward_weights: the weights scoring uses when none are given, and the
        centre of the weights the fusion tower is trained on (OBJECTIVES order).
    weight_jitter: fusion training draws each weight from
        ``w_k * exp(U(-log j, log j))`` per row; 1 trains at ``w`` only.
    means: mean of each objective per impression on the training data.
    event_values: mean value of one event of a "valued" objective (1 elsewhere).
    Both are set by training from the log.
    """

    user_dim: int = 20
    obs_dim: int = 16
    n_room_stats: int = 6
    time_dim: int = 4
    hidden: int = 64
    n_layers: int = 2
    fusion_hidden: int = 64
    reward_weights: tuple[float, ...] = tuple(DEFAULT_WEIGHTS[k] for k in OBJECTIVES)
    weight_jitter: float = 4.0
    means: tuple[float, ...] = (1.0,) * N_OBJECTIVES
    event_values: tuple[float, ...] = (1.0,) * N_OBJECTIVES

    def __post_init__(self) -> None:
        for name in (
            "user_dim",
            "obs_dim",
            "n_room_stats",
            "time_dim",
            "hidden",
            "n_layers",
            "fusion_hidden",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise _bad(name, v, "an int >= 1")
        w = as_weight_vector(self.reward_weights, "RewardModelConfig.reward_weights")
        object.__setattr__(self, "reward_weights", tuple(float(x) for x in w))
        if not (isinstance(self.weight_jitter, (int, float)) and 1.0 <= self.weight_jitter < 1e6):
            raise _bad("weight_jitter", self.weight_jitter, "a number in [1, 1e6)")
        for name in ("means", "event_values"):
            s = tuple(float(x) for x in getattr(self, name))
            if len(s) != N_OBJECTIVES or not all(math.isfinite(x) and x > 0 for x in s):
                raise _bad(name, getattr(self, name), f"{N_OBJECTIVES} finite numbers > 0")
            object.__setattr__(self, name, s)

    @property
    def room_dim(self) -> int:
        return 2 * self.obs_dim + self.n_room_stats

    @property
    def feature_dim(self) -> int:
        """Width of one slot's input row (see :func:`slot_features`)."""
        user = self.user_dim + self.obs_dim + N_OBJECTIVES + 4 + self.time_dim
        return user + self.room_dim + N_INTERACTIONS


class RewardOutput(NamedTuple):
    tower_eta: Tensor  # (B, R, 6) logit (binary) or log of scaled mean (amount)
    fusion_eta: Tensor | None  # (B, R, 6) same link, refined by the fusion tower


def _signed_log(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def slot_features(ctx: Mapping[str, Tensor], cfg: RewardModelConfig) -> Tensor:
    """``(B, R, feature_dim)`` input rows: user context broadcast over the slots,
    the room row and user-room interaction features (all finite)."""
    o = cfg.obs_dim
    m = ctx["history_mask"].float()  # (B, H)
    h_len = m.shape[1]
    n = m.sum(1, keepdim=True)  # (B, 1)
    den = n.clamp_min(1.0)
    hc = ctx["history_content"].float() * m[..., None]  # (B, H, o)
    pooled = hc.sum(1) / den  # (B, o)
    fb = ctx["history_feedback"].float()  # (B, H, 6)
    fb = torch.cat(
        [fb[..., :1], torch.log1p(fb[..., 1:2]), fb[..., 2:5], torch.log1p(fb[..., 5:6])], -1
    )
    fb_mean = (fb * m[..., None]).sum(1) / den  # (B, 6)
    age = ctx["history_age"].float()  # (B, H), log1p(hours); newest last
    age_mean = (age * m).sum(1, keepdim=True) / den
    age_new = (age[:, -1:] * m[:, -1:]).clamp_min(0)
    user = torch.cat(
        [
            ctx["user"].float(),
            pooled,
            fb_mean,
            n / h_len,
            (n > 0).float(),
            age_mean,
            age_new,
            ctx["time"].float(),
        ],
        -1,
    )  # (B, user part)
    rooms = ctx["rooms"].float()  # (B, R, 2o + S)
    b, r, _ = rooms.shape
    content, streamer_emb = rooms[..., :o], rooms[..., o : 2 * o]
    stats = _signed_log(rooms[..., 2 * o :])
    sim_c = torch.einsum("bho,bro->bhr", hc, content)  # (B, H, R); padded rows are 0
    sim_p = torch.einsum("bho,bro->bhr", hc, streamer_emb)
    big = torch.finfo(sim_c.dtype).max
    has = (n > 0).float()  # (B, 1)

    def masked_max(s: Tensor) -> Tensor:
        return s.masked_fill(m[..., None] == 0, -big).amax(1) * has  # (B, R)

    same = (ctx["history_streamer"][:, :, None] == ctx["room_streamer"][:, None, :]) & (
        m[..., None] > 0
    )  # (B, H, R)
    inter = torch.stack(
        [
            sim_c.sum(1) / den,
            masked_max(sim_c),
            sim_p.sum(1) / den,
            masked_max(sim_p),
            (pooled[:, None, :] * content).sum(-1),
            same.float().sum(1) / h_len,
            ctx["room_followed"].float(),
        ],
        -1,
    )  # (B, R, N_INTERACTIONS)
    feats = torch.cat(
        [user[:, None, :].expand(b, r, -1), content, streamer_emb, stats, inter], -1
    )  # (B, R, F)
    return feats


def _mlp(d_in: int, hidden: int, n_layers: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*layers)


class RewardModel(nn.Module):
    """Six objective towers and a fusion tower (see the module doc)."""

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        self.config = cfg = config
        f = cfg.feature_dim
        self.register_buffer("feat_mean", torch.zeros(f))
        self.register_buffer("feat_std", torch.ones(f))
        self.towers = nn.ModuleList(_mlp(f, cfg.hidden, cfg.n_layers) for _ in OBJECTIVES)
        self.heads = nn.ModuleList(nn.Linear(cfg.hidden, 1) for _ in OBJECTIVES)
        d_fuse = N_OBJECTIVES * (cfg.hidden + 2)
        self.fusion = nn.Sequential(
            _mlp(d_fuse, cfg.fusion_hidden, 2), nn.Linear(cfg.fusion_hidden, N_OBJECTIVES)
        )
        self.register_buffer("obj_means", torch.tensor(cfg.means, dtype=torch.float32))
        self.register_buffer("event_values", torch.tensor(cfg.event_values, dtype=torch.float32))
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """Kaiming-uniform linears (torch's default) with zero biases; event heads
        start at the base rate (amount heads at the mean through ``means``); the
        fusion tower's last layer starts at zero so it begins as the towers."""
        if isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            nn.init.zeros_(module.bias)
        if module is self:
            nn.init.zeros_(self.fusion[-1].weight)
            cfg = self.config
            for k, (head, name) in enumerate(zip(self.heads, OBJECTIVES, strict=True)):
                if OBJECTIVE_KIND[name] != "amount":  # start at the base rate of the event
                    p = min(max(cfg.means[k] / cfg.event_values[k], 1e-6), 1 - 1e-6)
                    nn.init.constant_(head.bias, math.log(p / (1 - p)))

    # ----- inputs ----------------------------------------------------------------
    def features(self, ctx: Mapping[str, Tensor]) -> Tensor:
        """Standardised input rows ``(B, R, F)``."""
        return (slot_features(ctx, self.config) - self.feat_mean) / self.feat_std

    @torch.no_grad()
    def fit_normaliser(self, feats: Tensor) -> None:
        """Set the input standardisation from raw rows ``(N, F)`` of training data."""
        self.feat_mean.copy_(feats.mean(0))
        self.feat_std.copy_(feats.std(0).clamp_min(1e-3))

    def loss_shares(self, weights: Tensor) -> Tensor:
        """``(..., 6)`` share of each objective in the reward: ``|w| m / sum |w| m``."""
        a = weights.abs() * self.obj_means
        return a / a.sum(-1, keepdim=True).clamp_min(1e-12)

    # ----- forward ---------------------------------------------------------------
    def forward(
        self, ctx: Mapping[str, Tensor], weights: Tensor | None = None, fusion: bool = True
    ) -> RewardOutput:
        """Link-scale predictions of every slot. ``weights``: ``(6,)`` or ``(B, 6)``
        (default: the config's) for the fusion tower; ``fusion=False`` skips it."""
        x = self.features(ctx)  # (B, R, F)
        hidden = [tower(x) for tower in self.towers]  # 6 x (B, R, h)
        eta = torch.cat([head(h) for head, h in zip(self.heads, hidden, strict=True)], -1)
        if not fusion:
            return RewardOutput(eta, None)
        b, r = x.shape[:2]
        w = self._weights(weights, b, x)  # (B, 6)
        share = self.loss_shares(w)[:, None, :].expand(b, r, -1)  # (B, R, 6)
        inp = torch.cat([*(h.detach() for h in hidden), eta.detach(), share], -1)
        return RewardOutput(eta, eta.detach() + self.fusion(inp))

    def _weights(self, weights: Tensor | None, b: int, like: Tensor) -> Tensor:
        if weights is None:
            weights = like.new_tensor(self.config.reward_weights)
        weights = weights.to(like)
        return weights.expand(b, -1) if weights.dim() == 1 else weights

    def means(self, eta: Tensor) -> Tensor:
        """Link scale -> expected objective values in OBJECTIVES units ``(..., 6)``."""
        amount = _AMOUNT.to(eta.device)
        scaled = torch.exp(eta.clamp(max=30.0)) * self.obj_means
        return torch.where(amount, scaled, torch.sigmoid(eta) * self.event_values)

    def losses(self, eta: Tensor, target: Tensor) -> Tensor:
        """Elementwise per-objective loss ``(..., 6)`` of link-scale ``eta`` against
        observed values ``target`` (OBJECTIVES units)."""
        amount = _AMOUNT.to(eta.device)
        event = (target > 0).float()
        bce = F.binary_cross_entropy_with_logits(eta, event, reduction="none")
        y = target / self.obj_means
        pois = F.poisson_nll_loss(
            eta.clamp(max=30.0), y, log_input=True, full=False, reduction="none"
        )
        return torch.where(amount, pois, bce)

    # ----- scoring ---------------------------------------------------------------
    @torch.no_grad()
    def expected_feedback(self, obs: Obs, weights: Any = None, fusion: bool = True) -> np.ndarray:
        """``(B, R, 6)`` predicted feedback of every slot of a (batched) observation."""
        was = self.training
        self.eval()
        try:
            ctx = obs_to_tensors(obs)
            w = (
                None
                if weights is None
                else torch.as_tensor(as_weight_vector(weights), dtype=torch.float32)
            )
            out = self(ctx, w, fusion)
            eta = out.fusion_eta if fusion else out.tower_eta
            return self.means(eta).double().numpy()
        finally:
            self.train(was)

    def score(self, obs: Obs, weights: Any = None, fusion: bool = True) -> np.ndarray:
        """``(B, R)`` expected reward ``w @ f`` of each slot, ``-inf`` on empty slots."""
        batch = as_batch(obs)
        w = np.asarray(self.config.reward_weights) if weights is None else as_weight_vector(weights)
        util = self.expected_feedback(batch, w, fusion) @ w
        return np.where(batch["room_mask"].astype(bool), util, -np.inf)

    # ----- persistence -----------------------------------------------------------
    def save(self, path: str | os.PathLike[str], meta: Mapping[str, Any] | None = None) -> Path:
        """Write config, weights and ``meta`` (plain values) atomically."""
        payload = {
            "config": self.config.to_dict(),
            "state": self.state_dict(),
            "meta": dict(meta or {}),
        }
        return save_torch(path, FORMAT, VERSION, payload)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[RewardModel, dict[str, Any]]:
        """-> (model in eval mode, meta). ValueError for a corrupt or foreign file."""
        payload = load_torch(path, FORMAT, VERSION, "reward model")
        model = cls(RewardModelConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state"])
        return model.eval(), payload.get("meta") or {}


def obs_to_tensors(obs: Obs) -> dict[str, Tensor]:
    """The model's keys of a (single or batched) observation as batched tensors."""
    batch = as_batch(obs)
    missing = [k for k in CONTEXT_KEYS if k not in batch]
    if missing:
        raise KeyError(f"observation lacks {missing}; the reward model reads {list(CONTEXT_KEYS)}")
    out = {}
    for k in CONTEXT_KEYS:
        arr = np.asarray(batch[k])
        out[k] = torch.from_numpy(np.array(arr, dtype=np.int64 if "streamer" in k else np.float32))
    return out


class RewardModelPolicy(ScoringPolicy):
    """Greedy on a reward model's fused expected reward (a learned ranker baseline
    and the upper bound of what alignment against this model can reach)."""

    default_name = "reward_model"

    def __init__(
        self,
        path: str,
        reward_weights: Any = None,
        fusion: bool = True,
        name: str | None = None,
        slate_size: int = 1,
    ) -> None:
        super().__init__(name, slate_size)
        self.path = str(path)
        self.model, _ = RewardModel.load(self.path)
        self.reward_weights = (
            None if reward_weights is None else as_weight_vector(reward_weights).tolist()
        )
        self.fusion = bool(fusion)

    def scores(self, batch: dict[str, np.ndarray], env: Any = None) -> np.ndarray:
        return self.model.score(batch, self.reward_weights, self.fusion)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "path": self.path,
            "reward_weights": self.reward_weights,
            "fusion": self.fusion,
        }


__all__ = [
    "CONTEXT_KEYS",
    "OBJECTIVE_KIND",
    "RewardModel",
    "RewardModelConfig",
    "RewardModelPolicy",
    "RewardOutput",
    "obs_to_tensors",
    "slot_features",
]
