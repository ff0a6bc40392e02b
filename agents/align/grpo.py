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

import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from agents.align.actor import GeneratorActor
from agents.align.common import (
    parse_weights,
    plot_curves,
    rng_restore,
    rng_snapshot,
    seed_globals,
    write_curves,
)
from agents.align.objective import Groups, ecpo_surrogate, exact_kl, group_advantages
from agents.align.pool import BEHAVIOURS, RequestPool, collect_pool, make_behaviour, sample_slots
from agents.run import cliargs
from liveenv.atomic import atomic_write_bytes
from liveenv.env import LiveStreamEnv
from liveenv.objectives import OBJECTIVES
from liveenv.presets import make_config
from policies.onelive.checkpoint import load_checkpoint, save_checkpoint
from policies.reward_model import RewardModel

#: Arguments that may change between an interrupted run and its resumption.
RESUMABLE = ("resume", "stop_at", "progress", "threads", "figures", "select")


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass
class AlignArgs:
    """Align a pretrained generator with group-relative policy optimisation."""

    generator: str = _help(
        "pretrained generator checkpoint (agents.train.pretrain's model.pt)", default=""
    )
    reward_model: str = _help(
        "reward model file (agents.train.reward); needed for source model", default=""
    )
    out: str = _help("output folder", default="runs/align")
    weights: str | None = _help(
        "reward weights: NAME=VALUE,... | 6 numbers | .json/.yaml", default=None
    )
    reward_source: Literal["model", "env"] = _help(
        "candidate rewards: model (offline) | env (expected response)", default="model"
    )
    fusion: bool = _help(
        "score with the reward model's fusion tower (else its towers)", default=True
    )
    method: Literal["ecpo", "grpo"] = _help(
        "policy ratio: ecpo (early-clipped) | grpo (plain)", default="ecpo"
    )
    regulariser: Literal["sft", "kl", "none"] = _help(
        "sft (best sample) | kl (to the reference) | none", default="sft"
    )
    sft_coef: float = _help("weight of the SFT term", default=0.1)
    kl_coef: float = _help("weight of the KL term", default=0.05)
    preset: str = _help("world preset of the request pool", default="default")
    overrides: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "env config overrides FIELD=VALUE"}
    )
    pool_requests: int = _help("requests in the pool", default=4096)
    pool_steps_per_seed: int = _help("requests kept per episode seed", default=2048)
    pool_seed: int = _help("first env seed of the pool (keep apart from eval seeds)", default=1000)
    pool_file: str = _help(
        "reuse this pool file (e.g. across a sweep) instead of collecting", default=""
    )
    behaviour: Literal["policy", "greedy", "platform", "random"] = _help(
        "who acts while collecting: policy (samples) | greedy | platform | random",
        default="policy",
    )
    refresh_every: int = _help(
        "iterations between pool refreshes by the current policy (0: never)", default=0
    )
    refresh_requests: int = _help("requests replaced per refresh", default=512)
    eval_requests: int = _help(
        "held-out pool requests for the curves and select=best: the pool's last ones, i.e. "
        "eval_requests / pool_steps_per_seed days; a single day picks noisily "
        "(benchmarks/aligned_by_day.py)", default=256)  # fmt: skip
    iterations: int = _help("policy-optimisation iterations", default=150)
    requests_per_iter: int = _help("requests (groups) per iteration", default=32)
    group_size: int = _help("candidates per group (G)", default=8)
    sample_replace: bool = _help("draw candidates with replacement", default=False)
    temperature: float = _help("sampling temperature of the candidates", default=1.0)
    update_epochs: int = _help("optimisation passes over each iteration's groups", default=2)
    minibatches: int = _help("minibatches per pass", default=1)
    lr: float = _help("Adam learning rate", default=1e-4)
    prior_lr_scale: float = _help(
        "learning rate of the room prior (OneLiveConfig.room_prior) as a multiple of lr: its "
        "few weights read features that hold on any day, the SID stack's what paid on the "
        "pool's days", default=1.0)  # fmt: skip
    clip_eps: float = _help("PPO clip epsilon", default=0.2)
    ecpo_delta: float = _help("ECPO's early-clip margin delta", default=0.1)
    adv_clip: float = _help("clamp of the normalised advantages", default=5.0)
    min_group_std: float = _help("groups with a smaller reward std are skipped", default=1e-6)
    max_grad_norm: float = _help("gradient clipping norm (0: off)", default=1.0)
    log_every: int = _help("iterations per curve row", default=5)
    checkpoint_every: int = _help("iterations per checkpoint", default=25)
    stop_at: int = _help(
        "stop after this iteration with a checkpoint (0: run to the end)", default=0
    )
    resume: bool = _help("continue from OUT/ckpt.pt", default=False)
    seed: int = _help("seed of sampling and pool collection", default=0)
    threads: int = _help("torch CPU threads", default=1)
    progress: bool = _help("show a progress bar", default=True)
    figures: bool = _help("draw the curves figure at the end", default=True)
    select: Literal["best", "last"] = _help(
        "model returned: best (held-out greedy return) | last", default="best"
    )

    def __post_init__(self) -> None:
        choices = {"reward_source": ("model", "env"), "method": ("ecpo", "grpo"),
                   "regulariser": ("sft", "kl", "none"), "behaviour": BEHAVIOURS,
                   "select": ("best", "last")}  # fmt: skip
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"AlignArgs.{name}={getattr(self, name)!r}: allowed {list(allowed)}"
                )
        positive = ("pool_requests", "pool_steps_per_seed", "iterations", "requests_per_iter",
                    "group_size", "update_epochs", "minibatches", "log_every", "checkpoint_every",
                    "threads", "refresh_requests", "eval_requests")  # fmt: skip
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"AlignArgs.{name}={getattr(self, name)!r}: must be >= 1")
        for name in ("refresh_every", "stop_at", "sft_coef", "kl_coef", "ecpo_delta", "min_group_std",
                     "max_grad_norm"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"AlignArgs.{name}={getattr(self, name)!r}: must be >= 0")
        for name in ("lr", "prior_lr_scale", "clip_eps", "adv_clip", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AlignArgs.{name}={getattr(self, name)!r}: must be > 0")
        if self.group_size < 2:
            raise ValueError(
                f"AlignArgs.group_size={self.group_size}: a group needs >= 2 candidates"
            )
        if self.minibatches > self.requests_per_iter:
            raise ValueError(f"AlignArgs.minibatches={self.minibatches} > requests_per_iter")
        if self.eval_requests >= self.pool_requests:
            raise ValueError(
                f"AlignArgs.eval_requests={self.eval_requests} must be < pool_requests"
            )
        if self.reward_source == "model" and not self.reward_model:
            raise ValueError("AlignArgs.reward_model is required with reward_source='model'")
        parse_weights(self.weights)


# ----- the loss ---------------------------------------------------------------------
def grpo_loss(args: AlignArgs, logp: Tensor, g: Groups) -> tuple[Tensor, dict[str, float]]:
    """The ECPO/GRPO surrogate plus the chosen regulariser, on slot log-probs (B, R)."""
    new = logp.gather(1, g.cand)  # (B, G)
    pg, clip_frac = ecpo_surrogate(new, g.old_logp, g.adv, g.valid, args.clip_eps,
                                   args.ecpo_delta, args.method == "ecpo")  # fmt: skip
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


LossFn = Callable[[AlignArgs, Tensor, Groups], tuple[Tensor, dict[str, float]]]


# ----- setup --------------------------------------------------------------------------
@dataclass
class Run:
    """Everything an alignment run holds."""

    args: AlignArgs
    actor: GeneratorActor
    ref: GeneratorActor
    opt: torch.optim.Optimizer
    pool: RequestPool
    pool_file: str
    weights: Tensor
    gen: torch.Generator
    np_rng: np.random.Generator
    eval_rows: Tensor
    iteration: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    sample_from_ref: bool = False  # draw the groups from the frozen reference (offline DPO)


def _env(args: AlignArgs) -> LiveStreamEnv:
    return LiveStreamEnv(make_config(args.preset, **args.overrides))


def _collect(run_args: AlignArgs, actor: GeneratorActor, weights: np.ndarray, n: int, seed0: int,
             seed: int) -> RequestPool:  # fmt: skip
    rm = RewardModel.load(run_args.reward_model)[0] if run_args.reward_model else None
    env = _env(run_args)
    behave = make_behaviour(run_args.behaviour, actor, seed, run_args.temperature)
    seeds = list(range(seed0, seed0 + 10_000))
    return collect_pool(actor, rm, weights, env, behave, n, seeds, run_args.pool_steps_per_seed,
                        fusion=run_args.fusion, progress=run_args.progress)  # fmt: skip


def pool_meta(args: AlignArgs, weights: np.ndarray) -> dict[str, Any]:
    """What a pool's contents depend on (checked when a run reuses a pool file)."""
    return {"generator": str(args.generator), "reward_model": str(args.reward_model),
            "weights": [float(x) for x in weights], "fusion": args.fusion, "preset": args.preset,
            "overrides": dict(args.overrides), "behaviour": args.behaviour,
            "pool_seed": args.pool_seed}  # fmt: skip


def _initial_pool(args: AlignArgs, actor: GeneratorActor, weights: np.ndarray) -> RequestPool:
    meta = pool_meta(args, weights)
    if not args.pool_file:
        pool = _collect(args, actor, weights, args.pool_requests, args.pool_seed, args.seed)
        pool.meta = meta
        return pool
    pool = RequestPool.load(args.pool_file)
    same = {k: v for k, v in meta.items() if k not in ("weights", "fusion", "reward_model")}
    theirs = {k: pool.meta.get(k) for k in same}
    if theirs != same:
        raise ValueError(f"pool_file {args.pool_file} was collected with {theirs}, not {same}")
    # the model's rewards depend on the weights through the fusion tower only
    model_ok = not pool.meta.get("fusion", True) or pool.meta.get("weights") == meta["weights"]
    if args.reward_source == "model" and not (
        model_ok and pool.meta["reward_model"] == meta["reward_model"]
    ):
        raise ValueError(
            f"pool_file {args.pool_file}: its reward-model feedback was computed for other "
            "weights or another reward model; use --reward-source env, a tower-only pool "
            "(--no-fusion) or collect a new pool"
        )
    if len(pool) != args.pool_requests:
        raise ValueError(f"pool_file {args.pool_file} holds {len(pool)} requests, "
                         f"pool_requests={args.pool_requests}")  # fmt: skip
    return pool


def make_optimizer(actor: GeneratorActor, args: AlignArgs) -> torch.optim.Adam:
    """Adam over the generator; the room prior at ``lr * prior_lr_scale``."""
    prior = actor.model.room_prior
    ids = {id(p) for p in prior.parameters()} if prior is not None else set()
    rest = [p for p in actor.model.parameters() if id(p) not in ids]
    groups = [{"params": rest, "lr": args.lr}]
    if prior is not None:
        groups.append({"params": list(prior.parameters()), "lr": args.lr * args.prior_lr_scale})
    return torch.optim.Adam(groups, lr=args.lr)


def setup(args: AlignArgs) -> Run:
    """A fresh run, or the run of ``OUT/ckpt.pt`` when resuming."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    actor = GeneratorActor.from_checkpoint(args.generator)
    ref = actor.frozen_copy()
    weights = parse_weights(args.weights)
    opt = make_optimizer(actor, args)
    gen, np_rng = torch.Generator().manual_seed(args.seed), np.random.default_rng(args.seed)
    ckpt = out / "ckpt.pt"
    if args.resume and ckpt.is_file():
        return _resume(args, ckpt, actor, ref, opt, weights, gen, np_rng)
    seed_globals(args.seed)
    pool = _initial_pool(args, actor, weights)
    pool.save(out / "pool-000000.npz")
    eval_rows = torch.arange(len(pool) - args.eval_requests, len(pool))
    return Run(args, actor, ref, opt, pool, "pool-000000.npz", torch.tensor(weights).float(),
               gen, np_rng, eval_rows)  # fmt: skip


def _resume(args: AlignArgs, path: Path, actor: GeneratorActor, ref: GeneratorActor,
            opt: torch.optim.Optimizer, weights: np.ndarray, gen: torch.Generator,
            np_rng: np.random.Generator) -> Run:  # fmt: skip
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} is not a readable alignment checkpoint: {e}") from e
    now = cliargs.to_dict(args)
    diff = sorted(k for k in now if k not in RESUMABLE and saved["args"].get(k) != now[k])
    if diff:
        shown = ", ".join(f"{k}: {saved['args'].get(k)!r} -> {now[k]!r}" for k in diff)
        raise ValueError(f"--resume with other arguments than the checkpoint ({shown})")
    actor.model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    actor.features.cache.load_state({k: v.numpy() for k, v in saved["feature_cache"].items()})
    rng_restore(saved["rng"], np_rng, gen)
    pool = RequestPool.load(Path(args.out) / saved["pool_file"])
    return Run(args, actor, ref, opt, pool, saved["pool_file"], torch.tensor(weights).float(),
               gen, np_rng, saved["eval_rows"], saved["iteration"], list(saved["rows"]))  # fmt: skip


def save_run(run: Run) -> Path:
    payload = {"args": cliargs.to_dict(run.args), "model": run.actor.model.state_dict(),
               "optimizer": run.opt.state_dict(), "rng": rng_snapshot(run.np_rng, run.gen),
               "feature_cache": {k: torch.from_numpy(v) for k, v in run.actor.features.cache.state().items()}, "pool_file": run.pool_file,
               "eval_rows": run.eval_rows, "iteration": run.iteration, "rows": run.rows}  # fmt: skip
    buf = io.BytesIO()
    torch.save(payload, buf)
    out = Path(run.args.out)
    path = atomic_write_bytes(out / "ckpt.pt", buf.getvalue())
    for old in out.glob("pool-*.npz"):  # pools no checkpoint names any more
        if old.name != run.pool_file:
            old.unlink(missing_ok=True)
    write_curves(run.rows, out / "curves.csv")
    return path


# ----- the loop -----------------------------------------------------------------------
@torch.no_grad()
def sample_groups(run: Run) -> Groups:
    a = run.args
    n_train = len(run.pool) - a.eval_requests
    rows = torch.randint(0, n_train, (a.requests_per_iter,), generator=run.gen)
    enc = run.pool.enc.index(rows)
    fb = run.pool.feedback(a.reward_source)[rows]  # (B, R, 6)
    logp = run.actor.slot_log_probs(enc)
    ref_logp = run.ref.slot_log_probs(enc)
    source = ref_logp if run.sample_from_ref else logp
    cand = sample_slots(source, a.group_size, run.gen, a.temperature, a.sample_replace)
    reward = torch.einsum("bgk,k->bg", fb.gather(1, cand[..., None].expand(-1, -1, fb.shape[-1])),
                          run.weights)  # fmt: skip
    adv, valid = group_advantages(reward, a.min_group_std, a.adv_clip)
    return Groups(enc, cand, reward, adv, valid, logp.gather(1, cand), ref_logp)


def update(run: Run, g: Groups, loss_fn: LossFn) -> dict[str, float]:
    """``update_epochs`` passes over the groups; returns the mean of each statistic."""
    a, seen = run.args, []
    for _ in range(a.update_epochs):
        perm = torch.randperm(len(g.cand), generator=run.gen)
        for idx in perm.chunk(a.minibatches):
            mb = g.rows(idx)
            logp = run.actor.slot_log_probs(mb.enc)
            loss, stats = loss_fn(a, logp, mb)
            run.opt.zero_grad(set_to_none=True)
            loss.backward()
            clip = a.max_grad_norm if a.max_grad_norm > 0 else float("inf")
            stats["grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(run.actor.model.parameters(), clip)
            )
            run.opt.step()
            seen.append(stats)
    return {k: float(np.mean([st[k] for st in seen])) for k in seen[0]}


@torch.no_grad()
def policy_metrics(run: Run) -> dict[str, float]:
    """Expected reward and per-objective rates of pi (and of its greedy choice) on
    the held-out pool requests, by the env's expected response and by the model."""
    enc = run.pool.enc.index(run.eval_rows)
    logp = run.actor.slot_log_probs(enc)
    p = torch.exp(logp)
    greedy = logp.argmax(-1)
    out = {"kl_ref": float(exact_kl(logp, run.ref.slot_log_probs(enc)).mean()),
           "entropy": float(-(p * logp.masked_fill(p == 0, 0.0)).sum(-1).mean())}  # fmt: skip
    for source in ("env", "model"):
        fb = run.pool.feedback(source)[run.eval_rows]  # (E, R, 6)
        rates = torch.einsum("er,erk->k", p, fb) / len(enc)
        g_rates = fb[torch.arange(len(enc)), greedy].mean(0)
        out[f"{source}_return"] = float(rates @ run.weights)
        out[f"{source}_greedy_return"] = float(g_rates @ run.weights)
        if source == "env":
            out.update({f"env_{k}": float(v) for k, v in zip(OBJECTIVES, rates, strict=True)})
            out.update(
                {f"env_greedy_{k}": float(v) for k, v in zip(OBJECTIVES, g_rates, strict=True)}
            )
    return out


def refresh_pool(run: Run) -> None:
    """Replace the oldest training requests by ones collected with the current policy."""
    a = run.args
    n = min(a.refresh_requests, len(run.pool) - a.eval_requests)
    k = run.iteration // a.refresh_every
    seed0 = a.pool_seed + 100_000 * k
    fresh = _collect(a, run.actor, run.weights.double().numpy(), n, seed0, a.seed + k)
    keep = torch.arange(n, len(run.pool) - a.eval_requests)
    train = RequestPool(run.pool.enc.index(keep), run.pool.model_feedback[keep],
                        run.pool.env_feedback[keep], run.pool.user_cohort[keep.numpy()],
                        dict(run.pool.meta))  # fmt: skip
    held = run.pool.tail(a.eval_requests)
    run.pool = RequestPool.cat([train, fresh, held])
    run.pool_file = f"pool-{run.iteration:06d}.npz"
    run.pool.save(Path(a.out) / run.pool_file)


def train(args: AlignArgs, loss_fn: LossFn = grpo_loss, name: str = "align",
          sample_from_ref: bool = False) -> Path:  # fmt: skip
    """Run (or resume) alignment; return the selected generator's path (``ckpt.pt``
    when stopped early by ``stop_at``). ``sample_from_ref``: groups come from the
    frozen reference instead of the current policy."""
    torch.set_num_threads(args.threads)
    run = setup(args)
    run.sample_from_ref = sample_from_ref
    out = Path(args.out)
    end = min(args.iterations, args.stop_at or args.iterations)
    if not run.rows:
        run.rows.append({"iteration": 0, "wall_s": 0.0, **policy_metrics(run)})
        keep_best(run)
    bar = tqdm(total=end, initial=run.iteration, desc=name, unit="it", mininterval=1.0,
               disable=None if args.progress else True)  # fmt: skip
    t0 = time.perf_counter() - float(run.rows[-1].get("wall_s", 0.0))
    acc: list[dict[str, float]] = []
    while run.iteration < end:
        if args.refresh_every and run.iteration and run.iteration % args.refresh_every == 0:
            refresh_pool(run)
        g = sample_groups(run)
        stats = update(run, g, loss_fn)
        run.iteration += 1
        acc.append({**stats, "reward": float(g.reward.mean()),
                    "skipped": float(1 - g.valid.float().mean())})  # fmt: skip
        bar.update(1)
        if run.iteration % args.log_every == 0 or run.iteration == end:
            means = {k: float(np.mean([s[k] for s in acc])) for k in acc[0]}
            run.rows.append({"iteration": run.iteration, "wall_s": time.perf_counter() - t0,
                             **means, **policy_metrics(run)})  # fmt: skip
            keep_best(run)
            acc = []
            row = run.rows[-1]
            bar.set_postfix(
                env=f"{row['env_return']:.3f}", kl=f"{row['kl_ref']:.3f}", refresh=False
            )
        if run.iteration % args.checkpoint_every == 0 or run.iteration == end:
            save_run(run)
    bar.close()
    if args.figures:
        plot_curves(run.rows, out / "curves.png", ["reward", "env_return", "model_return", "kl_ref",
                    "clip_frac", "entropy"], x="iteration")  # fmt: skip
    if run.iteration < args.iterations:
        return out / "ckpt.pt"
    return _finish(run)


def selection_metric(args: AlignArgs) -> str:
    """The held-out curve that picks the best model: the greedy choice's return under
    the run's own reward source (the env's expected response, or the reward model)."""
    return f"{args.reward_source}_greedy_return"


def keep_best(run: Run) -> None:
    """Save the generator as ``best.pt`` when the last curve row beats every earlier one
    (derived from the rows alone, so a resumed run makes the same choice)."""
    key = selection_metric(run.args)
    *earlier, last = run.rows
    if all(last[key] > r[key] for r in earlier):
        _save_generator(run, Path(run.args.out) / "best.pt", {"selected_by": key,
                                                               "selected_value": last[key]})  # fmt: skip


def _save_generator(run: Run, path: Path, more: dict[str, Any]) -> Path:
    _, extra, _ = load_checkpoint(run.args.generator)
    save_checkpoint(path, run.actor.model, None, {
        "tokenizer": extra.get("tokenizer", ""), "aligned_from": run.args.generator,
        "align_args": cliargs.to_dict(run.args), "iteration": run.iteration, **more})  # fmt: skip
    return path


def _finish(run: Run) -> Path:
    out, a = Path(run.args.out), run.args
    final = _save_generator(run, out / "model.pt", {})
    key = selection_metric(a)
    best = max(run.rows, key=lambda r: r[key])
    summary = {"iterations": run.iteration, "first": run.rows[0], "last": run.rows[-1],
               "best": best, "selected_by": key, "select": a.select,
               "weights": parse_weights(a.weights).tolist(), "model": str(final),
               "best_model": str(out / "best.pt")}  # fmt: skip
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return out / "best.pt" if a.select == "best" else final


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
