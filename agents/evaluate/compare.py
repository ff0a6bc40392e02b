"""Evaluate aligned generators beside the pretrained one and other saved policies.

    python -m agents.evaluate.compare --generators pretrained=runs/pre/model.pt \
        grpo=runs/align/model.pt --policies cascade=runs/cascade/cascade.npz \
        --preset default --seeds 100 101 102 103 104 --steps 1000 --out runs/compare

Every policy plays the same seeds of the same world (:func:`agents.evaluate.online.evaluate`:
random and oracle are added, so the oracle-normalised score is reported); the
report (``summary.md`` with 95 % intervals, per-cohort tables, CSV/Parquet tables
and figures) goes to ``--out``. Reward weights (``--weights``) set the world's
reward, i.e. what weighted return means.

Every finished episode is kept in ``OUT/episodes`` with the run's settings
(``spec.json``: everything but the seeds), so a rerun with the same settings
resumes where it stopped and one that adds seeds plays only the new ones; a
rerun with other settings is refused unless ``--no-resume`` (which starts over).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.align.weights import parse_weights


@dataclass
class CompareArgs:
    """Evaluate generator checkpoints and saved policies side by side."""

    generators: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "NAME=CHECKPOINT of generators (greedy constrained beam search)"},
    )
    policies: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "NAME=FILE of policies saved with Policy.save (e.g. the cascade)"},
    )
    baselines: tuple[str, ...] = field(
        default=("popular",),
        metadata={"help": "baselines to add (random and oracle are always there)"},
    )
    preset: str = field(default="default", metadata={"help": "world preset"})
    overrides: dict[str, Any] = field(default_factory=dict, metadata={"help": "env overrides"})
    weights: str | None = field(default=None, metadata={"help": "reward weights of the world"})
    seeds: tuple[int, ...] = field(
        default=(100, 101, 102, 103, 104),
        metadata={"help": "episode seeds (100+: days the seed-0 logs never saw)"},
    )
    steps: int = field(default=1000, metadata={"help": "steps per seed"})
    beam_size: int = field(default=32, metadata={"help": "beams of the generators"})
    out: str = field(default="runs/compare", metadata={"help": "report folder"})
    figures: bool = field(default=True, metadata={"help": "draw the figures"})
    workers: int = field(
        default=1,
        metadata={"help": "parallel episode processes (the tables equal a one-process run's)"},
    )
    resume: bool = field(
        default=True,
        metadata={"help": "reuse the finished episodes in OUT/episodes (same settings only)"},
    )

    def __post_init__(self) -> None:
        if not self.generators and not self.policies:
            raise ValueError("CompareArgs: give --generators and/or --policies")
        if self.steps < 1 or not self.seeds:
            raise ValueError("CompareArgs: steps must be >= 1 and seeds non-empty")
        if self.workers < 1:
            raise ValueError(f"CompareArgs.workers={self.workers}: must be >= 1")
        parse_weights(self.weights)


def build_policies(args: CompareArgs) -> dict[str, Any]:
    from policies.base import Policy
    from policies.onelive.policy import GeneratorPolicy
    from policies.registry import make_baseline

    out: dict[str, Any] = {}
    for name, path in args.generators.items():
        out[name] = GeneratorPolicy.from_files(path, name=name, beam_size=args.beam_size)
    for name, path in args.policies.items():
        policy = Policy.load(path)
        policy.name = name
        out[name] = policy
    for name in args.baselines:
        out[name] = make_baseline(name)
    return out


#: Settings that do not change an episode (the seeds choose which episodes run).
NOT_IN_SPEC = ("seeds", "out", "figures", "workers", "resume")


def _digest(path: str) -> str:
    """A file's content hash (a retrained checkpoint at the same path is another policy)."""
    import hashlib

    file = Path(path)
    return hashlib.sha256(file.read_bytes()).hexdigest()[:16] if file.exists() else "missing"


def episode_dir(args: CompareArgs) -> Path:
    """``OUT/episodes``, checked against (or stamped with) the run's settings."""
    folder = Path(args.out) / "episodes"
    spec = {k: v for k, v in asdict(args).items() if k not in NOT_IN_SPEC}
    spec["sha256"] = {p: _digest(p) for p in (*args.generators.values(), *args.policies.values())}
    spec = json.loads(json.dumps(spec))  # tuples -> lists, as read back
    path = folder / "spec.json"
    if folder.exists() and not args.resume:
        shutil.rmtree(folder)
    if path.exists():
        old = json.loads(path.read_text())
        if old != spec:
            diff = sorted(k for k in {**old, **spec} if old.get(k) != spec.get(k))
            raise ValueError(
                f"{folder} holds episodes of other settings ({', '.join(diff)}: "
                f"{[old.get(k) for k in diff]} there, {[spec.get(k) for k in diff]} "
                "now); give another --out or --no-resume"
            )
        return folder
    from liveenv.config import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(spec, indent=1, sort_keys=True))
    return folder


def compare(args: CompareArgs) -> Any:
    """Run the evaluation; write the report; return the :class:`EvalResult`."""
    import torch

    from agents.evaluate.online import evaluate
    from liveenv.objectives import weights_dict
    from liveenv.presets import make_config

    torch.set_num_threads(1)
    cfg = make_config(args.preset, **args.overrides)
    cfg = cfg.replace(reward_weights=weights_dict(parse_weights(args.weights)))
    result = evaluate(
        build_policies(args),
        config=cfg,
        seeds=args.seeds,
        steps_per_seed=args.steps,
        progress=False,
        expected=True,
        workers=args.workers,
        episode_dir=episode_dir(args),
    )
    result.save(args.out, figures=args.figures)
    return result


def main(argv: Sequence[str] | None = None) -> Any:
    from agents.evaluate.tables import markdown_summary
    from agents.run.cliargs import parse

    args = parse(CompareArgs, argv, prog="python -m agents.evaluate.compare")
    result = compare(args)
    print(markdown_summary(result))
    print(f"wrote the report to {Path(args.out)}")
    return result


if __name__ == "__main__":
    main()
