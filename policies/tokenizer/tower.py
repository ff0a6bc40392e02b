"""Behaviour-aligned two-tower model: the room tower whose output is quantised into SIDs.

Room tower (REFERENCE.md section 1), ``e30`` the observed 30-s content embedding,
``e_pool`` the pooled streamer embedding, ``e_id`` a learned streamer-id embedding
(hash buckets, so streamers never seen in training still get a row)::

    e_c = MLP([e30 ; e_pool])                       (N, D)
    g   = sigmoid(W_g [e30 ; e_pool ; e_id] + b_g)  (N, D) one gate per dimension
    e_s = normalise(g * e_id + (1 - g) * e_c)       (N, D) unit length

User tower: ``e_u = normalise(MLP([user_feat ; mean of recent clicked content ; has_history]))``.

Training: in-batch softmax (InfoNCE) over logged clicks; row ``i`` of a batch is the
positive of user ``i`` and the other rooms of the batch its negatives::

    loss = sum_i w_i * CE(e_u_i . e_s_j / temperature over j, target i) / sum_i w_i

with ``w_i`` the click weight (see :func:`click_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import erf
from torch import Tensor, nn

from liveenv.serialize import DictConfig

__all__ = [
    "ClickBatch",
    "RoomTowerArrays",
    "TowerConfig",
    "TwoTower",
    "batch_loss",
    "click_weights",
    "hash_buckets",
    "hash_streamers",
    "mean_info_nce",
    "pool_history",
    "train_towers",
]

# Knuth's multiplicative constant: spreads consecutive streamer ids over the buckets.
_HASH_MULT = 2654435761


def _bad(field: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"TowerConfig.{field}={value!r} is invalid: must be {allowed}")


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


@dataclass(frozen=True)
class TowerConfig(DictConfig):
    """Shape of the two towers.

    content_dim: width of the observed content (and pooled) embedding.
    user_dim: width of the user features.
    embed_dim: width D of the aligned embedding (what gets quantised).
    hidden_dim: hidden width of both MLPs.
    n_streamer_buckets: rows of the hashed streamer-id embedding table.
    gate_bias_init: initial gate bias; negative starts the fusion on the content side.
    """

    content_dim: int = 16
    user_dim: int = 20
    embed_dim: int = 32
    hidden_dim: int = 64
    n_streamer_buckets: int = 2048
    gate_bias_init: float = -1.0

    def __post_init__(self) -> None:
        for name in ("content_dim", "user_dim", "embed_dim", "hidden_dim", "n_streamer_buckets"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise _bad(name, v, "an int >= 1")
            object.__setattr__(self, name, int(v))
        g = self.gate_bias_init
        if not isinstance(g, (int, float)) or isinstance(g, bool) or not math.isfinite(g):
            raise _bad("gate_bias_init", g, "a finite float")


def hash_buckets(streamer_id: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of each streamer id: ``((id mod 2^32) * 2654435761) mod 2^32 mod n_buckets``."""
    ids = np.asarray(streamer_id).astype(np.int64).reshape(-1) % (1 << 32)
    return (
        (ids.astype(np.uint64) * np.uint64(_HASH_MULT)) % np.uint64(1 << 32) % np.uint64(n_buckets)
    ).astype(np.int64)


def hash_streamers(streamer_id: np.ndarray | Tensor, n_buckets: int) -> Tensor:
    """:func:`hash_buckets` as an int64 tensor (embedding rows of the streamer ids)."""
    return torch.from_numpy(hash_buckets(np.asarray(streamer_id), n_buckets))


class _MLP(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, d_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


@dataclass(frozen=True, eq=False)
class RoomTowerArrays:
    """The room tower in numpy: the same function as :meth:`TwoTower.rooms` without
    torch's per-call overhead (a 30-s refresh of a few hundred rooms is a few small
    matrix products). Built by :meth:`TwoTower.room_arrays`."""

    w1: np.ndarray  # (2o, H)
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (H, D)
    b2: np.ndarray  # (D,)
    emb: np.ndarray  # (n_buckets, D)
    wg: np.ndarray  # (2o + D, D)
    bg: np.ndarray  # (D,)
    n_buckets: int

    def __call__(
        self, content: np.ndarray, pooled: np.ndarray, streamer_id: np.ndarray
    ) -> np.ndarray:
        """content, pooled (N, o), streamer_id (N,) -> unit room embeddings (N, D) float32."""
        x = np.concatenate([content, pooled], axis=1).astype(np.float32, copy=False)  # (N, 2o)
        h = x @ self.w1 + self.b1  # (N, H)
        h = 0.5 * h * (1.0 + erf(h / np.float32(math.sqrt(2.0))))  # exact GELU, as F.gelu
        e_c = h @ self.w2 + self.b2  # (N, D)
        e_id = self.emb[hash_buckets(streamer_id, self.n_buckets)]  # (N, D)
        z = np.concatenate([x, e_id], axis=1) @ self.wg + self.bg
        g = 1.0 / (1.0 + np.exp(-z))  # (N, D)
        e = g * e_id + (1.0 - g) * e_c
        norm = np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)  # as F.normalize
        return (e / norm).astype(np.float32, copy=False)


class TwoTower(nn.Module):
    """Room tower (gate-fused content + id) and user tower, both to unit vectors."""

    def __init__(self, config: TowerConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = c = config
        self.content_mlp = _MLP(2 * c.content_dim, c.hidden_dim, c.embed_dim)
        self.streamer_emb = nn.Embedding(c.n_streamer_buckets, c.embed_dim)
        self.gate = nn.Linear(2 * c.content_dim + c.embed_dim, c.embed_dim)
        self.user_mlp = _MLP(c.user_dim + c.content_dim + 1, c.hidden_dim, c.embed_dim)
        self._init_weights(generator)

    @torch.no_grad()
    def _init_weights(self, generator: torch.Generator | None) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                std = 1.0 / math.sqrt(module.in_features)
                nn.init.normal_(module.weight, 0.0, std, generator=generator)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, 0.02, generator=generator)
        nn.init.constant_(self.gate.bias, self.config.gate_bias_init)

    def rooms(self, content: Tensor, pooled: Tensor, bucket: Tensor) -> Tensor:
        """content, pooled (N, o), bucket (N,) long -> unit room embeddings (N, D)."""
        x = torch.cat([content, pooled], dim=-1)  # (N, 2o)
        e_c = self.content_mlp(x)  # (N, D)
        e_id = self.streamer_emb(bucket)  # (N, D)
        g = torch.sigmoid(self.gate(torch.cat([x, e_id], dim=-1)))  # (N, D)
        return F.normalize(g * e_id + (1.0 - g) * e_c, dim=-1)

    @torch.no_grad()
    def room_arrays(self) -> RoomTowerArrays:
        """A numpy copy of the room tower for fast inference (the weights as of now)."""

        def f32(t: Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32, copy=True)

        m = self.content_mlp
        return RoomTowerArrays(
            w1=f32(m.fc1.weight.T),
            b1=f32(m.fc1.bias),
            w2=f32(m.fc2.weight.T),
            b2=f32(m.fc2.bias),
            emb=f32(self.streamer_emb.weight),
            wg=f32(self.gate.weight.T),
            bg=f32(self.gate.bias),
            n_buckets=self.config.n_streamer_buckets,
        )

    def gate_values(self, content: Tensor, pooled: Tensor, bucket: Tensor) -> Tensor:
        """The id-side gate ``g`` (N, D) (diagnostic: how much identity vs content)."""
        x = torch.cat([content, pooled], dim=-1)
        return torch.sigmoid(self.gate(torch.cat([x, self.streamer_emb(bucket)], dim=-1)))

    def users(self, user_feat: Tensor, history: Tensor, has_history: Tensor) -> Tensor:
        """user_feat (N, U), history (N, o) pooled clicked content, has_history (N,)."""
        x = torch.cat([user_feat, history, has_history[:, None].to(user_feat.dtype)], dim=-1)
        return F.normalize(self.user_mlp(x), dim=-1)  # (N, D)

    def info_nce(self, user: Tensor, room: Tensor, weight: Tensor, temperature: float) -> Tensor:
        """Weighted in-batch softmax loss; user, room (B, D) unit, weight (B,)."""
        logits = user @ room.T / temperature  # (B, B)
        target = torch.arange(user.shape[0], device=user.device)
        per_row = F.cross_entropy(logits, target, reduction="none")  # (B,)
        return (weight * per_row).sum() / weight.sum()


def click_weights(
    watch_time_ms: np.ndarray,
    like: np.ndarray,
    comment: np.ndarray,
    follow: np.ndarray,
    gift_price: np.ndarray,
    coef: tuple[float, float, float, float, float] = (1.0, 0.5, 1.0, 2.0, 1.0),
) -> np.ndarray:
    """Weight of each logged click in the InfoNCE loss (float32, >= 1).

    ``w = 1 + a_watch log1p(watch minutes) + a_like like + a_comment comment
    + a_follow follow + a_gift log1p(gift price)`` with ``coef = (a_watch, a_like,
    a_comment, a_follow, a_gift)``: a click that led nowhere counts once, a long watch
    with a follow and a gift counts several times.
    """
    a_watch, a_like, a_comment, a_follow, a_gift = coef
    w = (
        1.0
        + a_watch * np.log1p(np.asarray(watch_time_ms, dtype=np.float64) / 60_000.0)
        + a_like * np.asarray(like, dtype=np.float64)
        + a_comment * np.asarray(comment, dtype=np.float64)
        + a_follow * np.asarray(follow, dtype=np.float64)
        + a_gift * np.log1p(np.maximum(np.asarray(gift_price, dtype=np.float64), 0.0))
    )
    return w.astype(np.float32)


def pool_history(
    history_content: np.ndarray, history_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the real history slots: (N, H, o) + mask (N, H) -> (N, o), has (N,) bool."""
    h = np.asarray(history_content, dtype=np.float32)
    if h.ndim != 3:
        raise ValueError(f"history_content must be 3-D (N, H, o), got shape {h.shape}")
    m = np.ones(h.shape[:2], np.float32) if history_mask is None else np.asarray(history_mask)
    m = m.astype(np.float32)
    count = m.sum(axis=1)  # (N,)
    pooled = np.einsum("nh,nho->no", m, h) / np.maximum(count, 1.0)[:, None]
    return pooled.astype(np.float32), count > 0


# --------------------------------------------------------------------------- training

#: A click batch: content, pooled (N, o) float; bucket (N,) long; user (N, U) float;
#: hist (N, o) float pooled clicked content; has (N,) bool; weight (N,) float.
ClickBatch = dict[str, Tensor]


def train_towers(
    batch: ClickBatch,
    config: TowerConfig,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    temperature: float,
    seed: int,
    progress: bool = False,
) -> tuple[TwoTower, list[float]]:
    """Train a fresh :class:`TwoTower` with AdamW on in-batch InfoNCE over ``batch``.

    Returns the tower (eval mode) and ``[loss before training, mean loss of epoch 1,
    ...]``; the first entry is :func:`mean_info_nce` of the untrained tower. Init and
    batch order come from ``seed`` only.
    """
    gen = torch.Generator().manual_seed(seed)
    tower = TwoTower(config, generator=gen)
    opt = torch.optim.AdamW(tower.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(batch["weight"])
    bs = min(batch_size, n)
    losses = [mean_info_nce(tower, batch, temperature, bs, seed)]
    say: Callable[[str], None] = print if progress else (lambda _msg: None)
    say(f"tower: {n} clicks, InfoNCE before training {losses[0]:.4f}")
    for epoch in range(epochs):
        tower.train()
        perm = torch.randperm(n, generator=gen)
        total, steps = 0.0, 0
        for i in range(0, n - bs + 1, bs):  # drop the last partial batch
            loss = batch_loss(tower, batch, perm[i : i + bs], temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + loss.item(), steps + 1
        losses.append(total / max(steps, 1))
        say(f"tower epoch {epoch + 1}/{epochs}: InfoNCE {losses[-1]:.4f}")
    return tower.eval(), losses


def batch_loss(tower: TwoTower, b: ClickBatch, idx: Tensor, temperature: float) -> Tensor:
    """InfoNCE of the clicks ``idx`` of ``b`` against each other (in-batch negatives)."""
    room = tower.rooms(b["content"][idx], b["pooled"][idx], b["bucket"][idx])  # (B, D)
    user = tower.users(b["user"][idx], b["hist"][idx], b["has"][idx])  # (B, D)
    return tower.info_nce(user, room, b["weight"][idx], temperature)


@torch.no_grad()
def mean_info_nce(
    tower: TwoTower, b: ClickBatch, temperature: float, batch_size: int, seed: int
) -> float:
    """Mean InfoNCE over fixed batches (order from ``seed``): comparable across towers."""
    tower.eval()
    n = len(b["weight"])
    bs = min(batch_size, n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    losses = [
        batch_loss(tower, b, perm[i : i + bs], temperature).item() for i in range(0, n - bs + 1, bs)
    ]
    return float(np.mean(losses)) if losses else float("nan")
