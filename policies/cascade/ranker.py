"""Multi-task ranker: a shared bottom and one head per objective.

Each head predicts one objective of :data:`liveenv.objectives.OBJECTIVES`
for a (request, room) pair, in the chain an impression goes through (the
click, then what happens during the watch, as ESMM does):

* ``click``: ``P(click)``, binary cross-entropy on every exposure (clicked or not);
* ``watch_time``: ``E[minutes | click]`` with a log link, Poisson deviance on
  the clicked exposures (a proper scoring rule for a mean, unlike a log1p
  regression, which would rank by the median of a heavy-tailed watch);
* ``like``, ``comment``, ``follow``, ``gift``: ``P(event | click)``, binary
  cross-entropy on the clicked exposures.

:meth:`MultiTaskRanker.expected_feedback` multiplies the chain out into the
expected feedback vector of the impression, in the env's units: ``(P(c),
P(c) E[min|c], P(c) P(like|c), ..., P(c) P(gift|c) * gift_value)``, with
``gift_value`` the mean price of a gift in the training logs. Score fusion
is then ``weights @ expected_feedback``: the expected reward under the env's
own reward weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liveenv.objectives import N_OBJECTIVES, OBJECTIVES
from policies.cascade.retrieval import Standardize, init_weights, mlp

CLICK, WATCH, GIFT = 0, 1, 5
#: Heads conditional on a click (every head but the click).
CONDITIONAL = tuple(range(1, N_OBJECTIVES))
_MAX_LOG_MINUTES = 7.0  # exp(7) ~ 1100 min: above any cap on a single watch


@dataclass(frozen=True)
class RankerConfig:
    """in_dim: input width; hidden: shared-bottom widths; head_hidden: width of
    each head's hidden layer; dropout: in the shared bottom; raw_embeddings:
    whether the input includes the raw content/taste vectors (platform-specific)
    besides their cosines; retrieval_feature: whether the input includes the
    two-tower score; gift_value: mean gift price (env units) that turns
    ``P(gift)`` into an expected gift value."""

    in_dim: int
    hidden: tuple[int, ...] = (256, 128)
    head_hidden: int = 64
    dropout: float = 0.1
    raw_embeddings: bool = False
    retrieval_feature: bool = True
    gift_value: float = 70.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if int(self.in_dim) != self.in_dim or self.in_dim < 1:
            raise ValueError(
                f"RankerConfig.in_dim={self.in_dim!r} is invalid: must be an integer >= 1"
            )
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"RankerConfig.hidden={self.hidden!r} is invalid: need widths >= 1")
        if int(self.head_hidden) != self.head_hidden or self.head_hidden < 1:
            raise ValueError(
                f"RankerConfig.head_hidden={self.head_hidden!r} is invalid: must be an integer >= 1"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"RankerConfig.dropout={self.dropout!r} is invalid: must be in [0, 1)")
        if not self.gift_value > 0:
            raise ValueError(f"RankerConfig.gift_value={self.gift_value!r} is invalid: must be > 0")


class MultiTaskRanker(nn.Module):
    def __init__(self, config: RankerConfig) -> None:
        super().__init__()
        c = self.config = config
        self.norm = Standardize(c.in_dim)
        layers: list[nn.Module] = []
        for a, b in zip((c.in_dim, *c.hidden[:-1]), c.hidden, strict=True):
            layers += [nn.Linear(a, b), nn.GELU(), nn.Dropout(c.dropout)]
        self.bottom = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            mlp([c.hidden[-1], c.head_hidden, 1]) for _ in range(N_OBJECTIVES)
        )
        self.register_buffer("watch_scale", torch.ones(()))  # mean minutes of a clicked watch
        self.apply(init_weights)

    @torch.no_grad()
    def init_bias(self, feedback: Tensor) -> None:
        """Start every head at the training data's base rate (faster, steadier fits)
        and scale the watch loss by the mean watch of a click."""
        clicked = feedback[:, CLICK] > 0
        rates = [feedback[:, CLICK].float().mean()]
        for k in CONDITIONAL:
            y = feedback[clicked, k].float()
            rates.append(y.mean() if k == WATCH else (y > 0).float().mean())
        self.watch_scale.fill_(float(rates[WATCH].clamp_min(1e-3)))
        for k, rate in enumerate(rates):
            r = rate.clamp(1e-4, 1e4 if k == WATCH else 1 - 1e-4)
            self.heads[k][-1].bias.fill_(float(r.log() if k == WATCH else torch.logit(r)))

    def forward(self, x: Tensor) -> Tensor:
        """``(..., 6)`` raw outputs: logits, and the log mean of the watch head."""
        h = self.bottom(self.norm(x))  # (..., H)
        return torch.cat([head(h) for head in self.heads], dim=-1)  # (..., 6)

    def loss(self, x: Tensor, feedback: Tensor) -> dict[str, Tensor]:
        """Per-head losses (means) of ``x`` ``(N, D)`` against ``feedback`` ``(N, 6)``
        in env units, and ``total``, their sum."""
        out = self.forward(x)  # (N, 6)
        clicked = feedback[:, CLICK] > 0
        losses = {"click": F.binary_cross_entropy_with_logits(out[:, CLICK], feedback[:, CLICK])}
        oc, yc = out[clicked], feedback[clicked]
        for k in CONDITIONAL:
            name = OBJECTIVES[k]
            if len(yc) == 0:
                losses[name] = out.sum() * 0.0
            elif k == WATCH:
                log_mu = oc[:, k].clamp(max=_MAX_LOG_MINUTES)
                nll = log_mu.exp() - yc[:, k] * log_mu  # Poisson, up to a constant in y
                losses[name] = nll.mean() / self.watch_scale
            else:
                losses[name] = F.binary_cross_entropy_with_logits(oc[:, k], (yc[:, k] > 0).float())
        losses["total"] = sum(losses.values())
        return losses

    @torch.no_grad()
    def expected_feedback(self, x: Tensor) -> Tensor:
        """``(..., 6)`` expected feedback of the impression in env units."""
        out = self.forward(x)
        p_click = torch.sigmoid(out[..., CLICK])
        cond = torch.sigmoid(out)
        cond[..., WATCH] = out[..., WATCH].clamp(max=_MAX_LOG_MINUTES).exp()
        cond[..., GIFT] = cond[..., GIFT] * self.config.gift_value
        cond[..., CLICK] = 1.0
        return p_click[..., None] * cond
