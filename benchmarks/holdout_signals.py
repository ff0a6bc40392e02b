"""How much of the held-out clicks the logging policy's own signals explain.

    python benchmarks/holdout_signals.py --holdout runs/abl/holdout.npz

Ranks the live rooms of each held-out clicked request (:class:`agents.evaluate.holdout.Holdout`)
by hand-made scores built from what :class:`agents.logs.behaviour.PlatformPolicy`
reads: live viewers, the followed flag and the cosine of the user's mean history
content with the room's content, alone and combined with the platform's weights
(1, 2, 2). Prints HR@1/10/50 of the click and long-view targets per score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.evaluate.holdout import Holdout, offline_rank_metrics
from agents.logs.behaviour import VIEWERS
from agents.run import cliargs
from liveenv.world import ROOM_STAT_COLUMNS

SIGNALS = {
    "viewers": (1, 0, 0),
    "viewers+follow": (1, 2, 0),
    "viewers+taste": (1, 0, 2),
    "platform (viewers+follow+taste)": (1, 2, 2),
    "taste": (0, 0, 1),
    "follow": (0, 1, 0),
}


@dataclass
class SignalArgs:
    """Offline HR of the logging policy's signals on held-out requests."""

    holdout: str = field(default="", metadata={"help": "captured held-out file (.npz)"})


def signal_score(viewers_w: float, follow_w: float, taste_w: float) -> Callable:
    def score(obs: dict[str, np.ndarray]) -> np.ndarray:
        rooms = obs["rooms"]
        o = (rooms.shape[-1] - len(ROOM_STAT_COLUMNS)) // 2
        s = viewers_w * rooms[..., 2 * o + VIEWERS] + follow_w * obs["room_followed"]
        m = obs["history_mask"].astype(bool)
        taste = (obs["history_content"] * m[..., None]).sum(1)  # (B, o)
        content = rooms[..., :o]  # (B, R, o)
        norm = np.linalg.norm(content, axis=-1) * np.linalg.norm(taste, axis=-1)[:, None]
        return s + taste_w * np.einsum("brd,bd->br", content, taste) / np.maximum(norm, 1e-9)

    return score


def main(argv: Sequence[str] | None = None) -> None:
    args = cliargs.parse(SignalArgs, argv, prog="python benchmarks/holdout_signals.py")
    holdout = Holdout.load(args.holdout)
    print(
        "| score | "
        + " | ".join(f"{t} HR@{k}" for t in ("click", "long view") for k in (1, 10, 50))
        + " |"
    )
    print("|---" * 7 + "|")
    for name, w in SIGNALS.items():
        m = offline_rank_metrics(signal_score(*w), holdout, (1, 10, 50))
        print(f"| {name} | " + " | ".join(f"{r.hr:.3f}" for r in m.itertuples()) + " |")


if __name__ == "__main__":
    main()
