"""The observable ceiling (issue #19, item 3): how close to the oracle can a model of
everything the observation holds come, fitted with the privileged true utilities?

    python benchmarks/observable_ceiling.py [--preset default] [--overrides KEY=VALUE ...]
        [--train-days 40] [--test-days 100] [--steps 300] [--behaviour random]
        [--rooms-per-request 32] [--ablations] [--out ceiling.json]

The gap between the oracle and a policy has two parts: what the observation
cannot tell (noise in the observed content, hidden tastes) and what a model
fails to learn. This script measures the first.

* **Training days** (seeds 1000...), the first ``--steps`` requests of each,
  acted by a behaviour policy (``random``: a uniform live room; ``past``: the
  past platform's recommender, :func:`liveenv.past.platform_choice`, a softmax
  of the rooms' true appeal; ``platform``:
  :class:`agents.logs.behaviour.PlatformPolicy`). For every (request, live room)
  pair (``--rooms-per-request`` live rooms drawn per request) it keeps a feature
  vector of everything the observation holds that bears on that room
  (:func:`pair_matrix`): the user's features, the time, the history summary
  (length, mean feedback, recency, taste and last clicked content), the room's
  observed content and pooled embeddings, its statistics, the cross features of
  :mod:`policies.cascade.features` (content match with the history taste and the
  last click, best match with any history item, share and minutes of the
  history on this room's streamer, followed), and the streamer's identity as a
  target encoding learned on the training days (the mean centred label of the
  streamer's rooms there, out of fold on the training days themselves). The
  label is privileged: the room's true expected utility under the env's reward
  weights (:meth:`liveenv.env.LiveStreamEnv.oracle_utilities`), centred on the
  mean of the request's live rooms (only the ranking within a request matters).
* A flexible model, sklearn's ``HistGradientBoostingRegressor``, is fitted to
  the labels.
* **Unseen days** (seeds 100...), the first ``--steps`` requests: each chooser
  acts on its own day: the fitted model (argmax of its prediction among the
  live rooms), the oracle, random and the ``popular`` baseline. A day's score
  is the mean true expected utility of the chosen rooms (random: the mean over
  the live rooms, its expectation); normalised per day
  ``(policy - random) / (oracle - random)``, mean and 95 % t interval over days.
  The fitted model (and, with ``--ablations``, models fitted without a feature
  group) are also scored on the random chooser's days, request by request on
  the same states, normalised by the best room of those states: the cheap
  paired comparison the ablation table uses.

The first reset of a process with ``users.past_days > 0`` builds the world's
past once (tens of seconds).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from liveenv.config import EnvConfig
from liveenv.env import LiveStreamEnv
from liveenv.presets import make_config
from liveenv.world import ROOM_STAT_COLUMNS
from policies.base import as_batch
from policies.cascade.features import CROSS, HISTORY_SCALARS, pair_features
from policies.registry import make_baseline

# ----- features ---------------------------------------------------------------------
HISTORY_CROSS = tuple(c for c in CROSS if c != "followed")


def feature_names(user_dim: int, time_dim: int, o: int, privileged: bool = False) -> list[str]:
    """Column names of :func:`pair_matrix` (the last is the streamer target encoding)."""
    return [
        *(f"user_{i}" for i in range(user_dim)),
        *(f"time_{i}" for i in range(time_dim)),
        *(f"hist_{n}" for n in HISTORY_SCALARS),
        *(f"stat_{n}" for n in ROOM_STAT_COLUMNS),
        *(f"cross_{n}" for n in CROSS),
        *(f"taste_{i}" for i in range(o)),
        *(f"last_{i}" for i in range(o)),
        *(f"content_{i}" for i in range(o)),
        *(f"pooled_{i}" for i in range(o)),
        *(["privileged_appeal"] if privileged else []),
        "streamer_prior",
    ]


#: feature groups an ablation drops (by column-name prefix or name)
GROUPS: dict[str, Callable[[str], bool]] = {
    "history": lambda n: (
        n.startswith(("hist_", "taste_", "last_")) or n.removeprefix("cross_") in HISTORY_CROSS
    ),
    "content": lambda n: (
        n.startswith(("content_", "pooled_", "taste_", "last_"))
        or n.startswith("cross_cos")
        or n == "cross_max_cos_history"
    ),
    "streamer_id": lambda n: n == "streamer_prior",
    "room_stats": lambda n: n.startswith("stat_"),
    "user_time": lambda n: n.startswith(("user_", "time_")),
}


def pair_matrix(
    obs: dict[str, np.ndarray], env: LiveStreamEnv | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_live, D - 1)`` features of every live room of one observation (without
    the streamer encoding) and ``(n_live,)`` their streamer ids. With ``env``, a
    privileged last column: the rooms' true appeal to the user (a diagnostic, not
    part of the observation)."""
    b = as_batch(obs)
    f = pair_features(b)
    x = f.ranker_input(None, raw_embeddings=True)[0]  # (R, D - 1)
    live = np.flatnonzero(f.mask[0])
    x = x[live]
    if env is not None:
        x = np.concatenate([x, true_appeal(env)[:, None]], axis=1)
    return x, np.asarray(b["room_streamer"][0])[live]


def true_appeal(env: LiveStreamEnv) -> np.ndarray:
    """Privileged ``(n_live,)``: the user's hidden interest (less boredom) against the
    rooms' latent content, plus the room's appeal bias (what
    :func:`liveenv.past.platform_choice` ranks by)."""
    w = env.world
    slots, rt = w.table_slots, w.rooms.t
    j = w.tick % w.rooms.ring
    user = env._user_id
    vec = w.users.interest[user] - w.cfg.response.boredom_weight * w.users.boredom[user]
    return (rt.content[slots, j] @ vec + rt.bias[slots, j]).astype(np.float32)


@dataclass
class StreamerPrior:
    """Target encoding of the streamer's identity: shrunk mean centred label."""

    sums: dict[int, float] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    shrink: float = 20.0

    @classmethod
    def fit(cls, streamers: np.ndarray, y: np.ndarray, shrink: float = 20.0) -> StreamerPrior:
        ids, inv = np.unique(streamers, return_inverse=True)
        s = np.bincount(inv, weights=y, minlength=len(ids))
        c = np.bincount(inv, minlength=len(ids))
        return cls(
            dict(zip(ids.tolist(), s.tolist(), strict=True)),
            dict(zip(ids.tolist(), c.tolist(), strict=True)),
            shrink,
        )

    def __call__(self, streamers: np.ndarray) -> np.ndarray:
        s = np.array([self.sums.get(int(k), 0.0) for k in streamers])
        c = np.array([self.counts.get(int(k), 0) for k in streamers])
        return (s / (c + self.shrink)).astype(np.float32)


# ----- training data ----------------------------------------------------------------
@dataclass
class Pairs:
    x: np.ndarray  # (N, D - 1) float32
    streamer: np.ndarray  # (N,)
    y: np.ndarray  # (N,) centred true utility
    request: np.ndarray  # (N,) request index
    day: np.ndarray  # (N,) day index


def behaviour_fn(name: str, seed: int) -> Callable[[dict, LiveStreamEnv], int]:
    rng = np.random.default_rng(seed)
    if name == "random":
        return lambda obs, env: int(rng.integers(env.world.n_live))
    if name == "past":  # the past platform's recommender: softmax of the true appeal
        from liveenv.past import platform_choice

        return lambda obs, env: int(
            platform_choice(
                env.world, np.array([env._user_id]), rng, env.config.users.past_sharpness
            )[0]
        )
    from agents.logs.behaviour import resolve_policy, split_action

    fn, _ = resolve_policy(name, seed=seed)
    return lambda obs, env: int(np.asarray(split_action(fn(obs, env))[0]).reshape(-1)[0])


def collect(
    cfg: EnvConfig,
    seeds: Sequence[int],
    steps: int,
    behaviour: str,
    rooms_per_request: int,
    privileged: bool = False,
) -> Pairs:
    """(request, live room) features and centred true utilities on ``seeds``."""
    env = LiveStreamEnv(cfg)
    xs, ss, ys, rs, ds = [], [], [], [], []
    req = 0
    for d, seed in enumerate(seeds):
        obs, _ = env.reset(seed=seed)
        act = behaviour_fn(behaviour, seed)
        rng = np.random.default_rng(seed + 7)
        for _ in range(steps):
            x, streamer = pair_matrix(obs, env if privileged else None)
            util = env.oracle_utilities()[: len(x)]
            keep = np.arange(len(x))
            if rooms_per_request and len(x) > rooms_per_request:
                keep = rng.choice(len(x), rooms_per_request, replace=False)
            xs.append(x[keep])
            ss.append(streamer[keep])
            ys.append((util - util.mean())[keep].astype(np.float32))
            rs.append(np.full(len(keep), req))
            ds.append(np.full(len(keep), d))
            req += 1
            obs, *_ = env.step(act(obs, env))
    return Pairs(*(np.concatenate(v) for v in (xs, ss, ys, rs, ds)))


# ----- the model --------------------------------------------------------------------
@dataclass
class Ceiling:
    """A fitted regressor of the centred true utility on the observation's features."""

    model: HistGradientBoostingRegressor
    prior: StreamerPrior
    keep: np.ndarray  # (D,) bool: the columns it reads
    names: list[str]

    @property
    def privileged(self) -> bool:
        return "privileged_appeal" in self.names

    def scores(self, x: np.ndarray, streamer: np.ndarray) -> np.ndarray:
        full = np.concatenate([x, self.prior(streamer)[:, None]], axis=1)
        return self.model.predict(full[:, self.keep])


def fit(
    data: Pairs, names: list[str], drop: Sequence[str] = (), max_iter: int = 300, seed: int = 0
) -> Ceiling:
    """Fit the regressor (without the feature groups ``drop``); the streamer
    encoding of the training rows is out of fold (two folds by day parity)."""
    enc = np.zeros(len(data.y), np.float32)
    for fold in (0, 1):
        inside = data.day % 2 == fold
        p = StreamerPrior.fit(data.streamer[~inside], data.y[~inside])
        enc[inside] = p(data.streamer[inside])
    full = np.concatenate([data.x, enc[:, None]], axis=1)
    keep = np.array([not any(GROUPS[g](n) for g in drop) for n in names])
    model = HistGradientBoostingRegressor(
        max_iter=max_iter,
        learning_rate=0.1,
        max_leaf_nodes=63,
        min_samples_leaf=50,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        random_state=seed,
    )
    model.fit(full[:, keep], data.y)
    return Ceiling(model, StreamerPrior.fit(data.streamer, data.y), keep, names)


def in_sample(c: Ceiling, data: Pairs) -> dict[str, float]:
    """On the training pairs: mean label of the model's argmax per request vs the
    best and a uniform room (the sampled rooms only), normalised."""
    enc = c.prior(data.streamer)  # in-sample encoding: an optimistic check
    pred = c.model.predict(np.concatenate([data.x, enc[:, None]], axis=1)[:, c.keep])
    order = np.lexsort((-pred, data.request))
    first = np.ones(len(order), bool)
    first[1:] = data.request[order][1:] != data.request[order][:-1]
    chosen = data.y[order][first]
    n = np.bincount(data.request)
    n = n[n > 0]
    best = np.maximum.reduceat(data.y[order], np.flatnonzero(first))
    rand = np.add.reduceat(data.y[order], np.flatnonzero(first)) / n
    return {
        "model": float(chosen.mean()),
        "oracle": float(best.mean()),
        "random": float(rand.mean()),
        "normalised": float((chosen.mean() - rand.mean()) / (best.mean() - rand.mean())),
    }


# ----- unseen days ------------------------------------------------------------------
def play_day(
    cfg: EnvConfig,
    env: LiveStreamEnv,
    seed: int,
    steps: int,
    chooser: str,
    model: Ceiling | None,
    also: dict[str, Ceiling] | None = None,
) -> dict[str, float]:
    """One unseen day acted by ``chooser``; the day's mean expected utility of its
    choices (and of each model in ``also`` on the same states, without acting)."""
    obs, _ = env.reset(seed=seed)
    popular = make_baseline("popular") if chooser == "popular" else None
    rng = np.random.default_rng(seed + 13)
    got: dict[str, list[float]] = {chooser: []}
    for name in also or {}:
        got[name] = []
    for _ in range(steps):
        n = env.world.n_live
        util = env.oracle_utilities()[:n]
        if chooser == "oracle":
            slot = int(np.argmax(util))
            got[chooser].append(float(util[slot]))
        elif chooser == "random":
            slot = int(rng.integers(n))
            got[chooser].append(float(util.mean()))
            got.setdefault("best", []).append(float(util.max()))
        elif chooser == "popular":
            slot = int(popular.act(obs).action(0))
            got[chooser].append(float(util[slot]))
        else:
            x, streamer = pair_matrix(obs, env if model.privileged else None)
            slot = int(np.argmax(model.scores(x, streamer)))
            got[chooser].append(float(util[slot]))
        if also:
            first = next(iter(also.values()))
            x, streamer = pair_matrix(obs, env if first.privileged else None)
            for name, m in also.items():
                got[name].append(float(util[int(np.argmax(m.scores(x, streamer)))]))
        obs, *_ = env.step(slot)
    return {k: float(np.mean(v)) for k, v in got.items()}


def t_interval(v: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t interval."""
    from scipy import stats

    v = np.asarray(v, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - h, m + h


def evaluate(
    cfg: EnvConfig,
    seeds: Sequence[int],
    steps: int,
    model: Ceiling,
    ablations: dict[str, Ceiling] | None = None,
    progress: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Per-day expected returns of each chooser on its own days, and of the
    models on the random chooser's days."""
    env = LiveStreamEnv(cfg)
    own: dict[str, list[float]] = {k: [] for k in ("oracle", "random", "popular", "fitted")}
    on_random: dict[str, list[float]] = {}
    also = {"fitted": model, **(ablations or {})}
    t0 = time.perf_counter()
    for i, seed in enumerate(seeds):
        r = play_day(cfg, env, seed, steps, "random", None, also)
        own["random"].append(r["random"])
        on_random.setdefault("oracle", []).append(r["best"])
        for k in also:
            on_random.setdefault(k, []).append(r[k])
        for chooser in ("oracle", "popular", "fitted"):
            own[chooser].append(play_day(cfg, env, seed, steps, chooser, model)[chooser])
        if progress and (i + 1) % 10 == 0:
            print(
                f"  {i + 1}/{len(seeds)} unseen days, {time.perf_counter() - t0:.0f} s", flush=True
            )
    return {
        "own": {k: np.array(v) for k, v in own.items()},
        "on_random": {k: np.array(v) for k, v in on_random.items()},
    }


def normalised(v: np.ndarray, oracle: np.ndarray, rand: np.ndarray) -> np.ndarray:
    return (v - rand) / (oracle - rand)


def summarise(ev: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    own, on_r = ev["own"], ev["on_random"]
    o, r = own["oracle"], own["random"]
    out: dict[str, dict[str, float]] = {}
    for k, v in own.items():
        m, lo, hi = t_interval(normalised(v, o, r))
        out[k] = {
            "expected_return": float(v.mean()),
            "normalised": m,
            "lo": lo,
            "hi": hi,
            "share": float(np.mean(v / o)),  # policy / oracle, as prior_ceiling.py
        }
    for k, v in on_r.items():  # normalised by the best room of the same states
        m, lo, hi = t_interval(normalised(v, on_r["oracle"], r))
        out[f"{k} (on random's days)"] = {
            "expected_return": float(v.mean()),
            "normalised": m,
            "lo": lo,
            "hi": hi,
            "share": float(np.mean(v / on_r["oracle"])),
        }
    return out


def run(
    cfg: EnvConfig,
    train_days: int,
    test_days: int,
    steps: int,
    behaviour: str = "random",
    rooms_per_request: int = 32,
    ablations: Sequence[str] = (),
    max_iter: int = 300,
    progress: bool = False,
    privileged: bool = False,
) -> dict:
    """The whole measurement; returns the figures (see :func:`main`)."""
    t0 = time.perf_counter()
    data = collect(
        cfg, range(1000, 1000 + train_days), steps, behaviour, rooms_per_request, privileged
    )
    t_collect = time.perf_counter() - t0
    o = cfg.obs_dim
    probe = LiveStreamEnv(cfg).observation_space
    names = feature_names(probe["user"].shape[0], probe["time"].shape[0], o, privileged)
    assert len(names) == data.x.shape[1] + 1, (len(names), data.x.shape)
    model = fit(data, names, max_iter=max_iter)
    ablated = {f"fitted - {g}": fit(data, names, drop=(g,), max_iter=max_iter) for g in ablations}
    t_fit = time.perf_counter() - t0 - t_collect
    if progress:
        print(
            f"{len(data.y)} training pairs ({train_days} days x {steps} requests, {behaviour}); "
            f"collect {t_collect:.0f} s, fit {t_fit:.0f} s",
            flush=True,
        )
    train_fit = in_sample(model, data)
    ev = evaluate(cfg, range(100, 100 + test_days), steps, model, ablated, progress)
    return {
        "train_pairs": len(data.y),
        "train_requests": int(data.request.max() + 1),
        "in_sample": train_fit,
        "summary": summarise(ev),
        "per_day": {part: {k: v.tolist() for k, v in d.items()} for part, d in ev.items()},
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--overrides", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--train-days", type=int, default=40)
    ap.add_argument("--test-days", type=int, default=100)
    ap.add_argument("--steps", type=int, default=300, help="requests per day")
    ap.add_argument(
        "--behaviour",
        default="random",
        help="random, past (the past platform's softmax of the true appeal) or platform",
    )
    ap.add_argument("--rooms-per-request", type=int, default=32, help="0: all live rooms")
    ap.add_argument("--max-iter", type=int, default=300, help="boosting rounds")
    ap.add_argument(
        "--ablations",
        nargs="*",
        default=[],
        choices=sorted(GROUPS),
        help="feature groups to drop, one refit each",
    )
    ap.add_argument(
        "--privileged",
        action="store_true",
        help="diagnostic: add the rooms' true appeal to the user (hidden taste) as a feature",
    )
    ap.add_argument("--threads", type=int, default=1, help="OpenMP threads of the trees")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    over = {}
    for item in args.overrides:
        k, v = item.split("=", 1)
        try:
            over[k] = json.loads(v)
        except json.JSONDecodeError:
            over[k] = v
    cfg = make_config(args.preset, **over)
    # one thread: OpenMP's team spins when the cores are shared (x10 slower under load)
    with threadpool_limits(limits=args.threads):
        res = run(
            cfg,
            args.train_days,
            args.test_days,
            args.steps,
            args.behaviour,
            args.rooms_per_request,
            args.ablations,
            args.max_iter,
            progress=True,
            privileged=args.privileged,
        )
    res["args"] = vars(args)
    ins = res["in_sample"]
    print(
        f"in sample (training pairs): fitted {ins['normalised']:.3f} of the way from random "
        f"to the best sampled room"
    )
    print(
        f"\n{args.preset} {' '.join(args.overrides)}: {args.test_days} unseen days x "
        f"{args.steps} requests, {res['seconds']:.0f} s\n"
    )
    print(
        "| chooser | expected return | normalised (policy - random) / (oracle - random), "
        "95 % CI | share of the oracle |"
    )
    print("|---|---|---|---|")
    for k, s in res["summary"].items():
        print(
            f"| {k} | {s['expected_return']:.3f} | {s['normalised']:.3f} "
            f"[{s['lo']:.3f}, {s['hi']:.3f}] | {s['share']:.3f} |"
        )
    f = res["summary"]["fitted"]
    print(
        f"\nobservable ceiling: {f['normalised']:.3f} [{f['lo']:.3f}, {f['hi']:.3f}] of the "
        f"oracle (random 0, oracle 1), popular {res['summary']['popular']['normalised']:.3f}"
    )
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
