"""Train the multi-objective reward model on an interaction log and report calibration.

    python -m agents.train.reward --log /work/data/default-2d-platform --out runs/rm

Every logged exposure is one training row, clicked or not: the observation side
(user features, the clicked history before the request, time) comes from
:func:`policies.onelive.features.history_from_log` (the one mirror of the
observation's history), the room side from the row's observed room features,
the targets from its feedback (watch ms -> minutes, gift price as value, zeros
on a swipe), in :data:`liveenv.objectives.OBJECTIVES` units. The last
``valid_frac`` of the log's time is held out. Towers train on their own losses;
the fusion tower on the weighted sum of the per-objective losses with weights
drawn around ``--weights`` per row. The state with the best validation loss is
kept.

Calibration (held-out rows, per objective, towers and fusion at ``--weights``):
rows are cut into ``n_bins`` equal-count bins of the prediction; each bin's mean
prediction against its observed mean; ECE = sum over bins of
``n_b / N * |pred_b - obs_b|`` (objective units), and relative ECE = ECE / the
observed mean.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from agents.align.weights import parse_weights
from agents.evaluate.tables import markdown_table, write_table
from agents.logs.reader import read_log_and_past, with_past
from agents.progress import progress_bar
from agents.train.seeding import seed_globals, torch_generator
from liveenv.atomic import atomic_write
from liveenv.config import atomic_write_text
from liveenv.objectives import N_OBJECTIVES, OBJECTIVES
from liveenv.rhythm import time_features
from policies.onelive.features import feedback_vectors_from_log, history_from_log
from policies.reward_model import (
    CONTEXT_KEYS,
    OBJECTIVE_KIND,
    RewardModel,
    RewardModelConfig,
    slot_features,
)

LOG_COLUMNS = (
    "episode",
    "request_id",
    "user_id",
    "streamer_id",
    "timestamp_ms",
    "is_click",
    "watch_time_ms",
    "like",
    "comment",
    "follow",
    "gift_price",
    "followed",
    "content_emb",
    "pooled_emb",
    "room_stats",
    "user_feat",
)


@dataclass
class RewardArgs:
    """Train the multi-objective reward model on a log."""

    log: str = field(metadata={"help": "interaction log directory (agents.logs)"})
    out: str = field(default="runs/reward", metadata={"help": "output folder"})
    weights: str | None = field(
        default=None,
        metadata={"help": "reward weights: NAME=VALUE,... or 6 numbers or a .json/.yaml file"},
    )
    history_len: int = field(default=20, metadata={"help": "history events per request"})
    hidden: int = field(default=64, metadata={"help": "width of each objective tower"})
    n_layers: int = field(default=2, metadata={"help": "layers of each objective tower"})
    fusion_hidden: int = field(default=64, metadata={"help": "width of the fusion tower"})
    weight_jitter: float = field(
        default=4.0, metadata={"help": "fusion training weights drawn from w*exp(U(-log j, log j))"}
    )
    epochs: int = field(default=4, metadata={"help": "passes over the training rows"})
    batch_size: int = field(default=1024, metadata={"help": "rows per step"})
    lr: float = field(default=2e-3, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-5, metadata={"help": "AdamW weight decay"})
    valid_frac: float = field(default=0.1, metadata={"help": "held-out share of log time"})
    max_rows: int = field(default=0, metadata={"help": "use at most this many rows (0: all)"})
    n_bins: int = field(default=10, metadata={"help": "calibration bins (equal counts)"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation and shuffling"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    figure: bool = field(default=True, metadata={"help": "draw the reliability figure"})

    def __post_init__(self) -> None:
        for name in (
            "history_len",
            "hidden",
            "n_layers",
            "fusion_hidden",
            "epochs",
            "batch_size",
            "n_bins",
            "threads",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RewardArgs.{name}={getattr(self, name)!r}: must be >= 1")
        if not 0.0 < self.valid_frac < 0.9:
            raise ValueError(f"RewardArgs.valid_frac={self.valid_frac!r}: must be in (0, 0.9)")
        if self.max_rows < 0:
            raise ValueError(f"RewardArgs.max_rows={self.max_rows!r}: must be >= 0")
        if not self.lr > 0:
            raise ValueError(f"RewardArgs.lr={self.lr!r}: must be > 0")
        parse_weights(self.weights)  # refuse bad weights before any work


# ----- log -> model inputs ---------------------------------------------------------
class LoggedRows:
    """The training rows of a log: model inputs (``R = 1``) and targets."""

    def __init__(
        self,
        log: dict[str, np.ndarray],
        history_len: int,
        chunk: int = 50_000,
        past: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.log, self.history_len = log, int(history_len)
        self.targets = feedback_vectors_from_log(log).astype(np.float32)  # (N, 6)
        self.time_s = log["timestamp_ms"].astype(np.float64) / 1000.0
        self.rooms = np.concatenate(
            [log["content_emb"], log["pooled_emb"], log["room_stats"]], axis=1
        ).astype(np.float32)  # (N, 2o + S)
        n = len(self.targets)
        hist_log, n_past = with_past(log, past)  # histories start with the past's events
        head = {k: v[:n_past] for k, v in hist_log.items()}  # the past's rows
        self.events = {  # what a history event holds, per row of hist_log
            "streamer": hist_log["streamer_id"],
            "content": hist_log["content_emb"],
            "feedback": np.concatenate(
                [feedback_vectors_from_log(head).astype(np.float32), self.targets]
            ),
            "time_s": np.concatenate([head["timestamp_ms"] / 1000.0, self.time_s]),
        }
        # which rows form each request's history: computed once by the one mirror
        self.history_row = (
            np.concatenate(
                [
                    history_from_log(
                        hist_log, self.history_len, n_past + np.arange(i, min(i + chunk, n))
                    )["history_row"]
                    for i in range(0, n, chunk)
                ]
            )
            if n
            else np.zeros((0, self.history_len), np.int64)
        )

    def __len__(self) -> int:
        return len(self.targets)

    def history(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The ``history_*`` arrays of ``rows``, gathered as
        :func:`policies.onelive.features.history_from_log` lays them out."""
        hist_row = self.history_row[rows]  # (n, H), -1 padding
        valid = hist_row >= 0
        safe = np.maximum(hist_row, 0)
        ev = self.events
        age_h = (self.time_s[rows][:, None] - ev["time_s"][safe]) / 3600.0
        return {
            "user": self.log["user_feat"][rows].astype(np.float32),
            "time": time_features(self.time_s[rows]),
            "history_streamer": np.where(valid, ev["streamer"][safe], -1),
            "history_content": np.where(valid[..., None], ev["content"][safe], 0.0),
            "history_feedback": np.where(valid[..., None], ev["feedback"][safe], 0.0),
            "history_age": np.where(valid, np.log1p(np.maximum(age_h, 0.0)), 0.0),
            "history_mask": valid.astype(np.int8),
        }

    def context(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """The observation-side inputs of ``rows`` as tensors, one room slot each."""
        hist = self.history(rows)
        ctx = {k: hist[k] for k in CONTEXT_KEYS if k in hist}
        ctx["rooms"] = self.rooms[rows][:, None, :]
        ctx["room_followed"] = self.log["followed"][rows].astype(np.float32)[:, None]
        ctx["room_streamer"] = self.log["streamer_id"][rows].astype(np.int64)[:, None]
        return {
            k: torch.from_numpy(
                np.ascontiguousarray(v, dtype=np.int64 if "streamer" in k else np.float32)
            )
            for k, v in ctx.items()
        }

    def split_by_time(self, valid_frac: float) -> tuple[np.ndarray, np.ndarray]:
        cut = np.quantile(self.time_s, 1.0 - valid_frac)
        return np.flatnonzero(self.time_s < cut), np.flatnonzero(self.time_s >= cut)


def config_from_log(log: dict[str, np.ndarray], args: RewardArgs) -> RewardModelConfig:
    targets = feedback_vectors_from_log(log)
    means = np.maximum(targets.mean(0), 1e-6)
    events = np.maximum((targets > 0).sum(0), 1)
    values = np.where(
        [OBJECTIVE_KIND[k] == "valued" for k in OBJECTIVES], targets.sum(0) / events, 1.0
    )  # mean value of one event
    values = np.maximum(values, means)  # an event rate is at most 1
    return RewardModelConfig(
        user_dim=log["user_feat"].shape[1],
        obs_dim=log["content_emb"].shape[1],
        n_room_stats=log["room_stats"].shape[1],
        hidden=args.hidden,
        n_layers=args.n_layers,
        fusion_hidden=args.fusion_hidden,
        reward_weights=tuple(parse_weights(args.weights)),
        weight_jitter=args.weight_jitter,
        means=tuple(float(m) for m in means),
        event_values=tuple(float(v) for v in values),
    )


# ----- training ----------------------------------------------------------------------
def _jittered(base: torch.Tensor, n: int, jitter: float, gen: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, N_OBJECTIVES, generator=gen) * 2.0 - 1.0
    return base[None, :] * torch.exp(u * math.log(jitter))


def batch_loss(
    model: RewardModel, ctx: dict[str, torch.Tensor], y: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, per-objective tower loss (6,), fusion loss) of one batch, ``R = 1``."""
    out = model(ctx, weights)
    tower = model.losses(out.tower_eta[:, 0], y).mean(0)  # (6,)
    share = model.loss_shares(weights)  # (B, 6)
    fusion = (model.losses(out.fusion_eta[:, 0], y) * share).sum(-1).mean()
    return tower.sum() + fusion, tower.detach(), fusion.detach()


@torch.no_grad()
def predict(
    model: RewardModel,
    data: LoggedRows,
    rows: np.ndarray,
    batch: int = 4096,
    weights: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tower and fusion means ``(n, 6)`` of ``rows`` (fusion at ``weights``)."""
    model.eval()
    towers, fused = [], []
    for i in range(0, len(rows), batch):
        out = model(data.context(rows[i : i + batch]), weights)
        towers.append(model.means(out.tower_eta[:, 0]).numpy())
        fused.append(model.means(out.fusion_eta[:, 0]).numpy())
    model.train()
    return np.concatenate(towers), np.concatenate(fused)


@torch.no_grad()
def validation_loss(
    model: RewardModel, data: LoggedRows, rows: np.ndarray, batch: int = 4096
) -> tuple[np.ndarray, float]:
    """Mean per-objective tower loss (6,) and the fusion loss at the config weights."""
    model.eval()
    base = torch.tensor(model.config.reward_weights, dtype=torch.float32)
    tower, fusion, n = np.zeros(N_OBJECTIVES), 0.0, 0
    for i in range(0, len(rows), batch):
        r = rows[i : i + batch]
        y = torch.from_numpy(data.targets[r])
        _, t, f = batch_loss(model, data.context(r), y, base.expand(len(r), -1))
        tower += t.numpy() * len(r)
        fusion += float(f) * len(r)
        n += len(r)
    model.train()
    return tower / max(n, 1), fusion / max(n, 1)


def calibration(pred: np.ndarray, obs: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """One row per objective x equal-count bin: n, mean_pred, mean_obs."""
    rows = []
    for k, name in enumerate(OBJECTIVES):
        order = np.argsort(pred[:, k], kind="stable")
        for b, idx in enumerate(np.array_split(order, n_bins)):
            if len(idx):
                rows.append(
                    {
                        "objective": name,
                        "bin": b,
                        "n": len(idx),
                        "mean_pred": float(pred[idx, k].mean()),
                        "mean_obs": float(obs[idx, k].mean()),
                    }
                )
    return pd.DataFrame(rows)


def ece_table(cal: pd.DataFrame) -> pd.DataFrame:
    """ECE and relative ECE per objective from a :func:`calibration` table."""
    out = []
    for name, g in cal.groupby("objective", sort=False):
        w = g["n"] / g["n"].sum()
        ece = float((w * (g["mean_pred"] - g["mean_obs"]).abs()).sum())
        mean_obs = float((w * g["mean_obs"]).sum())
        mean_pred = float((w * g["mean_pred"]).sum())
        out.append(
            {
                "objective": name,
                "mean_obs": mean_obs,
                "mean_pred": mean_pred,
                "ece": ece,
                "relative_ece": ece / mean_obs if mean_obs > 0 else math.nan,
            }
        )
    return pd.DataFrame(out)


def train_reward_model(args: RewardArgs) -> Path:
    """Train on ``args.log``; write the model, calibration tables, figure and a
    Markdown summary under ``args.out``; return the model path."""
    torch.set_num_threads(args.threads)
    seed_globals(args.seed)
    t0 = time.perf_counter()
    log, past = read_log_and_past(args.log, LOG_COLUMNS)
    if args.max_rows and len(log["request_id"]) > args.max_rows:
        log = {k: v[: args.max_rows] for k, v in log.items()}  # the earliest rows (time order)
    data = LoggedRows(log, args.history_len, past=past)
    if len(data) < 100:
        raise ValueError(f"{args.log}: {len(data)} rows are too few to train a reward model")
    train, valid = data.split_by_time(args.valid_frac)
    gen = torch_generator(args.seed)
    model = RewardModel(config_from_log(log, args))
    model.fit_normaliser(slot_features(data.context(train[:20000]), model.config)[:, 0])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    base = torch.tensor(model.config.reward_weights, dtype=torch.float32)
    best, best_state, curve = math.inf, None, []
    steps = args.epochs * math.ceil(len(train) / args.batch_size)
    bar = progress_bar(total=steps, desc="reward model", enabled=args.progress, mininterval=1.0)
    for epoch in range(args.epochs):
        perm = train[torch.randperm(len(train), generator=gen).numpy()]
        run = np.zeros(N_OBJECTIVES)
        for i in range(0, len(perm), args.batch_size):
            rows = perm[i : i + args.batch_size]
            w = _jittered(base, len(rows), model.config.weight_jitter, gen)
            loss, tower, _ = batch_loss(
                model, data.context(rows), torch.from_numpy(data.targets[rows]), w
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run += tower.numpy() * len(rows)
            bar.update(1)
        v_tower, v_fusion = validation_loss(model, data, valid)
        total = float(v_tower.sum() + v_fusion)
        curve.append(
            {
                "epoch": epoch + 1,
                "train_tower": float(run.sum() / len(perm)),
                "valid_tower": float(v_tower.sum()),
                "valid_fusion": v_fusion,
                **{f"valid_{k}": float(v) for k, v in zip(OBJECTIVES, v_tower, strict=True)},
            }
        )
        bar.set_postfix(valid=f"{total:.4f}")
        if total < best:
            best, best_state = total, {k: v.clone() for k, v in model.state_dict().items()}
    bar.close()
    model.load_state_dict(best_state)
    return _write_outputs(model, data, valid, args, curve, time.perf_counter() - t0)


def _write_outputs(
    model: RewardModel,
    data: LoggedRows,
    valid: np.ndarray,
    args: RewardArgs,
    curve: list[dict[str, Any]],
    seconds: float,
) -> Path:
    out = Path(args.out)
    towers, fused = predict(model, data, valid)
    obs = data.targets[valid]
    cal = pd.concat(
        [
            calibration(towers, obs, args.n_bins).assign(head="tower"),
            calibration(fused, obs, args.n_bins).assign(head="fusion"),
        ]
    )
    ece = pd.concat([ece_table(cal[cal["head"] == h]).assign(head=h) for h in ("tower", "fusion")])
    write_table(cal, out / "calibration.csv")
    write_table(ece, out / "calibration_ece.csv")
    write_table(pd.DataFrame(curve), out / "curve.csv")
    if args.figure:
        reliability_figure(cal, out / "reliability.png")
    meta = {
        "log": str(args.log),
        "rows": len(data),
        "valid_rows": len(valid),
        "seconds": seconds,
        "ece": ece.to_dict("records"),
        "curve": curve,
    }
    path = model.save(out / "reward_model.pt", meta)
    atomic_write_text(out / "calibration.md", calibration_markdown(ece, len(valid), seconds))
    return path


def calibration_markdown(ece: pd.DataFrame, n_valid: int, seconds: float) -> str:
    rows = [
        [
            r.objective,
            r.head,
            f"{r.mean_obs:.4g}",
            f"{r.mean_pred:.4g}",
            f"{r.ece:.4g}",
            f"{r.relative_ece:.3f}",
        ]
        for r in ece.itertuples()
    ]
    head = ["objective", "head", "observed mean", "predicted mean", "ECE", "relative ECE"]
    return (
        f"# Reward model calibration\n\n{n_valid} held-out rows (last share of log time); "
        f"training took {seconds:.0f} s.\n\n" + markdown_table(head, rows) + "\n"
    )


def reliability_figure(cal: pd.DataFrame, path: Path) -> Path:
    """Predicted vs observed mean per bin, one panel per objective (log-log axes)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 2.4))
    for i, name in enumerate(OBJECTIVES):
        ax = fig.add_subplot(1, N_OBJECTIVES, i + 1)
        for head, g in cal[cal["objective"] == name].groupby("head"):
            ax.plot(g["mean_pred"], g["mean_obs"], "o-", ms=3, lw=1, label=head)
        lim = cal.loc[cal["objective"] == name, ["mean_pred", "mean_obs"]].to_numpy()
        lo, hi = max(float(lim[lim > 0].min(initial=1e-6)), 1e-6), float(lim.max(initial=1.0))
        ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
        ax.set(xscale="log", yscale="log", title=name)
        ax.tick_params(labelsize=6)
    fig.axes[0].legend(fontsize=6)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.12, top=0.88, wspace=0.35)
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110))


def main(argv: list[str] | None = None) -> Path:
    from agents.run.cliargs import parse

    args = parse(RewardArgs, argv, prog="python -m agents.train.reward")
    path = train_reward_model(args)
    print(f"wrote {path}")
    print((Path(args.out) / "calibration.md").read_text())
    return path


if __name__ == "__main__":
    main()
