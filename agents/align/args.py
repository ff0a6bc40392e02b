"""The arguments of an alignment run (:class:`AlignArgs`), shared by every aligner
of :mod:`agents.align.registry`: the request pool, the groups, the reward, the
optimiser, the checkpoints and the curves. An aligner that needs more (DPO's
``beta``) subclasses it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from agents.align.pool import BEHAVIOURS
from agents.align.weights import parse_weights

#: Arguments that may change between an interrupted run and its resumption.
RESUMABLE = ("resume", "stop_at", "progress", "threads", "figures", "select", "tensorboard")


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
        "(benchmarks/aligned_by_day.py)",
        default=256,
    )
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
        "pool's days",
        default=1.0,
    )
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
    tensorboard: bool = _help(
        "also write the curve rows to TensorBoard under OUT/tb (if installed)", default=True
    )
    select: Literal["best", "last"] = _help(
        "model returned: best (held-out greedy return) | last", default="best"
    )

    #: the values of ``method`` this class takes (an aligner's subclass names its own)
    METHODS: ClassVar[tuple[str, ...]] = ("ecpo", "grpo")

    def __post_init__(self) -> None:
        choices = {
            "reward_source": ("model", "env"),
            "method": self.METHODS,
            "regulariser": ("sft", "kl", "none"),
            "behaviour": BEHAVIOURS,
            "select": ("best", "last"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"AlignArgs.{name}={getattr(self, name)!r}: allowed {list(allowed)}"
                )
        positive = (
            "pool_requests",
            "pool_steps_per_seed",
            "iterations",
            "requests_per_iter",
            "group_size",
            "update_epochs",
            "minibatches",
            "log_every",
            "checkpoint_every",
            "threads",
            "refresh_requests",
            "eval_requests",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"AlignArgs.{name}={getattr(self, name)!r}: must be >= 1")
        for name in (
            "refresh_every",
            "stop_at",
            "sft_coef",
            "kl_coef",
            "ecpo_delta",
            "min_group_std",
            "max_grad_norm",
        ):
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
