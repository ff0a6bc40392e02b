"""Train the cascade (two-tower retrieval + multi-task ranker) on interaction logs.

    python -m agents.train.cascade --logs /work/data/default-2d-platform --out runs/cascade/c.npz

Each log is one simulated world. Its rows become the observation keys the
behaviour policy saw (:func:`policies.cascade.features.obs_from_log`, history
rebuilt from earlier clicks), then the same features as at serving time. The
last ``val_share`` of every log's requests (in time) is held out.

1. (``--coldstart``) k-means over the demographics of the logs' warm users,
   then the cluster memory is replayed online through each log in time order
   (read before write, ``chunk_requests`` requests at a time), so the ranker
   trains on the group tastes it will see when serving; the memory as the
   last log leaves it becomes the policy's prior (``--coldstart-prior``): the
   platform is fixed by ``world_seed``, so it holds for the evaluation days.
2. Two-tower: in-batch softmax over the clicked rows of one log per batch,
   logQ-corrected, with the exact follow flag of every in-batch pair
   (follows only arise from the logged follow events).
3. Ranker: every exposure, clicked or not; per-head losses
   (:meth:`policies.cascade.ranker.MultiTaskRanker.loss`); the epoch with the
   best validation loss is kept.

Writes the policy (``.npz``, :meth:`policies.base.Policy.save`) and a JSON
report of the losses per epoch next to it. The logs' features:
:mod:`agents.train.cascade_data`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agents.logs import log_config
from agents.logs.reader import read_log_and_past, with_past
from agents.run.cliargs import parse
from agents.train.cascade_data import LogData, click_log_share, followed_pairs, load_log
from liveenv.atomic import atomic_write_bytes
from policies.cascade.coldstart import ClusterMemory, ColdStartConfig
from policies.cascade.features import index_log
from policies.cascade.policy import CascadePolicy
from policies.cascade.ranker import MultiTaskRanker, RankerConfig
from policies.cascade.retrieval import TwoTower, TwoTowerConfig

DEFAULT_LOG = "/work/data/default-2d-platform"


@dataclass
class TrainCascadeArgs:
    """Train the cascade on interaction logs (one world per log)."""

    logs: tuple[str, ...] = field(default=(DEFAULT_LOG,), metadata={"help": "log directories"})
    out: str = field(default="runs/cascade/cascade.npz", metadata={"help": "policy file to write"})
    coldstart: bool = field(default=False, metadata={"help": "add the cold-start cluster memory"})
    n_clusters: int = field(default=24, metadata={"help": "cold-start k-means clusters"})
    top_n: int = field(default=64, metadata={"help": "rooms kept by retrieval (0: all)"})
    raw_embeddings: bool = field(
        default=False,
        metadata={"help": "ranker also reads the raw embeddings (one projection per world_seed)"},
    )
    retrieval_feature: bool = field(
        default=False, metadata={"help": "ranker also reads the two-tower score"}
    )
    affinity: bool = field(
        default=True, metadata={"help": "two-tower content-affinity term (see TwoTowerConfig)"}
    )
    logq: bool = field(default=True, metadata={"help": "logQ correction of the in-batch softmax"})
    tower_epochs: int = field(
        default=2, metadata={"help": "two-tower epochs (best on validation kept)"}
    )
    ranker_epochs: int = field(
        default=5, metadata={"help": "ranker epochs (best on validation kept)"}
    )
    tower_batch: int = field(default=512, metadata={"help": "clicks per in-batch softmax"})
    batch_size: int = field(default=1024, metadata={"help": "exposures per ranker step"})
    lr: float = field(default=2e-3, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    hidden: int = field(default=256, metadata={"help": "ranker shared-bottom width"})
    val_share: float = field(default=0.1, metadata={"help": "last share of requests held out"})
    chunk_requests: int = field(default=64, metadata={"help": "cold-start replay granularity"})
    coldstart_prior: bool = field(
        default=True, metadata={"help": "serve from the memory the logs left (else start empty)"}
    )
    max_rows: int = field(default=0, metadata={"help": "rows per log at most (0: all)"})
    seed: int = field(default=0, metadata={"help": "seed of shuffling and initialisation"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    name: str = field(default="", metadata={"help": "policy name (default: cascade[_coldstart])"})

    def __post_init__(self) -> None:
        if not self.logs:
            raise ValueError("logs is empty: give at least one log directory")
        positive = (
            "tower_epochs",
            "ranker_epochs",
            "tower_batch",
            "batch_size",
            "hidden",
            "chunk_requests",
            "threads",
            "n_clusters",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: must be >= 1")
        if not 0 < self.val_share < 1:
            raise ValueError(f"val_share={self.val_share!r} is invalid: must be in (0, 1)")
        if self.lr <= 0 or self.weight_decay < 0 or self.top_n < 0 or self.max_rows < 0:
            raise ValueError(
                f"lr={self.lr} must be > 0; weight_decay={self.weight_decay}, "
                f"top_n={self.top_n}, max_rows={self.max_rows} must be >= 0"
            )


# ----- two-tower -------------------------------------------------------------------
def _tower_batches(
    data: list[LogData], val: bool, size: int, rng: np.random.Generator
) -> list[tuple[int, np.ndarray]]:
    batches = []
    for i, d in enumerate(data):
        clicked = np.flatnonzero((d.feedback[:, 0] > 0) & (d.val == val))
        clicked = rng.permutation(clicked)
        batches += [(i, clicked[lo : lo + size]) for lo in range(0, len(clicked) - 1, size)]
    return [batches[j] for j in rng.permutation(len(batches))]


def _tower_loss(model: TwoTower, d: LogData, rows: np.ndarray, log_q: np.ndarray) -> torch.Tensor:
    user = torch.from_numpy(d.pf.request.tower_input()[rows])
    rooms = torch.from_numpy(d.pf.rooms[rows, 0])
    logits = model.in_batch_logits(user, rooms, torch.from_numpy(followed_pairs(d, rows)))
    logits = logits - torch.from_numpy(log_q[rows])[None, :]  # logQ correction
    return F.cross_entropy(logits, torch.arange(len(rows)))


def train_tower(
    data: list[LogData], args: TrainCascadeArgs, history: dict[str, list[float]]
) -> TwoTower:
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    req = data[0].pf.request
    o = req.taste.shape[1]
    model = TwoTower(
        TwoTowerConfig(
            user_dim=req.tower_input().shape[1],
            room_dim=data[0].pf.rooms.shape[-1],
            affinity_dim=o if args.affinity else 0,
            taste_offset=req.scalars.shape[1],
        )
    )
    train_rows = [np.flatnonzero((d.feedback[:, 0] > 0) & ~d.val) for d in data]
    model.user_norm.fit(
        torch.from_numpy(
            np.concatenate(
                [d.pf.request.tower_input()[r] for d, r in zip(data, train_rows, strict=True)]
            )
        )
    )
    model.room_norm.fit(
        torch.from_numpy(
            np.concatenate([d.pf.rooms[r, 0] for d, r in zip(data, train_rows, strict=True)])
        )
    )
    log_q = {
        split: [click_log_share(d, split) * args.logq for d in data] for split in (False, True)
    }
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    for _ in range(args.tower_epochs):
        model.train()
        losses = []
        for i, rows in _tower_batches(data, False, args.tower_batch, rng):
            loss = _tower_loss(model, data[i], rows, log_q[False][i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val = [
                _tower_loss(model, data[i], rows, log_q[True][i]).item()
                for i, rows in _tower_batches(data, True, args.tower_batch, rng)
            ]
        history["tower_train"].append(float(np.mean(losses)))
        history["tower_val"].append(float(np.mean(val)) if val else float("nan"))
        if history["tower_val"][-1] <= min(history["tower_val"]):
            best = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best)
    return model.eval()


# ----- ranker ----------------------------------------------------------------------
@torch.no_grad()
def ranker_inputs(tower: TwoTower, d: LogData, args: TrainCascadeArgs) -> np.ndarray:
    """``(N, D)`` ranker inputs of a log's rows (with the retrieval score when asked)."""
    score = None
    if args.retrieval_feature:
        user = torch.from_numpy(d.pf.request.tower_input())
        rooms, followed = torch.from_numpy(d.pf.rooms), torch.from_numpy(d.pf.followed)
        score = tower(user, rooms, followed).numpy()
    return d.pf.ranker_input(score, args.raw_embeddings)[:, 0]


def ranker_val_loss(
    model: MultiTaskRanker, x: torch.Tensor, y: torch.Tensor, batch: int = 8192
) -> dict[str, float]:
    """Row-weighted mean of each head's validation loss."""
    model.eval()
    sums: dict[str, float] = {}
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            part = model.loss(x[lo : lo + batch], y[lo : lo + batch])
            n = len(x[lo : lo + batch])
            for k, v in part.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
    return {k: v / max(len(x), 1) for k, v in sums.items()}


def train_ranker(
    x: np.ndarray,
    y: np.ndarray,
    val: np.ndarray,
    args: TrainCascadeArgs,
    history: dict[str, list[float]],
) -> MultiTaskRanker:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed + 1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    tr, va = np.flatnonzero(~val), np.flatnonzero(val)
    gifts = y[tr, 5][y[tr, 5] > 0]
    cfg = RankerConfig(
        in_dim=x.shape[1],
        hidden=(args.hidden, args.hidden // 2),
        raw_embeddings=args.raw_embeddings,
        retrieval_feature=args.retrieval_feature,
        gift_value=float(gifts.mean()) if len(gifts) else 1.0,
    )
    model = MultiTaskRanker(cfg)
    model.norm.fit(xt[tr])
    model.init_bias(yt[tr])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.ranker_epochs * int(np.ceil(len(tr) / args.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(steps, 1))
    best, best_state = ranker_val_loss(model, xt[va], yt[va])["total"], None
    history["ranker_val"].append(best)
    for _ in range(args.ranker_epochs):
        model.train()
        losses = []
        tr = rng.permutation(tr)
        for lo in range(0, len(tr), args.batch_size):
            rows = torch.from_numpy(tr[lo : lo + args.batch_size])
            loss = model.loss(xt[rows], yt[rows])["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        val_loss = ranker_val_loss(model, xt[va], yt[va])
        history["ranker_train"].append(float(np.mean(losses)))
        history["ranker_val"].append(val_loss["total"])
        for k, v in val_loss.items():
            history.setdefault(f"ranker_val_{k}", []).append(v)
        if val_loss["total"] < best:
            best = val_loss["total"]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


# ----- the whole run ----------------------------------------------------------------
@dataclass
class TrainResult:
    policy: CascadePolicy
    history: dict[str, list[float]]
    rows: int
    wall_s: float
    timings: dict[str, float]


def train_cascade(args: TrainCascadeArgs) -> TrainResult:
    """Train the cascade on ``args.logs``; return the policy and the loss history."""
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cfgs = [log_config(p) for p in args.logs]
    shapes = {(c.obs_dim, c.users.history_len) for c in cfgs}
    if len(shapes) != 1:
        raise ValueError(f"logs disagree on (obs_dim, history_len): {sorted(shapes)}")
    memory = None
    if args.coldstart:
        memory = fit_memory(args, cfgs[0].obs_dim)
    data = [load_log(p, args, memory) for p in args.logs]
    timings = {"features_s": time.perf_counter() - t0}
    history: dict[str, list[float]] = {
        k: [] for k in ("tower_train", "tower_val", "ranker_train", "ranker_val")
    }
    tower = train_tower(data, args, history)
    timings["tower_s"] = time.perf_counter() - t0 - timings["features_s"]
    x = np.concatenate([ranker_inputs(tower, d, args) for d in data])
    y = np.concatenate([d.feedback for d in data])
    val = np.concatenate([d.val for d in data])
    ranker = train_ranker(x, y, val, args, history)
    timings["ranker_s"] = time.perf_counter() - t0 - timings["features_s"] - timings["tower_s"]
    policy = CascadePolicy(
        tower=tower.config,
        ranker=ranker.config,
        obs_dim=cfgs[0].obs_dim,
        top_n=args.top_n,
        coldstart=None if memory is None else memory.config,
        reward_weights=cfgs[0].weight_vector.tolist(),
        name=args.name or ("cascade_coldstart" if args.coldstart else "cascade"),
    )
    policy.tower.load_state_dict(tower.state_dict())
    policy.ranker.load_state_dict(ranker.state_dict())
    if memory is not None:
        policy.set_state({**policy.get_state(), "memory.centroids": memory.centroids})
        if args.coldstart_prior:  # the memory as the last log's replay left it
            assert policy.memory is not None
            policy.memory.set_prior(memory.values, memory.counts)
            policy.memory.reset()
    return TrainResult(policy, history, len(y), time.perf_counter() - t0, timings)


def fit_memory(args: TrainCascadeArgs, obs_dim: int) -> ClusterMemory:
    """k-means over the demographics of the warm users (with an earlier click) of every log."""
    users = []
    for path in args.logs:
        log, past = read_log_and_past(
            path, columns=["episode", "request_id", "user_id", "is_click", "user_feat"]
        )
        hist_log, n_past = with_past(log, past)
        warm = index_log(hist_log).count[n_past:] > 0
        _, first = np.unique(log["user_id"][warm], return_index=True)
        users.append(log["user_feat"][warm][first])
    return ClusterMemory.fit(
        ColdStartConfig(n_clusters=args.n_clusters, seed=args.seed), np.concatenate(users), obs_dim
    )


def save_result(result: TrainResult, args: TrainCascadeArgs) -> tuple[Path, Path]:
    """Write the policy and its training report (JSON) next to it."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.policy.save(out)
    report: dict[str, Any] = {
        "args": asdict(args),
        "rows": result.rows,
        "wall_s": result.wall_s,
        "timings": result.timings,
        "history": result.history,
    }
    path = out.with_suffix(".train.json")
    atomic_write_bytes(path, json.dumps(report, indent=2).encode())
    return out, path


def main(argv: list[str] | None = None) -> TrainResult:
    args = parse(TrainCascadeArgs, argv, prog="python -m agents.train.cascade")
    result = train_cascade(args)
    out, report = save_result(result, args)
    h = result.history
    print(f"rows {result.rows}, wall {result.wall_s:.1f} s ({result.timings})")
    print(f"tower val loss per epoch: {[round(v, 4) for v in h['tower_val']]}")
    print(f"ranker val loss (before, per epoch): {[round(v, 4) for v in h['ranker_val']]}")
    print(f"wrote {out} and {report}")
    return result


if __name__ == "__main__":
    main()
