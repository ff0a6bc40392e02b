"""How far can the generator's room prior go? A privileged ceiling on `default`.

    python benchmarks/prior_ceiling.py --generator runs/grpo/best.pt \
        [--cascade runs/baselines/models/default/cascade.npz] \
        [--train-days 24] [--test-days 8] [--steps 200]

On training days (seeds 1000...) acted by the cascade, the script keeps the
generator's room-prior inputs and the environment's true expected reward of
every live room (privileged). A fresh :class:`policies.onelive.model.RoomPrior`
of the generator's own configuration is fitted *to those true utilities*
(listwise: cross-entropy to a softmax of the utilities at temperature 0.3). No
policy trained from feedback can beat that fit with the same inputs by much, so
it bounds what alignment of the prior can reach.

On unseen days (seeds 100...) each chooser (the cascade, the generator, the
fitted prior) then acts on its own, and the figure is the mean true utility of
its choices as a share of the mean best live room's (1 = the oracle). The
generator's share on the cascade's days is printed too: it is higher than on
its own, because there the users' recent histories hold the cascade's choices,
information the generator does not get when it acts.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch

import liveenv  # noqa: F401  (registers the ids)
from policies.base import Policy, as_batch
from policies.onelive.features import feedback_types, room_stat_features
from policies.onelive.model import RoomPrior
from policies.onelive.policy import GeneratorPolicy


@dataclass
class States:
    """Per request: the prior's inputs, true utilities, live mask and policy choices."""

    user: torch.Tensor  # (N, U)
    hist_feedback: torch.Tensor  # (N, H) long, -1 on padding
    hist_mask: torch.Tensor  # (N, H) bool
    stats: torch.Tensor  # (N, R, P)
    util: torch.Tensor  # (N, R), 0 on empty slots
    mask: torch.Tensor  # (N, R) bool
    chosen: dict[str, np.ndarray]  # policy -> (N,) slot

    def take(self, idx: torch.Tensor) -> States:
        return States(
            self.user[idx],
            self.hist_feedback[idx],
            self.hist_mask[idx],
            self.stats[idx],
            self.util[idx],
            self.mask[idx],
            {k: v[idx.numpy()] for k, v in self.chosen.items()},
        )


class Chooser(Protocol):
    """Picks one live slot for a request (``here``: its prior inputs)."""

    def __call__(self, obs: dict[str, np.ndarray], here: States) -> int: ...
    def reset(self, seed: int) -> None: ...


def collect(
    choosers: dict[str, Chooser], actor: str, gen: GeneratorPolicy, seeds: range, steps: int
) -> States:
    """Play ``choosers[actor]`` on ``seeds``; record every chooser's pick at each request."""
    env = gym.make("liveenv/Default-v0").unwrapped
    embed = gen.model.config.room_embed_dim  # type: ignore[union-attr]
    h = gen.model.config.max_history  # type: ignore[union-attr]  # the history the model reads
    rows: dict[str, list] = {k: [] for k in ("user", "fb", "hm", "stats", "util", "mask")}
    chosen: dict[str, list] = {name: [] for name in choosers}
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        for chooser in choosers.values():
            chooser.reset(seed)
        for _ in range(steps):
            b = as_batch(obs)
            hm = b["history_mask"][:, -h:].astype(bool)
            rows["user"].append(b["user"][0].astype(np.float32))
            rows["fb"].append(np.where(hm, feedback_types(b["history_feedback"][:, -h:]), -1)[0])
            rows["hm"].append(hm[0])
            rows["stats"].append(room_stat_features(b, embed_dim=embed)[0].half())
            util = env.oracle_utilities()
            rows["util"].append(np.where(np.isfinite(util), util, 0.0).astype(np.float32))
            rows["mask"].append(obs["room_mask"].astype(bool))
            here = _one(rows)
            for name, chooser in choosers.items():
                chosen[name].append(chooser(obs, here))
            obs, *_ = env.step(chosen[actor][-1])
    t = {k: torch.as_tensor(np.stack(v)) for k, v in rows.items() if k != "stats"}
    return States(
        t["user"],
        t["fb"].long(),
        t["hm"],
        torch.stack(rows["stats"]),
        t["util"],
        t["mask"],
        {k: np.asarray(v) for k, v in chosen.items()},
    )


def _one(rows: dict[str, list]) -> States:
    """The newest request of ``rows`` as a one-row :class:`States`."""
    t = {k: torch.as_tensor(v[-1])[None] for k, v in rows.items()}
    return States(t["user"], t["fb"].long(), t["hm"], t["stats"], t["util"], t["mask"], {})


class PriorChooser:
    """Greedy choice of a fitted :class:`RoomPrior` (privileged: fitted to true utilities)."""

    def __init__(self, prior: RoomPrior) -> None:
        self.prior = prior

    def reset(self, seed: int) -> None:
        pass

    @torch.no_grad()
    def __call__(self, obs: dict[str, np.ndarray], here: States) -> int:
        return int(prior_scores(self.prior, here).argmax(1))


class PolicyChooser:
    """A :class:`Policy`'s first slot."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def reset(self, seed: int) -> None:
        self.policy.reset(seed)

    def __call__(self, obs: dict[str, np.ndarray], here: States) -> int:
        return int(self.policy.act(obs).action(0))


def prior_scores(prior: RoomPrior, s: States) -> torch.Tensor:
    from types import SimpleNamespace

    batch = SimpleNamespace(user_feats=s.user, hist_feedback=s.hist_feedback, hist_mask=s.hist_mask)
    return prior(batch, s.stats.float()).masked_fill(~s.mask, -1e9)  # type: ignore[arg-type]


def fit_prior(prior: RoomPrior, train: States, steps: int, seed: int) -> RoomPrior:
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        s = train.take(torch.randint(0, len(train.user), (512,), generator=gen))
        target = torch.softmax((s.util / 0.3).masked_fill(~s.mask, -1e9), 1)
        loss = -(target * torch.log_softmax(prior_scores(prior, s), 1)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return prior


def picked(s: States, slot: np.ndarray) -> torch.Tensor:
    """``(N,)`` true utility of the chosen slots."""
    return s.util.gather(1, torch.as_tensor(slot)[:, None])[:, 0]


def best(s: States) -> float:
    return float(s.util.masked_fill(~s.mask, -1e9).max(1).values.mean())


def share(s: States, slot: np.ndarray) -> float:
    """Mean utility of the chosen slots over the mean utility of the best live room."""
    return float(picked(s, slot).mean()) / best(s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", required=True, help="aligned generator checkpoint")
    ap.add_argument("--cascade", default="runs/baselines/models/default/cascade.npz")
    ap.add_argument("--train-days", type=int, default=24)
    ap.add_argument("--test-days", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200, help="requests per day")
    ap.add_argument("--fit-steps", type=int, default=1500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = GeneratorPolicy.from_files(args.generator)
    choosers: dict[str, Chooser] = {
        "cascade": PolicyChooser(Policy.load(args.cascade)),
        "generator": PolicyChooser(gen),
    }
    t0 = time.perf_counter()
    days = range(1000, 1000 + args.train_days)
    train = collect({"cascade": choosers["cascade"]}, "cascade", gen, days, args.steps)
    prior = fit_prior(RoomPrior(gen.model.config), train, args.fit_steps, 0)  # type: ignore[union-attr]
    choosers["fitted prior"] = PriorChooser(prior)
    test_days = range(100, 100 + args.test_days)
    # every chooser picks on the cascade's days; on its own days only the actor picks
    own = {"cascade": collect(choosers, "cascade", gen, test_days, args.steps)}
    for name in ("generator", "fitted prior"):
        own[name] = collect({name: choosers[name]}, name, gen, test_days, args.steps)
    print(
        f"{len(train.user)} training requests ({args.train_days} days, acted by the cascade); "
        f"{args.test_days} unseen days x {args.steps} requests per chooser; "
        f"{time.perf_counter() - t0:.0f} s"
    )
    with torch.no_grad():
        fit_train = share(train, prior_scores(prior, train).argmax(1).numpy())
    print(f"fitted prior on its training requests: {fit_train:.3f}")
    print(
        "| chooser | share on its own days | expected reward per request | share on the "
        "cascade's days |\n|---|---|---|---|"
    )
    for name, s in own.items():
        mine = s.chosen[name]
        print(
            f"| {name} | {share(s, mine):.3f} | {float(picked(s, mine).mean()):.3f} | "
            f"{share(own['cascade'], own['cascade'].chosen[name]):.3f} |"
        )
    rand = own["cascade"]
    print(
        f"random's share on the cascade's days: "
        f"{float((rand.util * rand.mask).sum(1).div(rand.mask.sum(1)).mean() / best(rand)):.3f}"
    )


if __name__ == "__main__":
    main()
