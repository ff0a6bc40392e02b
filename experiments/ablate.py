"""Generator ablations and offline comparisons on one logged world (cleanrl style).

    python -m experiments.ablate --log /work/data/fast_drift-2d-platform --out runs/ablate/fast_drift

Every variant is pretrained with the same budget (steps, batch, lr) and seeds by
:func:`agents.train.pretrain.pretrain`; only its switch differs:

* ``full``: gated attention, QK norm, sequential MTP, dynamic SIDs;
* ``no_gate`` / ``no_qk_norm``: without the attention output gate / the QK RMSNorm;
* ``static_sids``: a static tokenizer (one SID per streamer, ``sid_mode="static"``);
* ``ar``: full-depth autoregressive decoding instead of MTP;
* ``hybrid_sids``: static streamer prefix (2 tokens) + dynamic content token
  (:class:`policies.onelive.hybrid_sids.HybridTokenizer`), not run by default;
* ``negatives`` / ``static_negatives``: the full model / static SIDs trained with the
  unclicked impressions as negatives (``PretrainArgs.negatives``), not run by default.

Dynamic-SID variants of one seed share one tokenizer (fitted on the training part of
the log). Each model is then scored offline on the held-out requests of the log
(:mod:`agents.evaluate.holdout`: the clicked requests after the validation cut-off, with all
their live rooms): HR@K and MRR@K for the click and long-view targets, next to the
baselines (popular, random, and a trained cascade when ``--cascade`` names one).
Optionally (``--online-steps``) every model also plays the simulator through
:func:`agents.evaluate.online.evaluate` (oracle-normalised score).

Outputs in ``--out``: ``<variant>-s<seed>/`` (pretraining runs), ``holdout.npz``,
``offline.csv`` / ``offline.md`` (one row per model and seed, and the mean per
variant), ``online.csv`` / ``online.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from agents.evaluate.holdout import Holdout, capture_holdout, offline_rank_metrics
from agents.evaluate.tables import markdown_table
from agents.logs import log_config, read_log_arrays
from agents.run import cliargs
from agents.train.pretrain import PretrainArgs, pretrain
from agents.train.sequences import time_cutoff_ms
from liveenv.atomic import atomic_write_bytes
from policies.base import Policy
from policies.baselines import PopularPolicy
from policies.onelive.policy import GeneratorPolicy

__all__ = ["VARIANTS", "AblateArgs", "compare_offline", "main", "run_ablation"]

VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_gate": {"use_gate": False},
    "no_qk_norm": {"use_qk_norm": False},
    "static_sids": {"sid_mode": "static"},
    "ar": {"use_mtp": False},
    "hybrid_sids": {"sid_mode": "hybrid"},
    "negatives": {"negatives": True},
    "static_negatives": {"sid_mode": "static", "negatives": True},
    "room_prior": {"room_prior": True},
    "static_room_prior": {"sid_mode": "static", "room_prior": True},
    "room_affinity": {"room_prior": True, "room_affinity": True},
    "no_live_prior": {"live_prior_weight": 0.0},
    "static_no_live_prior": {"sid_mode": "static", "live_prior_weight": 0.0},
}
Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class AblateArgs:
    """Ablations of the generator on one log, scored offline (and online)."""

    log: str = field(default="", metadata={"help": "interaction log directory (required)"})
    out: str = field(default="runs/ablate", metadata={"help": "output folder"})
    variants: tuple[str, ...] = field(
        default=("full", "no_gate", "no_qk_norm", "static_sids", "ar"),
        metadata={"help": f"variants to run, of {list(VARIANTS)}"},
    )
    seeds: tuple[int, ...] = field(default=(0,), metadata={"help": "training seeds"})
    max_steps: int = field(default=1500, metadata={"help": "pretraining steps per model"})
    batch_size: int = field(default=256, metadata={"help": "examples per step"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate"})
    d_model: int = field(default=64, metadata={"help": "model width"})
    n_layer: int = field(default=3, metadata={"help": "main decoder layers"})
    codebook_sizes: tuple[int, ...] = field(
        default=(32, 32, 32), metadata={"help": "SID codebooks"}
    )
    valid_fraction: float = field(default=0.1, metadata={"help": "latest clicks held out"})
    holdout: str = field(
        default="", metadata={"help": "captured held-out file; empty: OUT/holdout.npz (replayed)"}
    )
    holdout_requests: int = field(default=3000, metadata={"help": "held-out requests at most"})
    log_seed: int = field(default=0, metadata={"help": "seed the log was generated with"})
    log_policy: str = field(
        default="platform", metadata={"help": "behaviour policy the log was generated with"}
    )
    cascade: str = field(default="", metadata={"help": "trained cascade policy (.npz) to compare"})
    popularity_weights: tuple[float, ...] = field(
        default=(0.0,),
        metadata={"help": "popularity priors w of the generator to score (0: pure generator)"},
    )
    online_steps: int = field(default=0, metadata={"help": "simulator steps per seed (0: skip)"})
    online_seeds: tuple[int, ...] = field(
        default=(100, 101, 102), metadata={"help": "simulator seeds (unseen days)"}
    )
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})

    def __post_init__(self) -> None:
        self.variants, self.seeds = tuple(self.variants), tuple(self.seeds)
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(f"AblateArgs.variants={self.variants!r}: allowed {list(VARIANTS)}")
        if not self.seeds:
            raise ValueError("AblateArgs.seeds is empty: give at least one seed")


# ----- pieces ----------------------------------------------------------------------
def pretrain_args(args: AblateArgs, variant: str, seed: int, tokenizer: str) -> PretrainArgs:
    base = PretrainArgs(
        log=args.log,
        out=str(Path(args.out) / f"{variant}-s{seed}"),
        tokenizer=tokenizer,
        codebook_sizes=args.codebook_sizes,
        d_model=args.d_model,
        n_layer=args.n_layer,
        batch_size=args.batch_size,
        lr=args.lr,
        max_steps=args.max_steps,
        seed=seed,
        valid_fraction=args.valid_fraction,
        threads=args.threads,
        progress=args.progress,
        eval_every=max(1, args.max_steps // 4),
        checkpoint_every=max(1, args.max_steps // 4),
    )
    return replace(base, **VARIANTS[variant])


def train_variants(args: AblateArgs) -> dict[tuple[str, int], Path]:
    """Pretrain every (variant, seed) once (a finished run is reused)."""
    done: dict[tuple[str, int], Path] = {}
    for seed in args.seeds:
        tokenizers: dict[str, str] = {}  # sid mode -> tokenizer of this seed
        order = sorted(args.variants, key=lambda v: v != "full")  # full first: fits the tokenizer
        for variant in order:
            mode = VARIANTS[variant].get("sid_mode", "dynamic")
            pa = pretrain_args(args, variant, seed, tokenizers.get(mode, ""))
            final = Path(pa.out) / "model.pt"
            if not final.is_file():
                final = pretrain(replace(pa, resume=True))
            tokenizers.setdefault(
                mode, str(Path(pa.out) / "tokenizer.pt") if not pa.tokenizer else pa.tokenizer
            )
            done[(variant, seed)] = final
    return done


def load_holdout(args: AblateArgs) -> Holdout:
    path = Path(args.holdout) if args.holdout else Path(args.out) / "holdout.npz"
    if path.is_file():
        return Holdout.load(path)
    cutoff = time_cutoff_ms(
        read_log_arrays(args.log, ["timestamp_ms", "is_click"]), args.valid_fraction
    )
    holdout = capture_holdout(
        args.log,
        cutoff,
        seed=args.log_seed,
        policy=args.log_policy,
        max_requests=args.holdout_requests,
        progress=args.progress,
    )
    holdout.save(path)
    return holdout


def generator_scorer(
    model: Path, holdout: Holdout, name: str = "onelive", popularity_weight: float = 0.0
) -> GeneratorPolicy:
    """The generator of ``model`` with the held-out run's streamers in its cache."""
    policy = GeneratorPolicy.from_files(model, name=name, popularity_weight=popularity_weight)
    policy.features.cache.update(holdout.streamer_ids, holdout.pooled)  # type: ignore[union-attr]
    return policy


def random_scorer(seed: int = 0) -> Scorer:
    rng = np.random.default_rng(seed)
    return lambda obs: rng.random(np.asarray(obs["room_mask"]).shape)


def baseline_scorers(args: AblateArgs) -> dict[str, Scorer]:
    out: dict[str, Scorer] = {"popular": PopularPolicy().scores, "random": random_scorer()}
    if args.cascade:
        cascade = Policy.load(args.cascade)
        out[cascade.name] = cascade.scores  # type: ignore[attr-defined]
    return out


def _wide(metrics: pd.DataFrame) -> dict[str, float]:
    row: dict[str, float] = {}
    for r in metrics.itertuples():
        row[f"{r.target}_hr@{r.k}"] = float(r.hr)
        row[f"{r.target}_mrr@{r.k}"] = float(r.mrr)
        row[f"n_{r.target}"] = int(r.n_targets)
    return row


def compare_offline(
    scorers: dict[str, Scorer], holdout: Holdout, k: Sequence[int] = (1, 10, 50)
) -> pd.DataFrame:
    """One row per scorer: HR@K / MRR@K of the click and long-view targets."""
    rows = []
    for name, score in scorers.items():
        with torch.no_grad():
            rows.append({"model": name, **_wide(offline_rank_metrics(score, holdout, tuple(k)))})
    return pd.DataFrame(rows)


def _run_facts(model: Path) -> dict[str, Any]:
    folder = model.parent
    facts: dict[str, Any] = {}
    summary = folder / "summary.json"
    if summary.is_file():
        s = pd.read_json(summary, typ="series")
        facts = {
            "valid_loss": s.get("final_valid_loss"),
            "train_s": s.get("train_s"),
            "tokens_per_s": s.get("tokens_per_s"),
        }
    metrics = folder / "metrics.csv"
    if metrics.is_file():
        m = pd.read_csv(metrics)
        facts["max_attn_logit"] = float(m["max_attn_logit"].iloc[-1])
    return facts


def to_markdown(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    return markdown_table(
        [str(c) for c in df.columns], [[cell(v) for v in row] for row in df.itertuples(index=False)]
    )


def write_table(df: pd.DataFrame, folder: Path, stem: str, title: str) -> None:
    atomic_write_bytes(folder / f"{stem}.csv", df.to_csv(index=False).encode())
    atomic_write_bytes(folder / f"{stem}.md", f"# {title}\n\n{to_markdown(df)}\n".encode())


# ----- the run ---------------------------------------------------------------------
def run_ablation(args: AblateArgs) -> pd.DataFrame:
    """Pretrain the variants, score them and the baselines offline; write the tables."""
    if not args.log:
        raise ValueError("AblateArgs.log is empty: give an interaction log directory")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    models = train_variants(args)
    holdout = load_holdout(args)
    scorers: dict[str, Scorer] = {}
    for (variant, seed), path in models.items():
        for w in args.popularity_weights:
            scorers[_name(variant, seed, w)] = generator_scorer(
                path, holdout, popularity_weight=w
            ).scores
    scorers.update(baseline_scorers(args))
    table = compare_offline(scorers, holdout)
    facts = [
        _run_facts(models[(v, s)]) if (v, s) in models else {}
        for v, s in (_split(name)[:2] for name in table["model"])
    ]
    table = pd.concat([table, pd.DataFrame(facts)], axis=1)
    table.insert(1, "variant", [_split(m)[0] + _split(m)[2] for m in table["model"]])
    mean = table.groupby("variant", sort=False).mean(numeric_only=True).reset_index()
    preset = log_config(args.log).preset
    write_table(table, out, "offline", f"Offline HR/MRR on held-out {preset} requests")
    write_table(mean, out, "offline_mean", f"Mean over seeds, held-out {preset} requests")
    if args.online_steps > 0:
        run_online(args, models, preset)
    return table


def _name(variant: str, seed: int, w: float) -> str:
    return f"{variant}-s{seed}" + (f"+pop{w:g}" if w else "")


def _split(name: str) -> tuple[str, int, str]:
    """model name -> (variant, seed, popularity suffix); seed -1 for baselines."""
    name, plus, pop = name.partition("+")
    variant, _, seed = name.rpartition("-s")
    if not (variant and seed.isdigit()):
        return name, -1, plus + pop
    return variant, int(seed), plus + pop


def run_online(args: AblateArgs, models: dict[tuple[str, int], Path], preset: str) -> pd.DataFrame:
    """Oracle-normalised scores in the simulator (the random and oracle references are
    added by the harness)."""
    from agents.evaluate.online import evaluate
    from policies.baselines import EngagingPolicy

    policies: dict[str, Policy] = {
        f"{v}-s{s}": GeneratorPolicy.from_files(p, name=f"{v}-s{s}") for (v, s), p in models.items()
    }
    policies.update(popular=PopularPolicy(), engaging=EngagingPolicy())
    if args.cascade:
        cascade = Policy.load(args.cascade)
        policies[cascade.name] = cascade
    result = evaluate(
        policies,
        preset,
        seeds=args.online_seeds,
        steps_per_seed=args.online_steps,
        progress=args.progress,
        expected=True,
    )
    cols = [
        "policy",
        "n_impressions",
        "weighted_return_mean",
        "oracle_normalised_mean",
        "oracle_normalised_lo",
        "oracle_normalised_hi",
        "expected_normalised_mean",
        "expected_normalised_lo",
        "expected_normalised_hi",
        "click_mean",
    ]
    table = result.overall()[[c for c in cols if c in result.overall()]]
    write_table(
        table,
        Path(args.out),
        "online",
        f"Online scores on {preset} "
        f"(seeds {list(args.online_seeds)}, {args.online_steps} steps each)",
    )
    return table


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = cliargs.parse(AblateArgs, argv, prog="python -m experiments.ablate")
    table = run_ablation(args)
    print(to_markdown(table))
    return table


if __name__ == "__main__":
    main()
