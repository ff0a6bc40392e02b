"""The baseline results table: every baseline on the default and cold-start presets.

    python -m experiments.baseline_results --out runs/baselines

One command: it trains whatever model is missing under ``models`` (the
cascade with and without the cold-start module on each preset's logs, PPO and
MaskablePPO in each preset's env), evaluates random, popular, engaging,
cascade, cascade + cold start, MaskablePPO, PPO and the oracle on every seed
with :func:`agents.evaluate.online.evaluate`, and writes per preset the tidy table
(CSV, Parquet), ``summary.md`` and the figures of :mod:`agents.evaluate.tables`, plus
``results.md`` / ``results.csv`` over both presets with the acceptance checks
and the wall times.

Seeds are evaluated ``chunk`` at a time and every chunk's table is kept under
``<out>/<preset>/chunks``: a run that stops (or ``--max-chunks``) resumes
where it left off, and the final tables merge the chunks (confidence
intervals over all seeds). Evaluation seeds are disjoint from the seeds of the
training logs (0) and of the SB3 training days, so every policy meets held-out
days of the platform it was trained on (the platform is fixed by
``EnvConfig.world_seed``; ``reset(seed)`` draws the dynamics).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agents.evaluate.metrics import mean_ci
from agents.evaluate.online import EvalResult, evaluate, summarise
from agents.evaluate.tables import markdown_table, save_report, write_table
from agents.run.cliargs import parse
from liveenv.atomic import atomic_write_bytes
from liveenv.presets import make_config
from policies.base import Policy
from policies.registry import make_baseline

POLICIES = (
    "random",
    "popular",
    "engaging",
    "cascade",
    "cascade_coldstart",
    "maskable_ppo",
    "ppo",
    "oracle",
)
LEARNED = {
    "cascade": "cascade.npz",
    "cascade_coldstart": "cascade_coldstart.npz",
    "maskable_ppo": "maskable_ppo/policy.npz",
    "ppo": "ppo/policy.npz",
}
#: Neighbours that the acceptance check orders on the default preset.
ACCEPTANCE_ORDER = ("oracle", "cascade", "popular", "random")


@dataclass
class BaselineResultsArgs:
    """Train (if missing) and evaluate every baseline on the default and cold-start presets."""

    presets: tuple[str, ...] = field(
        default=("default", "cold_start"), metadata={"help": "presets"}
    )
    seeds: tuple[int, ...] = field(
        default=tuple(range(100, 124)), metadata={"help": "evaluation seeds (worlds)"}
    )
    steps: int = field(default=1000, metadata={"help": "requests per seed"})
    chunk: int = field(default=3, metadata={"help": "seeds per resumable evaluation chunk"})
    max_chunks: int = field(
        default=0, metadata={"help": "stop after this many new chunks (0: all)"}
    )
    expected: bool = field(
        default=False,
        metadata={"help": "also the expected return (one oracle call per step: ~5x slower)"},
    )
    policies: tuple[str, ...] = field(default=POLICIES, metadata={"help": "policies to evaluate"})
    out: str = field(default="runs/baselines", metadata={"help": "output folder"})
    models: str = field(
        default="runs/baselines/models", metadata={"help": "trained models, <models>/<preset>/..."}
    )
    default_logs: tuple[str, ...] = field(
        default=("/work/data/default-2d-platform",),
        metadata={"help": "cascade training logs, default preset"},
    )
    cold_start_logs: tuple[str, ...] = field(
        default=("/work/data/cold_start-1d-platform",),
        metadata={"help": "cascade training logs, cold_start preset"},
    )
    sb3_timesteps: int = field(
        default=30_000, metadata={"help": "training steps of PPO and MaskablePPO"}
    )
    cascade_raw_embeddings: bool = field(
        default=True,
        metadata={
            "help": "the cascade's ranker reads the raw embeddings (logs and evaluation "
            "share the platform of world_seed)"
        },
    )
    train: bool = field(default=True, metadata={"help": "train missing models (else fail)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        unknown = sorted(set(self.policies) - set(POLICIES))
        if unknown:
            raise ValueError(f"policies {unknown} are unknown; allowed: {list(POLICIES)}")
        for name in ("steps", "chunk", "sb3_timesteps", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: must be >= 1")
        if len(self.seeds) < 2:
            raise ValueError(f"seeds={self.seeds}: need at least 2 seeds for confidence intervals")
        for preset in self.presets:
            make_config(preset)  # refuses an unknown preset by name

    def logs_for(self, preset: str) -> tuple[str, ...]:
        logs = {"default": self.default_logs, "cold_start": self.cold_start_logs}
        if preset not in logs:
            raise ValueError(f"no cascade training logs configured for preset {preset!r}")
        return logs[preset]


# ----- models ----------------------------------------------------------------------------
def train_model(kind: str, preset: str, path: Path, args: BaselineResultsArgs) -> float:
    """Train one learned baseline into ``path``; return the wall time."""
    t0 = time.perf_counter()
    if kind.startswith("cascade"):
        from agents.train.cascade import TrainCascadeArgs, save_result, train_cascade

        targs = TrainCascadeArgs(
            logs=args.logs_for(preset),
            coldstart=kind == "cascade_coldstart",
            raw_embeddings=args.cascade_raw_embeddings,
            out=str(path),
            threads=args.threads,
            name=kind,
        )
        save_result(train_cascade(targs), targs)
    else:
        from agents.train.sb3 import TrainSB3Args, save_result, train_sb3

        algo = "MaskablePPO" if kind == "maskable_ppo" else "PPO"
        sargs = TrainSB3Args(
            algo=algo,
            preset=preset,
            timesteps=args.sb3_timesteps,
            out=str(path.parent),
            threads=args.threads,
        )
        save_result(train_sb3(sargs), sargs)
    return time.perf_counter() - t0


def load_policies(
    preset: str, args: BaselineResultsArgs, manifest: dict[str, Any]
) -> dict[str, Policy]:
    slate = make_config(preset).slate_size
    policies: dict[str, Policy] = {}
    for kind in args.policies:
        if kind not in LEARNED:
            policies[kind] = make_baseline(kind, slate_size=slate)
            continue
        path = Path(args.models) / preset / LEARNED[kind]
        if not path.exists():
            if not args.train:
                raise FileNotFoundError(f"{path}: no trained {kind} (run with --train)")
            manifest.setdefault("training_s", {})[f"{preset}/{kind}"] = train_model(
                kind, preset, path, args
            )
        policy = Policy.load(path)
        policy.name = kind
        policies[kind] = policy
    return policies


# ----- evaluation in chunks -----------------------------------------------------------------
def world_code_digest() -> str:
    """A short digest of the world's source (``liveenv/*.py``): chunks evaluated
    under different world code must not be merged silently."""
    import hashlib

    import liveenv

    h = hashlib.sha256()
    for path in sorted(Path(liveenv.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


def _chunk_path(preset_dir: Path, seeds: tuple[int, ...]) -> Path:
    return preset_dir / "chunks" / f"seeds-{seeds[0]}-{seeds[-1]}-n{len(seeds)}.parquet"


def evaluate_chunks(
    preset: str, policies: dict[str, Policy], args: BaselineResultsArgs, manifest: dict[str, Any]
) -> bool:
    """Evaluate the seed chunks not yet on disk; True when every chunk is done."""
    preset_dir = Path(args.out) / preset
    walls = manifest.setdefault("eval_s", {}).setdefault(preset, {})
    new = 0
    for lo in range(0, len(args.seeds), args.chunk):
        seeds = args.seeds[lo : lo + args.chunk]
        path = _chunk_path(preset_dir, seeds)
        if path.exists():
            continue
        if args.max_chunks and new >= args.max_chunks:
            return False
        res = evaluate(policies, preset, seeds, args.steps, progress=False, expected=args.expected)
        table = res.table.assign(
            chunk=path.name, chunk_wall_s=res.wall_s, world_code=world_code_digest()
        )
        write_table(table, path)
        walls[path.name] = res.wall_s
        new += 1
        print(f"{preset}: seeds {list(seeds)} in {res.wall_s:.0f} s", flush=True)
    return True


def merged_result(preset: str, args: BaselineResultsArgs) -> EvalResult:
    """One :class:`EvalResult` over every chunk of ``preset`` (CIs over all seeds)."""
    paths = [
        _chunk_path(Path(args.out) / preset, args.seeds[lo : lo + args.chunk])
        for lo in range(0, len(args.seeds), args.chunk)
    ]
    table = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    wall = float(table.groupby("chunk")["chunk_wall_s"].first().sum())
    versions = sorted(table["world_code"].unique())
    if len(versions) > 1:
        print(
            f"warning: {preset} chunks were evaluated with {len(versions)} versions of "
            f"liveenv/ ({versions}); rerun the stale chunks for one consistent table"
        )
    table = table.drop(columns=["chunk", "chunk_wall_s", "world_code"])
    return EvalResult(
        table=table,
        summary=summarise(table),
        impressions=pd.DataFrame(
            index=range(int(table.loc[table["breakdown"] == "all", "n_impressions"].sum()))
        ),
        config=make_config(preset),
        seeds=args.seeds,
        steps_per_seed=args.steps,
        wall_s=wall,
        references={"random": "random", "oracle": "oracle"},
    )


# ----- checks and the combined report -----------------------------------------------------
def ordering_check(
    result: EvalResult, order: tuple[str, ...] = ACCEPTANCE_ORDER, metric: str = "weighted_return"
) -> list[dict[str, Any]]:
    """For each neighbour pair of ``order``: is the first above the second with
    non-overlapping 95 % CIs?"""
    o = result.overall().set_index("policy")
    rows = []
    for hi, lo in itertools.pairwise(order):
        if hi not in o.index or lo not in o.index:
            continue
        ok = o.loc[hi, f"{metric}_lo"] > o.loc[lo, f"{metric}_hi"]
        rows.append(
            {
                "pair": f"{hi} > {lo}",
                "upper_ci_low": o.loc[hi, f"{metric}_lo"],
                "lower_ci_high": o.loc[lo, f"{metric}_hi"],
                "non_overlapping": bool(ok),
            }
        )
    return rows


def paired_gap(
    result: EvalResult,
    a: str,
    b: str,
    breakdown: str = "user_cohort",
    group: str = "new",
    metric: str = "weighted_return",
) -> dict[str, float]:
    """Mean and 95 % CI over seeds of ``a - b`` on one group (paired: same worlds)."""
    t = result.table
    t = t[(t["breakdown"] == breakdown) & (t["group"] == group)].set_index(["policy", "seed"])
    if a not in t.index.get_level_values(0) or b not in t.index.get_level_values(0):
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n_seeds": 0}
    diff = (t.loc[a, metric] - t.loc[b, metric]).dropna()
    mean, lo, hi = mean_ci(diff)
    return {
        "mean": mean,
        "lo": lo,
        "hi": hi,
        "n_seeds": int(len(diff)),
        "a": float(t.loc[a, metric].mean()),
        "b": float(t.loc[b, metric].mean()),
    }


def overall_rows(preset: str, result: EvalResult) -> pd.DataFrame:
    o = result.overall()
    keep = [
        c
        for c in o.columns
        if c.split("_")[-1] in ("mean", "lo", "hi") or c in ("policy", "n_seeds")
    ]
    return o[keep].assign(preset=preset)


def results_markdown(
    results: dict[str, EvalResult],
    manifest: dict[str, Any],
    args: BaselineResultsArgs,
    command: str,
) -> str:
    from agents.evaluate.tables import markdown_summary

    parts = [
        f"# Baseline results\n\nCommand: `{command}`\n",
        f"Seeds {list(args.seeds)}, {args.steps} requests per seed.\n",
    ]
    for preset, res in results.items():
        parts.append(f"## {preset}\n\n{markdown_summary(res)}")
        checks = ordering_check(res)
        if checks:
            rows = [
                [
                    c["pair"],
                    f"{c['upper_ci_low']:.3f}",
                    f"{c['lower_ci_high']:.3f}",
                    "yes" if c["non_overlapping"] else "NO",
                ]
                for c in checks
            ]
            parts.append(
                "Ordering on weighted return (95 % CIs):\n\n"
                + markdown_table(
                    ["pair", "CI low of the first", "CI high of the second", "non-overlapping"],
                    rows,
                )
            )
        gap = paired_gap(res, "cascade_coldstart", "cascade")
        if gap["n_seeds"]:
            parts.append(
                f"Cold-start module on new users (paired over {gap['n_seeds']} seeds): "
                f"cascade_coldstart {gap['a']:.3f} vs cascade {gap['b']:.3f}, gap "
                f"{gap['mean']:+.3f} [{gap['lo']:+.3f}, {gap['hi']:+.3f}] weighted return per impression."
            )
    walls = {
        **{f"train {k}": v for k, v in manifest.get("training_s", {}).items()},
        **{f"evaluate {p}": sum(v.values()) for p, v in manifest.get("eval_s", {}).items()},
    }
    rows = [[k, f"{v:.0f}"] for k, v in walls.items()]
    rows.append(["total", f"{sum(walls.values()):.0f}"])
    parts.append(
        "Wall time (seconds, summed over resumed runs):\n\n" + markdown_table(["step", "s"], rows)
    )
    return "\n\n".join(parts) + "\n"


def run(
    args: BaselineResultsArgs, command: str = "python -m experiments.baseline_results"
) -> dict[str, EvalResult] | None:
    """Train, evaluate (resumably) and report; None while chunks remain."""
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    manifest_path = out / "manifest.json"
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    )
    done = True
    for preset in args.presets:
        policies = load_policies(preset, args, manifest)
        done = evaluate_chunks(preset, policies, args, manifest) and done
        atomic_write_bytes(manifest_path, json.dumps(manifest, indent=2).encode())
        if not done:
            print(f"stopped after --max-chunks={args.max_chunks}; run again to continue")
            return None
    results = {p: merged_result(p, args) for p in args.presets}
    for preset, res in results.items():
        save_report(res, out / preset)
    write_table(pd.concat([overall_rows(p, r) for p, r in results.items()]), out / "results.csv")
    text = results_markdown(results, manifest, args, command)
    atomic_write_bytes(out / "results.md", text.encode())
    print(text)
    return results


def main(argv: list[str] | None = None) -> dict[str, EvalResult] | None:
    import sys

    args = parse(BaselineResultsArgs, argv, prog="python -m experiments.baseline_results")
    command = "python -m experiments.baseline_results " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    return run(args, command.strip())


if __name__ == "__main__":
    main()
