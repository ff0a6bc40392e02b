"""The pieces of one GRPO / ECPO iteration that need no run state: the sampled groups,
their group-normalised advantages, ECPO's early-clipped surrogate and the exact KL
over the live slots (:mod:`agents.align.grpo` puts them together; REFERENCE.md
section 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from agents.align.actor import EncodedRequests

__all__ = ["Groups", "ecpo_surrogate", "exact_kl", "group_advantages"]


@dataclass
class Groups:
    """The sampled groups of one iteration (B requests x G candidates)."""

    enc: EncodedRequests
    cand: Tensor  # (B, G) slots
    reward: Tensor  # (B, G)
    adv: Tensor  # (B, G) normalised, clamped; 0 in skipped groups
    valid: Tensor  # (B,) bool: the group's reward spread is usable
    old_logp: Tensor  # (B, G) log pi_old of the candidates
    ref_logp: Tensor  # (B, R) log pi_ref of every slot

    def rows(self, idx: Tensor) -> Groups:
        return Groups(
            self.enc.index(idx),
            self.cand[idx],
            self.reward[idx],
            self.adv[idx],
            self.valid[idx],
            self.old_logp[idx],
            self.ref_logp[idx],
        )

    @property
    def best(self) -> Tensor:
        return self.reward.argmax(-1)  # (B,)

    @property
    def worst(self) -> Tensor:
        return self.reward.argmin(-1)  # (B,)


def group_advantages(reward: Tensor, min_std: float, clip: float) -> tuple[Tensor, Tensor]:
    """``(A (B, G), valid (B,))``: group-normalised, clamped; zero in degenerate groups."""
    mean, std = reward.mean(-1, keepdim=True), reward.std(-1, unbiased=False, keepdim=True)
    valid = std[:, 0] > min_std
    adv = ((reward - mean) / std.clamp_min(1e-12)).clamp(-clip, clip)
    return adv.masked_fill(~valid[:, None], 0.0), valid


def ecpo_surrogate(
    new_logp: Tensor,
    old_logp: Tensor,
    adv: Tensor,
    valid: Tensor,
    eps: float,
    delta: float,
    early: bool = True,
) -> tuple[Tensor, Tensor]:
    """(loss, clip fraction) of the clipped surrogate over the valid groups.

    ECPO (``early``): ``rho = pi / max(sg(pi) / (1 + eps + delta), pi_old)``, so a
    sample whose probability already rose far above ``pi_old`` keeps a bounded
    ratio even when its advantage is negative; plain GRPO: ``rho = pi / pi_old``."""
    if early:
        log_den = torch.maximum(new_logp.detach() - math.log1p(eps + delta), old_logp)
    else:
        log_den = old_logp
    rho = torch.exp((new_logp - log_den).clamp(-20.0, 20.0))  # (B, G)
    surr = torch.minimum(rho * adv, rho.clamp(1 - eps, 1 + eps) * adv)
    m = valid[:, None].float().expand_as(surr)
    n = m.sum().clamp_min(1.0)
    clipped = ((rho - 1).abs() > eps).float()
    return -(surr * m).sum() / n, (clipped * m).sum() / n


def exact_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """``(B,)`` KL(pi || pi_ref) over the live slots (both -inf elsewhere)."""
    live = torch.isfinite(logp) & torch.isfinite(ref_logp)
    diff = torch.where(live, logp - ref_logp, torch.zeros_like(logp))
    return (torch.exp(logp).masked_fill(~live, 0.0) * diff).sum(-1)
