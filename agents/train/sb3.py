"""Train PPO or MaskablePPO in the live-streaming env, with a learning curve.

    python -m agents.train.sb3 --algo MaskablePPO --timesteps 30000 --out runs/sb3/maskable_ppo

Both agents use the slot-scoring actor of :mod:`policies.sb3_policy` on the raw
Dict observation. Empty slots: MaskablePPO gets ``env.action_masks()``; plain
PPO has no masks, so its actor gives every slot whose ``room_mask`` is 0 a
logit of ``-1e4`` inside the network (the mask is part of the observation),
and the training env uses ``masked_action="skip"`` as a safety net (a masked
slot would end the visit with zero reward instead of raising). The learning
curve counts how often that ever happened (``invalid_share``).

Training episodes are short (``horizon_hours``) and every reset draws new
dynamics (a new day) from the env's seed stream on the one platform of
``EnvConfig.world_seed``, so the agent sees many days, as it will in
evaluation (every evaluation seed is a held-out day of the same platform).

``gamma`` defaults to 0: consecutive requests come from different users, so
the return of one recommendation is essentially its own reward (a contextual
bandit); the long-term effects of the world (follows, return visits) reach
other steps only weakly. Every ``eval_every`` timesteps the greedy policy
plays ``eval_seeds`` for ``eval_steps`` requests each; the mean reward per
impression goes to ``learning_curve.csv`` and ``learning_curve.png`` with the
uniform-random policy of the same seeds as a reference line.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from stable_baselines3.common.callbacks import BaseCallback

from agents.evaluate.tables import write_table
from agents.run.cliargs import parse
from agents.train.tracking import record_curve_point, use_tensorboard_logger
from liveenv.atomic import atomic_write_bytes
from liveenv.env import LiveStreamEnv
from liveenv.presets import make_config
from policies.base import Policy
from policies.baselines import RandomPolicy
from policies.sb3_policy import (
    ALGORITHMS,
    RoomScoringActorCriticPolicy,
    RoomScoringPolicy,
    SB3Policy,
)


@dataclass
class TrainSB3Args:
    """Train an SB3 agent (PPO or MaskablePPO) in the env, with a learning curve."""

    algo: Literal["MaskablePPO", "PPO"] = field(
        default="MaskablePPO", metadata={"help": "algorithm"}
    )
    preset: str = field(default="default", metadata={"help": "world preset"})
    timesteps: int = field(default=30_000, metadata={"help": "env steps of training"})
    horizon_hours: float = field(
        default=0.5, metadata={"help": "training episode length (new day per episode)"}
    )
    start_hour: float = field(default=0.0, metadata={"help": "hour of day episodes start at"})
    n_steps: int = field(default=1024, metadata={"help": "rollout length per update"})
    batch_size: int = field(default=256, metadata={"help": "minibatch size"})
    n_epochs: int = field(default=5, metadata={"help": "passes over each rollout"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    gamma: float = field(
        default=0.0, metadata={"help": "discount (0: contextual bandit, see the module doc)"}
    )
    ent_coef: float = field(default=0.01, metadata={"help": "entropy bonus"})
    hidden: int = field(default=64, metadata={"help": "width of the room-scoring MLP"})
    eval_every: int = field(
        default=5_000, metadata={"help": "timesteps between learning-curve points"}
    )
    eval_seeds: tuple[int, ...] = field(
        default=(9001, 9002), metadata={"help": "worlds of the learning curve"}
    )
    eval_steps: int = field(default=500, metadata={"help": "requests per learning-curve world"})
    seed: int = field(default=0, metadata={"help": "training seed (worlds and the agent)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    out: str = field(default="runs/sb3/maskable_ppo", metadata={"help": "output folder"})
    tensorboard: bool = field(
        default=True,
        metadata={"help": "SB3's logger also writes TensorBoard + CSV under OUT/tb (if installed)"},
    )

    def __post_init__(self) -> None:
        self.eval_seeds = tuple(int(s) for s in self.eval_seeds)
        if self.algo not in ALGORITHMS:
            raise ValueError(f"algo={self.algo!r} is unknown; allowed: {sorted(ALGORITHMS)}")
        for name in (
            "timesteps",
            "n_steps",
            "batch_size",
            "n_epochs",
            "hidden",
            "eval_every",
            "eval_steps",
            "threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: must be >= 1")
        if not 0 <= self.gamma <= 1 or self.learning_rate <= 0 or self.horizon_hours <= 0:
            raise ValueError(
                f"gamma={self.gamma} must be in [0, 1], learning_rate={self.learning_rate} "
                f"and horizon_hours={self.horizon_hours} > 0"
            )
        if not self.eval_seeds:
            raise ValueError("eval_seeds is empty: give at least one seed")


def train_env(args: TrainSB3Args) -> LiveStreamEnv:
    cfg = make_config(
        args.preset,
        horizon_hours=args.horizon_hours,
        start_hour=args.start_hour,
        masked_action="skip",
    )
    return LiveStreamEnv(cfg)


def mean_reward(policy: Policy, preset: str, seeds: tuple[int, ...], steps: int) -> float:
    """Mean reward per impression of ``policy`` over the first ``steps`` requests
    of each seed's world (the evaluation harness's protocol, without the tables)."""
    env = LiveStreamEnv(make_config(preset))
    total, n = 0.0, 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        policy.reset(seed)
        for _ in range(steps):
            obs, reward, _, truncated, _ = env.step(policy.act(obs).action(0))
            total, n = total + reward, n + 1
            if truncated:
                break
    return total / max(n, 1)


class LearningCurve(BaseCallback):
    """Evaluate the greedy policy every ``args.eval_every`` steps; track rollouts."""

    def __init__(self, args: TrainSB3Args) -> None:
        super().__init__()
        self.args, self.rows, self.next_eval = args, [], 0
        self.rollout_reward: float = float("nan")
        self.invalid, self.steps = 0, 0

    def _on_step(self) -> bool:
        infos = self.locals.get("infos", [])
        self.invalid += sum(bool(i.get("invalid_action")) for i in infos)
        self.steps += len(infos)
        if self.num_timesteps >= self.next_eval:
            self.record()
            self.next_eval += self.args.eval_every
        return True

    def _on_rollout_end(self) -> None:
        self.rollout_reward = float(np.mean(self.model.rollout_buffer.rewards))

    def record(self) -> None:
        a = self.args
        value = mean_reward(SB3Policy(self.model), a.preset, a.eval_seeds, a.eval_steps)
        new_step = not self.rows or self.rows[-1]["timesteps"] != int(self.num_timesteps)
        self.rows.append(
            {
                "timesteps": int(self.num_timesteps),
                "eval_reward": value,
                "rollout_reward": self.rollout_reward,
                "invalid_share": self.invalid / max(self.steps, 1),
            }
        )
        if new_step:  # the final point repeats the last one when it fell on the end
            record_curve_point(self.logger, self.rows[-1], self.num_timesteps)


def plot_curve(curve: pd.DataFrame, random_reward: float, title: str) -> Figure:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.plot(
        curve["timesteps"], curve["eval_reward"], marker="o", label="greedy policy (eval worlds)"
    )
    ax.plot(curve["timesteps"], curve["rollout_reward"], alpha=0.6, label="training rollouts")
    ax.axhline(random_reward, color="grey", linestyle="--", label="uniform random (eval worlds)")
    ax.set_xlabel("timesteps")
    ax.set_ylabel("mean reward per impression")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@dataclass
class SB3Result:
    policy: SB3Policy
    curve: pd.DataFrame
    random_reward: float
    wall_s: float
    files: dict[str, str] = field(default_factory=dict)


def train_sb3(args: TrainSB3Args) -> SB3Result:
    """Train, record the learning curve, and return the wrapped policy."""
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    env = train_env(args)
    env.reset(seed=args.seed)  # later resets continue this seed's stream: new days
    policy_cls = RoomScoringPolicy if args.algo == "MaskablePPO" else RoomScoringActorCriticPolicy
    model = ALGORITHMS[args.algo](
        policy_cls,
        env,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        ent_coef=args.ent_coef,
        seed=args.seed,
        policy_kwargs={"features_extractor_kwargs": {"hidden": args.hidden}},
        verbose=0,
        device="cpu",
    )
    use_tensorboard_logger(model, args.out, args.tensorboard)
    curve_cb = LearningCurve(args)
    model.learn(total_timesteps=args.timesteps, callback=curve_cb)
    curve_cb.record()  # the final point
    curve = pd.DataFrame(curve_cb.rows).drop_duplicates("timesteps", keep="last")
    random_reward = mean_reward(RandomPolicy(), args.preset, args.eval_seeds, args.eval_steps)
    name = "maskable_ppo" if args.algo == "MaskablePPO" else "ppo"
    return SB3Result(SB3Policy(model, name=name), curve, random_reward, time.perf_counter() - t0)


def save_result(result: SB3Result, args: TrainSB3Args) -> dict[str, str]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "policy": str(result.policy.save(out / "policy.npz")),
        "curve_csv": str(write_table(result.curve, out / "learning_curve.csv")),
    }
    fig = plot_curve(result.curve, result.random_reward, f"{args.algo} on {args.preset}")
    buf = _png(fig)
    files["curve_png"] = str(atomic_write_bytes(out / "learning_curve.png", buf))
    report: dict[str, Any] = {
        "args": asdict(args),
        "wall_s": result.wall_s,
        "random_reward": result.random_reward,
        "curve": result.curve.to_dict(orient="records"),
    }
    files["report"] = str(
        atomic_write_bytes(out / "train.json", json.dumps(report, indent=2).encode())
    )
    result.files = files
    return files


def _png(fig: Figure) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> SB3Result:
    args = parse(TrainSB3Args, argv, prog="python -m agents.train.sb3")
    result = train_sb3(args)
    files = save_result(result, args)
    print(result.curve.round(4).to_string(index=False))
    print(
        f"uniform random on the eval worlds: {result.random_reward:.4f}; wall {result.wall_s:.1f} s"
    )
    print(f"wrote {files}")
    return result


if __name__ == "__main__":
    main()
