"""The alignment loop every aligner shares: sample groups from the policy, score
them, update with the aligner's loss, evaluate on held-out pool requests, keep
the best, checkpoint and resume (see :mod:`agents.align.grpo` for one iteration
step by step). An aligner is a loss function ``loss(args, logp, groups)``
passed to :func:`train`."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.align.actor import GeneratorActor
from agents.align.args import RESUMABLE, AlignArgs
from agents.align.objective import Groups, exact_kl, group_advantages
from agents.align.pool import RequestPool, collect_pool, make_behaviour, sample_slots
from agents.align.weights import parse_weights
from agents.progress import progress_bar
from agents.run import cliargs
from agents.train.curves import plot_curves, write_curves
from agents.train.seeding import rng_restore, rng_snapshot, seed_globals
from agents.train.tracking import Tracker
from liveenv.atomic import atomic_write_bytes
from liveenv.env import LiveStreamEnv
from liveenv.objectives import OBJECTIVES
from liveenv.presets import make_config
from policies.onelive.checkpoint import load_checkpoint, save_checkpoint, tokenizer_of
from policies.reward_model import RewardModel

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


def _collect(
    run_args: AlignArgs, actor: GeneratorActor, weights: np.ndarray, n: int, seed0: int, seed: int
) -> RequestPool:
    rm = RewardModel.load(run_args.reward_model)[0] if run_args.reward_model else None
    env = _env(run_args)
    behave = make_behaviour(run_args.behaviour, actor, seed, run_args.temperature)
    seeds = list(range(seed0, seed0 + 10_000))
    return collect_pool(
        actor,
        rm,
        weights,
        env,
        behave,
        n,
        seeds,
        run_args.pool_steps_per_seed,
        fusion=run_args.fusion,
        progress=run_args.progress,
    )


def pool_meta(args: AlignArgs, weights: np.ndarray) -> dict[str, Any]:
    """What a pool's contents depend on (checked when a run reuses a pool file)."""
    return {
        "generator": str(args.generator),
        "reward_model": str(args.reward_model),
        "weights": [float(x) for x in weights],
        "fusion": args.fusion,
        "preset": args.preset,
        "overrides": dict(args.overrides),
        "behaviour": args.behaviour,
        "pool_seed": args.pool_seed,
    }


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
        raise ValueError(
            f"pool_file {args.pool_file} holds {len(pool)} requests, "
            f"pool_requests={args.pool_requests}"
        )
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
    return Run(
        args,
        actor,
        ref,
        opt,
        pool,
        "pool-000000.npz",
        torch.tensor(weights).float(),
        gen,
        np_rng,
        eval_rows,
    )


def _resume(
    args: AlignArgs,
    path: Path,
    actor: GeneratorActor,
    ref: GeneratorActor,
    opt: torch.optim.Optimizer,
    weights: np.ndarray,
    gen: torch.Generator,
    np_rng: np.random.Generator,
) -> Run:
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
    return Run(
        args,
        actor,
        ref,
        opt,
        pool,
        saved["pool_file"],
        torch.tensor(weights).float(),
        gen,
        np_rng,
        saved["eval_rows"],
        saved["iteration"],
        list(saved["rows"]),
    )


def save_run(run: Run) -> Path:
    payload = {
        "args": cliargs.to_dict(run.args),
        "model": run.actor.model.state_dict(),
        "optimizer": run.opt.state_dict(),
        "rng": rng_snapshot(run.np_rng, run.gen),
        "feature_cache": {
            k: torch.from_numpy(v) for k, v in run.actor.features.cache.state().items()
        },
        "pool_file": run.pool_file,
        "eval_rows": run.eval_rows,
        "iteration": run.iteration,
        "rows": run.rows,
    }
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
    reward = torch.einsum(
        "bgk,k->bg", fb.gather(1, cand[..., None].expand(-1, -1, fb.shape[-1])), run.weights
    )
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
    out = {
        "kl_ref": float(exact_kl(logp, run.ref.slot_log_probs(enc)).mean()),
        "entropy": float(-(p * logp.masked_fill(p == 0, 0.0)).sum(-1).mean()),
    }
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
    train = RequestPool(
        run.pool.enc.index(keep),
        run.pool.model_feedback[keep],
        run.pool.env_feedback[keep],
        run.pool.user_cohort[keep.numpy()],
        dict(run.pool.meta),
    )
    held = run.pool.tail(a.eval_requests)
    run.pool = RequestPool.cat([train, fresh, held])
    run.pool_file = f"pool-{run.iteration:06d}.npz"
    run.pool.save(Path(a.out) / run.pool_file)


def train(
    args: AlignArgs, loss_fn: LossFn, name: str = "align", sample_from_ref: bool = False
) -> Path:
    """Run (or resume) alignment; return the selected generator's path (``ckpt.pt``
    when stopped early by ``stop_at``). ``sample_from_ref``: groups come from the
    frozen reference instead of the current policy."""
    torch.set_num_threads(args.threads)
    run = setup(args)
    run.sample_from_ref = sample_from_ref
    out = Path(args.out)
    end = min(args.iterations, args.stop_at or args.iterations)
    tracker = Tracker(out, args.tensorboard, purge_step=run.iteration + 1 if run.rows else None)
    if not run.rows:
        run.rows.append({"iteration": 0, "wall_s": 0.0, **policy_metrics(run)})
        keep_best(run)
        tracker.log(run.rows[-1], 0, f"{name}/", exclude=("iteration",))
    bar = progress_bar(
        total=end,
        initial=run.iteration,
        desc=name,
        unit="it",
        mininterval=1.0,
        enabled=args.progress,
    )
    t0 = time.perf_counter() - float(run.rows[-1].get("wall_s", 0.0))
    acc: list[dict[str, float]] = []
    while run.iteration < end:
        if args.refresh_every and run.iteration and run.iteration % args.refresh_every == 0:
            refresh_pool(run)
        g = sample_groups(run)
        stats = update(run, g, loss_fn)
        run.iteration += 1
        acc.append(
            {
                **stats,
                "reward": float(g.reward.mean()),
                "skipped": float(1 - g.valid.float().mean()),
            }
        )
        bar.update(1)
        if run.iteration % args.log_every == 0 or run.iteration == end:
            means = {k: float(np.mean([s[k] for s in acc])) for k in acc[0]}
            run.rows.append(
                {
                    "iteration": run.iteration,
                    "wall_s": time.perf_counter() - t0,
                    **means,
                    **policy_metrics(run),
                }
            )
            keep_best(run)
            acc = []
            row = run.rows[-1]
            tracker.log(row, run.iteration, f"{name}/", exclude=("iteration",))
            bar.set_postfix(
                env=f"{row['env_return']:.3f}", kl=f"{row['kl_ref']:.3f}", refresh=False
            )
        if run.iteration % args.checkpoint_every == 0 or run.iteration == end:
            save_run(run)
    bar.close()
    tracker.close()
    if args.figures:
        plot_curves(
            run.rows,
            out / "curves.png",
            ["reward", "env_return", "model_return", "kl_ref", "clip_frac", "entropy"],
            x="iteration",
        )
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
        _save_generator(
            run, Path(run.args.out) / "best.pt", {"selected_by": key, "selected_value": last[key]}
        )


def _save_generator(run: Run, path: Path, more: dict[str, Any]) -> Path:
    _, extra, _ = load_checkpoint(run.args.generator)
    save_checkpoint(
        path,
        run.actor.model,
        None,
        {
            "tokenizer": tokenizer_of(run.args.generator, extra),
            "aligned_from": run.args.generator,
            "align_args": cliargs.to_dict(run.args),
            "iteration": run.iteration,
            **more,
        },
    )
    return path


def _finish(run: Run) -> Path:
    out, a = Path(run.args.out), run.args
    final = _save_generator(run, out / "model.pt", {})
    key = selection_metric(a)
    best = max(run.rows, key=lambda r: r[key])
    summary = {
        "iterations": run.iteration,
        "first": run.rows[0],
        "last": run.rows[-1],
        "best": best,
        "selected_by": key,
        "select": a.select,
        "weights": parse_weights(a.weights).tolist(),
        "model": str(final),
        "best_model": str(out / "best.pt"),
    }
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return out / "best.pt" if a.select == "best" else final
