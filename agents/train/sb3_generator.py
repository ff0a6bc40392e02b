"""The OneLive generator as an sb3-contrib ``MaskablePPO`` policy (online RL in the simulator).

Extension points only (the algorithm is sb3-contrib's, unchanged):

* :class:`GeneratorExtractor` (a ``BaseFeaturesExtractor``) holds the generator
  (:class:`agents.align.actor.GeneratorActor`, loaded from a checkpoint) and
  turns an observation batch into ``[slot logits (R) ; hidden state (d)]``: the
  logits are the generator's SID log-likelihoods of the live slots (collisions
  split, see the actor), the hidden state is the main stack's ``[BOS]`` state;
* :class:`GeneratorMaskablePolicy` (a ``MaskableActorCriticPolicy``) routes the
  logits unchanged to the categorical actor (``action_net`` is the identity over
  the slots) and the hidden state through a small MLP to the value head; masks
  come from ``env.action_masks()`` as usual. ``ortho_init`` is off so the
  pretrained weights are kept.

    python -m agents.train.sb3_generator --generator runs/pretrain/model.pt --timesteps 4096

trains in the default world (reward weights from ``--weights``) and writes the
SB3 model and the aligned generator checkpoint (``model.pt``, loadable by
:class:`policies.onelive.policy.GeneratorPolicy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from agents.align.actor import GeneratorActor
from agents.train.tracking import use_tensorboard_logger

LOGIT_FLOOR = -1e4  # finite stand-in for -inf on empty slots (the mask removes them anyway)
_INT_KEYS = ("history_streamer", "room_streamer")
_MASK_KEYS = ("history_mask", "room_mask", "room_followed")


def obs_to_numpy(obs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """SB3's float tensors back to the observation's dtypes (ids as int64, masks as int8)."""
    out = {}
    for k, v in obs.items():
        arr = v.detach().cpu().numpy()
        if k in _INT_KEYS:
            arr = np.rint(arr).astype(np.int64)
        elif k in _MASK_KEYS:
            arr = (arr > 0.5).astype(np.int8)
        else:
            arr = arr.astype(np.float32)
        out[k] = arr
    return out


class GeneratorExtractor(BaseFeaturesExtractor):
    """``[slot logits (R) ; BOS hidden (d)]`` of a batch of observations."""

    def __init__(self, observation_space: gym.spaces.Dict, generator: str) -> None:
        actor = GeneratorActor.from_checkpoint(generator)
        n_rooms = int(observation_space["room_mask"].shape[0])
        super().__init__(observation_space, features_dim=n_rooms + actor.model.config.d_model)
        self.actor, self.n_rooms, self.generator = actor, n_rooms, generator

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        enc = self.actor.encode(obs_to_numpy(obs))
        logp = self.actor.slot_log_probs(enc)  # (B, R), differentiable
        logits = torch.where(torch.isfinite(logp), logp, torch.full_like(logp, LOGIT_FLOOR))
        return torch.cat([logits, self.actor.hidden(enc)], -1)  # (B, R + d)


class SlotSplit(nn.Module):
    """The ``mlp_extractor``: the actor's latent is the slot logits as they are, the
    critic's an MLP over the hidden state."""

    def __init__(
        self, n_rooms: int, hidden_dim: int, vf_arch: Sequence[int], activation: type[nn.Module]
    ) -> None:
        super().__init__()
        self.n_rooms = n_rooms
        layers: list[nn.Module] = []
        last = hidden_dim
        for width in vf_arch:
            layers += [nn.Linear(last, width), activation()]
            last = width
        self.critic = nn.Sequential(*layers)
        self.latent_dim_pi, self.latent_dim_vf = n_rooms, last

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return features[:, : self.n_rooms]

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.critic(features[:, self.n_rooms :])


class GeneratorMaskablePolicy(MaskableActorCriticPolicy):
    """MaskablePPO policy whose actor is the generator (pass
    ``features_extractor_kwargs={"generator": PATH}``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", GeneratorExtractor)
        kwargs.setdefault("net_arch", {"pi": [], "vf": [64]})
        kwargs.setdefault("activation_fn", nn.Tanh)
        kwargs.setdefault("ortho_init", False)  # keep the pretrained generator's weights
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        n = int(self.action_space.n)
        arch = self.net_arch.get("vf", [64]) if isinstance(self.net_arch, dict) else self.net_arch
        self.mlp_extractor = SlotSplit(n, self.features_dim - n, list(arch), self.activation_fn)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Identity()  # the generator's log-likelihoods are the logits
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    @property
    def generator_actor(self) -> GeneratorActor:
        return self.features_extractor.actor  # type: ignore[union-attr,return-value]


# ----- training --------------------------------------------------------------------
@dataclass
class SB3GeneratorArgs:
    """Train the generator online with sb3-contrib's MaskablePPO."""

    generator: str = field(metadata={"help": "pretrained generator checkpoint"})
    out: str = field(default="runs/sb3_generator", metadata={"help": "output folder"})
    weights: str | None = field(
        default=None, metadata={"help": "reward weights (see --help of align)"}
    )
    preset: str = field(default="default", metadata={"help": "world preset"})
    overrides: dict[str, Any] = field(default_factory=dict, metadata={"help": "env overrides"})
    timesteps: int = field(default=4096, metadata={"help": "environment steps"})
    n_steps: int = field(default=256, metadata={"help": "rollout length per update"})
    batch_size: int = field(default=64, metadata={"help": "PPO minibatch size"})
    n_epochs: int = field(default=4, metadata={"help": "PPO epochs per update"})
    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate"})
    gamma: float = field(default=0.0, metadata={"help": "discount (0: each request is a bandit)"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus"})
    seed: int = field(default=0, metadata={"help": "seed of PPO and the env"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    tensorboard: bool = field(
        default=True,
        metadata={"help": "SB3's logger also writes TensorBoard + CSV under OUT/tb (if installed)"},
    )

    def __post_init__(self) -> None:
        from agents.align.weights import parse_weights

        for name in ("timesteps", "n_steps", "batch_size", "n_epochs", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SB3GeneratorArgs.{name}={getattr(self, name)!r}: must be >= 1")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"SB3GeneratorArgs.gamma={self.gamma!r}: must be in [0, 1]")
        parse_weights(self.weights)


def make_model(args: SB3GeneratorArgs) -> MaskablePPO:
    """A MaskablePPO on the env of ``args`` with the generator policy."""
    from agents.align.weights import parse_weights
    from liveenv.env import LiveStreamEnv
    from liveenv.objectives import weights_dict
    from liveenv.presets import make_config

    torch.set_num_threads(args.threads)
    weights = weights_dict(parse_weights(args.weights))
    cfg = make_config(args.preset, **args.overrides).replace(reward_weights=weights)
    env = LiveStreamEnv(cfg)
    return MaskablePPO(
        GeneratorMaskablePolicy,
        env,
        learning_rate=args.lr,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        gamma=args.gamma,
        gae_lambda=1.0,
        ent_coef=args.ent_coef,
        seed=args.seed,
        device="cpu",
        verbose=0,
        policy_kwargs={"features_extractor_kwargs": {"generator": args.generator}},
    )


def train_sb3_generator(args: SB3GeneratorArgs) -> Path:
    """Train; write ``OUT/ppo.zip`` and the aligned generator ``OUT/model.pt``."""
    from policies.onelive.checkpoint import load_checkpoint, save_checkpoint, tokenizer_of

    model = make_model(args)
    use_tensorboard_logger(model, args.out, args.tensorboard)
    model.learn(total_timesteps=args.timesteps, progress_bar=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "ppo.zip")
    _, extra, _ = load_checkpoint(args.generator)
    final = out / "model.pt"
    save_checkpoint(
        final,
        model.policy.generator_actor.model,
        None,  # type: ignore[attr-defined]
        {
            "tokenizer": tokenizer_of(args.generator, extra),
            "aligned_from": args.generator,
            "trainer": "sb3-contrib MaskablePPO",
        },
    )
    return final


def main(argv: Sequence[str] | None = None) -> Path:
    from agents.run.cliargs import parse

    args = parse(SB3GeneratorArgs, argv, prog="python -m agents.train.sb3_generator")
    path = train_sb3_generator(args)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()


__all__ = [
    "GeneratorExtractor",
    "GeneratorMaskablePolicy",
    "SB3GeneratorArgs",
    "SlotSplit",
    "make_model",
    "train_sb3_generator",
]
