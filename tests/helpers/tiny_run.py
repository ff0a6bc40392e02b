"""A tiny world and tiny artefacts (log, tokenizer, generator, reward model) to
exercise alignment in seconds: the tests and quick demos use them.

Everything is seeded; the generator is freshly initialised (optionally
pretrained for a few steps), which is a valid, if weak, policy to align.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

#: A small default world: a few thousand users, a few hundred streamers, starting
#: at 18:00 so that the first simulated hours are busy.
TINY_WORLD: dict[str, Any] = {
    "users.n_users": 3000,
    "streamers.n_streamers": 300,
    "start_hour": 18.0,
}


@dataclass(frozen=True)
class TinyArtefacts:
    log: Path
    tokenizer: Path
    generator: Path
    reward_model: Path


def build_tiny(
    root: str | Path, seed: int = 0, hours: float = 3.0, pretrain_steps: int = 0
) -> TinyArtefacts:
    """Log ``hours`` of the tiny world under the platform policy, fit a small SID
    tokenizer, write a small generator (random init, or ``pretrain_steps`` of
    pretraining) and a small reward model under ``root``."""
    from agents.logs import generate_log, read_log_arrays
    from agents.train.reward import RewardArgs, train_reward_model
    from policies.onelive.checkpoint import save_checkpoint
    from policies.onelive.config import OneLiveConfig
    from policies.onelive.features import N_FEEDBACK_TYPES, TIME_DIM
    from policies.onelive.model import OneLiveGenerator
    from policies.tokenizer import SIDTokenizer, SIDTokenizerConfig

    root = Path(root)
    log = root / "log"
    if not log.is_dir():
        generate_log(
            log,
            "default",
            days=hours / 24.0,
            policy="platform",
            seed=seed,
            overrides=TINY_WORLD,
            progress=False,
            # one request at a time: the figures the tests below expect (e.g. how much
            # the reward model learns from 7k rows) were measured on this path; the
            # batched path's logs are compared with it in tests/agents/logs
            batch_size=1,
        )
    tok_path = root / "tokenizer.pt"
    if not tok_path.is_file():
        cfg = SIDTokenizerConfig(
            codebook_sizes=(8, 8, 4),
            embed_dim=16,
            hidden_dim=32,
            epochs=1,
            kmeans_max_iter=20,
            seed=seed,
        )
        SIDTokenizer.fit(read_log_arrays(log), cfg).save(tok_path)
    gen_path = root / "generator.pt"
    if not gen_path.is_file():
        tok = SIDTokenizer.load(tok_path)
        torch.manual_seed(seed)
        model = OneLiveGenerator(
            OneLiveConfig(
                vocab_sizes=tuple(tok.vocab_sizes),
                user_dim=tok.user_dim,
                time_dim=TIME_DIM,
                n_feedback_types=N_FEEDBACK_TYPES,
                max_history=20,
                d_model=32,
                n_head=2,
                n_layer=2,
            )
        )
        if pretrain_steps:
            model = _pretrain(root, log, tok_path, seed, pretrain_steps)
        save_checkpoint(gen_path, model, None, {"tokenizer": str(tok_path)})
    rm_dir = root / "reward"
    if not (rm_dir / "reward_model.pt").is_file():
        train_reward_model(
            RewardArgs(
                log=str(log),
                out=str(rm_dir),
                epochs=4,
                hidden=32,
                fusion_hidden=32,
                batch_size=256,
                progress=False,
                figure=False,
                seed=seed,
            )
        )
    return TinyArtefacts(log, tok_path, gen_path, rm_dir / "reward_model.pt")


def _pretrain(root: Path, log: Path, tok_path: Path, seed: int, steps: int) -> Any:
    from agents.train.pretrain import PretrainArgs, pretrain
    from policies.onelive.checkpoint import load_checkpoint

    path = pretrain(
        PretrainArgs(
            log=str(log),
            out=str(root / "pretrain"),
            tokenizer=str(tok_path),
            d_model=32,
            n_head=2,
            n_layer=2,
            max_steps=steps,
            batch_size=64,
            warmup_steps=min(10, steps),
            eval_every=steps,
            checkpoint_every=steps,
            seed=seed,
            progress=False,
        )
    )
    return load_checkpoint(path)[0]


def tiny_align_args(art: TinyArtefacts, out: str | Path, **changes: Any) -> Any:
    """Small :class:`agents.align.grpo.AlignArgs` on the tiny world."""
    from agents.align.args import AlignArgs

    base: dict[str, Any] = dict(
        generator=str(art.generator),
        reward_model=str(art.reward_model),
        out=str(out),
        overrides=dict(TINY_WORLD),
        pool_requests=128,
        pool_steps_per_seed=128,
        eval_requests=32,
        behaviour="random",
        iterations=8,
        requests_per_iter=16,
        group_size=4,
        log_every=2,
        checkpoint_every=4,
        progress=False,
        figures=False,
    )
    base.update(changes)
    cls = changes.pop("args_class", None) or AlignArgs
    base.pop("args_class", None)
    return cls(**base)


#: ``liveenv`` commands (after ``--run-dir``) that make a tiny run directory in seconds:
#: a small log, tokenizer, generator, reward model, aligned model and evaluation
TINY_RUN_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("log", "--n-users", "600", "--n-streamers", "60", "--days", "0.04", "--start-hour", "20"),
    ("tokenize", "--epochs", "1", "--codebook-sizes", "4", "4"),
    ("pretrain", "--max-steps", "4", "--batch-size", "16", "--d-model", "16", "--n-head", "2",
     "--n-layer", "1", "--warmup-steps", "1", "--eval-every", "2"),
    ("reward", "--epochs", "1", "--hidden", "8", "--fusion-hidden", "8", "--no-figure"),
    ("align", "--iterations", "2", "--requests-per-iter", "4", "--group-size", "4",
     "--pool-requests", "32", "--pool-steps-per-seed", "32", "--eval-requests", "8",
     "--no-figures"),
    ("evaluate", "--seeds", "0", "--steps", "10", "--no-expected"),
)  # fmt: skip


def build_tiny_run(root: str | Path, upto: str = "evaluate") -> Path:
    """Run :data:`TINY_RUN_COMMANDS` (up to and including ``upto``) in the run
    directory ``root`` through the ``liveenv`` command line; return ``root``."""
    from agents.run.cli import main

    for command in TINY_RUN_COMMANDS:
        argv = [command[0], "--run-dir", str(root), "--no-progress", *command[1:]]
        if main(argv) != 0:
            raise RuntimeError(f"liveenv {' '.join(argv)} failed")
        if command[0] == upto:
            break
    return Path(root)


__all__ = [
    "TINY_RUN_COMMANDS",
    "TINY_WORLD",
    "TinyArtefacts",
    "build_tiny",
    "build_tiny_run",
    "tiny_align_args",
]
