"""Align the pretrained generator to weighted objectives with GRPO / ECPO.

    python -m agents.align.grpo --generator runs/pretrain/model.pt \
        --reward-model runs/rm/reward_model.pt --weights gift=0.05 --out runs/align

One iteration (REFERENCE.md section 3, OneRec's ECPO):

1. draw ``requests_per_iter`` requests from the request pool
   (:mod:`agents.align.pool`);
2. per request, sample a group of ``group_size`` live rooms from the current
   policy ``pi_old`` (Gumbel top-k over the slot distribution, i.e. sampling
   without replacement, the law of stochastic constrained beam search);
3. reward of each candidate: ``w @ f`` with ``f`` the reward model's expected
   feedback (``--reward-source model``, offline) or the environment's expected
   response at that request (``env``, online; see the pool's doc);
4. group-normalised advantages ``A = (r - mean r) / std r``, clamped to
   ``+-adv_clip``; a group whose reward spread is below ``min_group_std`` is
   degenerate and skipped (zero advantage, left out of the mean);
5. ``update_epochs`` passes of the clipped surrogate
   ``mean min(rho A, clip(rho, 1 - eps, 1 + eps) A)`` with ECPO's early-clipped
   ratio ``rho = pi / max(sg(pi) / (1 + eps + delta), pi_old)`` (``--method
   ecpo``; ``grpo`` uses the plain ratio ``pi / pi_old``);
6. a regulariser, one of: ``sft`` (log-likelihood of each group's best room,
   OneRec's choice: no KL term), ``kl`` (the exact KL over the live slots to the
   frozen pretrained reference), ``none``.

Checkpoints (``OUT/ckpt.pt``: model, optimizer, RNG states, pool file, feature
cache, curve rows) are written atomically every ``checkpoint_every``
iterations; ``--resume`` continues to the same parameters as an uninterrupted
run. Curves (``OUT/curves.csv``, ``curves.png``): sampled reward, the expected
reward and per-objective rates of ``pi`` and of its greedy choice on a fixed
set of held-out pool requests (by the environment and by the reward model),
KL to the reference, clip fraction, entropy, skipped groups. The aligned
generator is ``OUT/model.pt`` (the last one) and ``OUT/best.pt`` (the one whose
greedy choice had the best return on the held-out pool requests, by the run's
own reward source: model selection on validation requests, never on the
evaluation seeds); both are generator checkpoints naming their tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from agents.align.args import AlignArgs
from agents.align.loop import train
from agents.align.objective import Groups, ecpo_surrogate, exact_kl
from agents.run import cliargs


# ----- the loss ---------------------------------------------------------------------
def grpo_loss(args: AlignArgs, logp: Tensor, g: Groups) -> tuple[Tensor, dict[str, float]]:
    """The ECPO/GRPO surrogate plus the chosen regulariser, on slot log-probs (B, R)."""
    new = logp.gather(1, g.cand)  # (B, G)
    pg, clip_frac = ecpo_surrogate(
        new, g.old_logp, g.adv, g.valid, args.clip_eps, args.ecpo_delta, args.method == "ecpo"
    )
    reg = regulariser(args, logp, g)
    return pg + reg, {"pg_loss": pg.item(), "reg_loss": reg.item(), "clip_frac": clip_frac.item()}


def regulariser(args: AlignArgs, logp: Tensor, g: Groups) -> Tensor:
    if args.regulariser == "sft":
        best = logp.gather(1, g.cand.gather(1, g.best[:, None]))[:, 0]  # (B,)
        m = g.valid.float()
        return -args.sft_coef * (best * m).sum() / m.sum().clamp_min(1.0)
    if args.regulariser == "kl":
        return args.kl_coef * exact_kl(logp, g.ref_logp).mean()
    return logp.new_zeros(())


def align(args: AlignArgs) -> Path:
    """GRPO/ECPO alignment (the Python entry point the CLI calls)."""
    return train(args, grpo_loss, f"align/{args.method}")


def main(argv: Sequence[str] | None = None) -> Path:
    args = cliargs.parse(AlignArgs, argv, prog="python -m agents.align.grpo")
    path = align(args)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
