"""The ``liveenv`` command line.

Each sub-command takes typed arguments (see ``liveenv <command> --help``).
The pipeline commands (tokenize, pretrain, align, sweep, dashboard) arrive
with their issues; today: ``simulate``, ``demo`` and, where installed,
``log`` and ``calibrate``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from liveenv.presets import PRESETS


def _simulate(args: argparse.Namespace) -> int:
    from agents.simulate import simulate, summary_table
    from policies.baselines import make_baseline

    rows = [simulate(make_baseline(p), preset=args.preset, hours=args.hours, seed=args.seed,
                     batch_size=args.batch_size) for p in args.policy]  # fmt: skip
    print(f"preset={args.preset} simulated {args.hours:g} h, seed {args.seed}\n")
    print(summary_table(rows))
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Until the full pipeline lands: the default world under the baselines."""
    args.preset, args.policy = "default", ["random", "popular", "engaging"]
    return _simulate(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveenv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run baseline policies in a world and print a summary")
    sim.add_argument("--preset", choices=sorted(PRESETS), default="default", help="world preset")
    sim.add_argument("--policy", nargs="+", default=["random", "popular"],
                     choices=["random", "popular", "engaging"], help="baseline policies to run")  # fmt: skip
    sim.add_argument("--hours", type=_positive, default=24.0, help="simulated hours")
    sim.add_argument("--seed", type=int, default=0, help="world and policy seed")
    sim.add_argument("--batch-size", type=int, default=1024, help="requests served per batch")
    sim.set_defaults(func=_simulate)
    demo = sub.add_parser("demo", help="the README's main job on the small default scenario")
    demo.add_argument("--hours", type=_positive, default=24.0, help="simulated hours")
    demo.add_argument("--seed", type=int, default=0, help="world and policy seed")
    demo.add_argument("--batch-size", type=int, default=1024, help="requests served per batch")
    demo.set_defaults(func=_demo)
    return parser


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be a number > 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
