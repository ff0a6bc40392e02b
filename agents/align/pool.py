"""Pools of requests to align on: what the policy saw, and what each live room was worth.

A pool is collected by playing a behaviour policy in the simulator from
``reset(seed)`` (the same start as :func:`agents.evaluate.online.evaluate`, so the
requests look like the ones the policy is judged on) and keeping, for every
request:

* the generator's encoded inputs and the SIDs of the live slots
  (:class:`agents.align.actor.EncodedRequests`);
* ``model_feedback`` (R, 6): the reward model's expected feedback of every slot
  under the run's weights (the *offline* reward: a learned model scores the
  candidates, as in OneRec/OneLive);
* ``env_feedback`` (R, 6): the environment's true expected feedback of every
  slot at that moment (``env.oracle_expected_feedback()``: the *online* reward,
  the expected response of the user to each candidate, without the sampling
  noise of one impression; replaying G candidates on the same request is
  impossible with real steps since a step changes the world). It is also what
  the curves report as the true per-objective rates of the policy.

Behaviours (who acts while the pool is collected): ``policy`` samples from the
generator's slot distribution; ``greedy`` takes its most likely room, as the
served policy does, so the pool's states (the users' histories, the crowding of
popular rooms) are those the greedy generator meets in evaluation; ``platform``
and ``random`` are the logging policies of :mod:`agents.logs.behaviour`.

The environment's state is never checkpointed: a pool is a pure function of
(behaviour parameters, seed), and it is saved as a file that checkpoints name.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.align.actor import EncodedRequests, GeneratorActor
from agents.progress import progress_bar
from liveenv.atomic import atomic_write_bytes
from liveenv.env import LiveStreamEnv
from policies.reward_model import RewardModel

BEHAVIOURS = ("policy", "greedy", "platform", "random")
Behaviour = Callable[[dict[str, np.ndarray], LiveStreamEnv], int]


@dataclass
class RequestPool:
    """``n`` requests: encoded inputs and per-slot expected feedback (float32)."""

    enc: EncodedRequests
    model_feedback: Tensor  # (n, R, 6) reward model
    env_feedback: Tensor  # (n, R, 6) environment's expected response
    user_cohort: np.ndarray  # (n,) str: new / light / heavy at the request
    meta: dict[str, Any] = field(default_factory=dict)  # how it was collected (plain values)

    def __len__(self) -> int:
        return len(self.enc)

    def feedback(self, source: str) -> Tensor:
        if source == "model":
            return self.model_feedback
        if source == "env":
            return self.env_feedback
        raise ValueError(f"reward source {source!r} is unknown; allowed: ['model', 'env']")

    def save(self, path: str | os.PathLike[str]) -> Path:
        arrays = {f"enc.{k}": v for k, v in self.enc.arrays().items()}
        arrays.update(
            model_feedback=self.model_feedback.numpy(),
            env_feedback=self.env_feedback.numpy(),
            user_cohort=self.user_cohort.astype("U8"),
            meta=np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8),
        )
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RequestPool:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no request pool at {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                enc = {k[4:]: z[k] for k in z.files if k.startswith("enc.")}
                meta = json.loads(z["meta"].tobytes().decode()) if "meta" in z.files else {}
                return cls(
                    EncodedRequests.from_arrays(enc),
                    torch.from_numpy(z["model_feedback"]),
                    torch.from_numpy(z["env_feedback"]),
                    z["user_cohort"].astype(str),
                    meta,
                )
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{path} is not a readable request pool: {e}") from e

    @classmethod
    def cat(cls, pools: list[RequestPool]) -> RequestPool:
        return cls(
            EncodedRequests.cat([p.enc for p in pools]),
            torch.cat([p.model_feedback for p in pools]),
            torch.cat([p.env_feedback for p in pools]),
            np.concatenate([p.user_cohort for p in pools]),
            dict(pools[0].meta),
        )

    def tail(self, n: int) -> RequestPool:
        rows = torch.arange(max(len(self) - n, 0), len(self))
        return RequestPool(
            self.enc.index(rows),
            self.model_feedback[rows],
            self.env_feedback[rows],
            self.user_cohort[rows.numpy()],
            dict(self.meta),
        )


def sample_slots(
    logp: Tensor, k: int, gen: torch.Generator, temperature: float = 1.0, replace: bool = False
) -> Tensor:
    """``(B, k)`` slots drawn from ``softmax(logp / temperature)`` per row.

    Without replacement (Gumbel top-k: the same law as stochastic beam search over
    the SIDs when beams cover the live set); rows with fewer than ``k`` live slots
    repeat their draws cyclically. With replacement: i.i.d. categorical draws."""
    logits = logp / temperature
    if replace:
        probs = torch.softmax(logits, -1)
        return torch.multinomial(probs, k, replacement=True, generator=gen)
    u = torch.rand(logits.shape, generator=gen).clamp(1e-12, 1 - 1e-7)
    keys = logits - torch.log(-torch.log(u))
    order = keys.argsort(-1, descending=True)  # -inf (dead slots) last
    n_live = torch.isfinite(logp).sum(-1, keepdim=True).clamp_min(1)
    pos = torch.arange(k)[None, :] % n_live  # (B, k)
    return order.gather(1, pos)


def policy_behaviour(
    actor: GeneratorActor, gen: torch.Generator, temperature: float = 1.0
) -> Behaviour:
    """Sample each request's room from the actor's slot distribution
    (``temperature`` 0: take its most likely room)."""

    @torch.no_grad()
    def act(obs: dict[str, np.ndarray], env: LiveStreamEnv) -> int:
        logp = actor.slot_log_probs(actor.encode(obs))
        if temperature == 0:
            return int(logp[0].argmax())
        return int(sample_slots(logp, 1, gen, temperature)[0, 0])

    return act


def make_behaviour(kind: str, actor: GeneratorActor, seed: int, temperature: float) -> Behaviour:
    if kind in ("policy", "greedy"):
        t = temperature if kind == "policy" else 0.0
        return policy_behaviour(actor, torch.Generator().manual_seed(seed), t)
    if kind in ("platform", "random"):
        from agents.logs.behaviour import resolve_policy, split_action

        fn, _ = resolve_policy(kind, seed)
        return lambda obs, env: int(split_action(fn(obs, env))[0])
    raise ValueError(f"behaviour {kind!r} is unknown; allowed: {list(BEHAVIOURS)}")


def collect_pool(
    actor: GeneratorActor,
    reward_model: RewardModel | None,
    weights: np.ndarray,
    env: LiveStreamEnv,
    behaviour: Behaviour,
    n_requests: int,
    seeds: list[int],
    steps_per_seed: int,
    chunk: int = 128,
    fusion: bool = True,
    progress: bool = False,
) -> RequestPool:
    """Play ``behaviour`` for ``steps_per_seed`` requests from each seed in turn
    (a truncated episode moves to the next seed) until ``n_requests`` are kept."""
    parts: list[RequestPool] = []
    buf: list[tuple[dict[str, np.ndarray], np.ndarray, str]] = []
    bar = progress_bar(
        total=n_requests,
        desc="collect requests",
        enabled=progress,
        leave=False,
        mininterval=1.0,
    )
    kept, seed_i = 0, 0
    while kept < n_requests:
        if seed_i >= len(seeds):
            raise ValueError(f"seeds {seeds} gave only {kept} of {n_requests} requests")
        obs, info = env.reset(seed=int(seeds[seed_i]))
        actor.features.cache.clear()  # a new world: streamer ids name other streamers
        seed_i += 1
        for _ in range(steps_per_seed):
            buf.append(
                (
                    obs,
                    env.unwrapped.oracle_expected_feedback().astype(np.float32),
                    str(info["user_cohort"]),
                )
            )
            kept += 1
            bar.update(1)
            if len(buf) == chunk or kept == n_requests:
                parts.append(_encode_chunk(actor, reward_model, weights, buf, fusion))
                buf = []
            if kept == n_requests:
                break
            obs, _, _, truncated, info = env.step(behaviour(obs, env))
            if truncated:
                break
    bar.close()
    return RequestPool.cat(parts)


def _encode_chunk(
    actor: GeneratorActor,
    reward_model: RewardModel | None,
    weights: np.ndarray,
    buf: list[tuple[Mapping[str, Any], np.ndarray, str]],
    fusion: bool,
) -> RequestPool:
    obs = {k: np.stack([b[0][k] for b in buf]) for k in buf[0][0]}
    env_fb = torch.from_numpy(np.stack([b[1] for b in buf]))
    if reward_model is None:
        model_fb = torch.zeros_like(env_fb)
    else:
        model_fb = torch.from_numpy(reward_model.expected_feedback(obs, weights, fusion))
        model_fb = model_fb.float() * torch.from_numpy(obs["room_mask"][..., None] > 0)
    return RequestPool(actor.encode(obs), model_fb, env_fb, np.array([b[2] for b in buf]))


__all__ = [
    "BEHAVIOURS",
    "RequestPool",
    "collect_pool",
    "make_behaviour",
    "policy_behaviour",
    "sample_slots",
]
