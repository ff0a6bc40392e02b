"""Dynamic vs static semantic IDs per preset: diagnostics and a held-out retrieval test.

    python -m experiments.sid_experiments --presets fast_drift no_drift --out runs/sid

For each preset, one world (one seed) is simulated in two phases:

1. **Training log**: ``train_hours`` under the "platform" behaviour policy, logged to
   ``<out>/<preset>/log``. A dynamic and a static :class:`SIDTokenizer` (same config
   but the mode) are fitted on it.
2. **Held-out hours**: the same world goes on for ``eval_hours`` with *uniformly random*
   exposure (so which room a user was shown says nothing about the user), while one
   :class:`LiveSIDTracker` per variant refreshes the SID of every live room each 30-s
   tick. Variants: ``dynamic`` (the tracker's default, hysteresis ``--hysteresis``),
   ``plain`` (dynamic, nearest code every tick, no hysteresis; left out when
   ``--hysteresis 0``), ``static`` (one SID per streamer) and ``frozen`` (dynamic, but a
   room keeps the SID it had when first seen).

Retrieval test (per mode, held-out hours only). The room is represented by its SID
*at the time* only; two SID-level scores of a (user, room) pair:

* ``code``: the user tower's embedding dotted with the SID's codebook reconstruction
  (sum of the chosen centroids) - "the user's nearest code";
* ``history``: sum over the user's last ``history_len`` clicked rooms of the number of
  leading SID tokens they share with the room, the SIDs of past clicks being those at
  the time of the click (from the training log via ``encode_log``, then the trackers;
  the training-log part is nearest-code, without hysteresis, for every dynamic variant).

Reported: ``auc``, the ROC AUC of the score for "the user clicks the shown room" over
all held-out impressions (random exposure, so this is who engages with the room given
its SID now), and ``recall@K`` of the clicked room among all rooms of the room table at
the time (ties broken at random in expectation), with paired bootstrap 95 % intervals
of ``dynamic`` minus each other variant. Diagnostics per variant from the
trackers: codebook utilisation per level, mean collision rate among live rooms
(collisions are served by the live index mapping a SID to all its rooms), churn
(distinct SIDs per room over its observed lifetime, and changes per room-hour),
reconstruction error of the held-out room embeddings, and the mean id-side gate.
The scores, recalls, diagnostics and intervals: :mod:`experiments.sid_retrieval`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.evaluate.tables import markdown_table
from agents.logs import LogRecorder, make_log_env, read_log_arrays, resolve_policy
from agents.logs.behaviour import split_action
from agents.run import cliargs
from experiments.sid_retrieval import (
    ModeRun,
    mode_results,
    paired_bootstrap,
    score_request,
    seed_histories,
)
from liveenv.atomic import atomic_write_bytes
from policies.tokenizer import LiveSIDTracker, SIDTokenizer, SIDTokenizerConfig
from policies.tokenizer.tower import pool_history
from policies.tokenizer.tracker import DEFAULT_HYSTERESIS

#: dynamic: refreshed every tick (with hysteresis); plain: refreshed every tick, nearest
#: code; static: one SID per streamer; frozen: the dynamic tokenizer, but each room keeps
#: the SID it had when first seen (no refresh).
VARIANTS = ("dynamic", "plain", "static", "frozen")
#: A click followed by at least this much watching counts as a long view.
LONG_VIEW_S = 60.0
PRESETS = ("default", "no_drift", "fast_drift", "short_lifecycle", "cold_start")


@dataclass
class SIDExperimentArgs:
    """Dynamic vs static SIDs per preset: churn, collisions, held-out retrieval."""

    presets: tuple[str, ...] = field(default=PRESETS, metadata={"help": "presets to run"})
    train_hours: float = field(default=18.0, metadata={"help": "logged hours to fit on"})
    eval_hours: float = field(default=2.0, metadata={"help": "held-out hours after them"})
    seed: int = field(default=0, metadata={"help": "world, policy and tokenizer seed"})
    n_users: int | None = field(default=None, metadata={"help": "override users.n_users"})
    n_streamers: int | None = field(
        default=None, metadata={"help": "override streamers.n_streamers"}
    )
    codebook_sizes: tuple[int, ...] = field(
        default=(32, 32, 32), metadata={"help": "residual k-means codebook sizes"}
    )
    epochs: int = field(default=4, metadata={"help": "tower training epochs"})
    history_len: int = field(default=20, metadata={"help": "past clicks in the history score"})
    k: int = field(default=10, metadata={"help": "K of recall@K"})
    out: str = field(default="runs/sid_experiments", metadata={"help": "output folder"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    hysteresis: float = field(
        default=DEFAULT_HYSTERESIS,
        metadata={"help": "hysteresis of the dynamic tracker (0: plain nearest code)"},
    )
    n_boot: int = field(default=200, metadata={"help": "bootstrap resamples of the CIs"})

    def __post_init__(self) -> None:
        for name in ("train_hours", "eval_hours"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} is invalid: must be > 0")
        for name in ("k", "history_len", "threads", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} is invalid: must be >= 1")
        if not self.hysteresis >= 0:
            raise ValueError(f"hysteresis={self.hysteresis} is invalid: must be >= 0 (inf: frozen)")


def overrides(args: SIDExperimentArgs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.n_users is not None:
        out["users.n_users"] = args.n_users
    if args.n_streamers is not None:
        out["streamers.n_streamers"] = args.n_streamers
    return out


# --------------------------------------------------------------------------- phases


def log_training_phase(
    preset: str, args: SIDExperimentArgs, log_dir: Path
) -> tuple[Any, Any, dict]:
    """Simulate ``train_hours`` under the platform policy into ``log_dir``.

    Returns the (unwrapped) env positioned at the first held-out request, its last
    observation and info.
    """
    days = (args.train_hours + args.eval_hours) / 24.0
    env = LogRecorder(make_log_env(preset, days, overrides(args)), log_dir, policy_name="platform")
    policy, _ = resolve_policy("platform", args.seed)
    obs, info = env.reset(seed=args.seed)
    split_s = info["time_s"] + 3600.0 * args.train_hours
    while info["time_s"] < split_s:
        action, prop = split_action(policy(obs, env))
        obs, _, _, truncated, info = env.step_with_propensity(action, prop)
        if truncated:
            raise ValueError(f"the episode ended before the held-out hours of {preset}")
    env.flush()
    return env.env, obs, info


def evaluate_phase(
    env: Any, obs: dict, info: dict, runs: dict[str, ModeRun], args: SIDExperimentArgs
) -> dict[str, Any]:
    """Random exposure for ``eval_hours``; trackers refreshed after every step."""
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 7]))
    end_s = info["time_s"] + 3600.0 * args.eval_hours
    imp: dict[str, list] = {
        k: []
        for k in ("user", "hist", "has", "content", "pooled", "streamer", "click", "long_view")
    }
    sim_s, o = 0.0, runs["dynamic"].tok.content_dim
    for run in runs.values():
        run.tracker.update(env)
    while info["time_s"] < end_s:
        n_live = int(obs["room_mask"].sum())
        slot = int(rng.integers(n_live))
        user = int(info["user_id"])
        hist, has = pool_history(obs["history_content"][None], obs["history_mask"][None])
        t0 = time.perf_counter()
        obs_next, _, _, truncated, info = env.step(slot)
        sim_s += time.perf_counter() - t0
        clicked = info["clicked_slot"] >= 0
        room = obs["rooms"][slot]
        for key, value in (
            ("user", obs["user"]),
            ("hist", hist[0]),
            ("has", has[0]),
            ("content", room[:o]),
            ("pooled", room[o : 2 * o]),
            ("streamer", obs["room_streamer"][slot]),
            ("click", clicked),
            ("long_view", clicked and info["watch_s"] >= LONG_VIEW_S),
        ):
            imp[key].append(value)
        for run in runs.values():
            score_request(run, obs, user, slot, clicked, hist, has, args)
        obs = obs_next
        for run in runs.values():
            t0 = time.perf_counter()
            run.tracker.update(env)
            run.update_s += time.perf_counter() - t0
        if truncated:
            break
    return {"impressions": {k: np.asarray(v) for k, v in imp.items()}, "sim_s": sim_s}


def run_preset(preset: str, args: SIDExperimentArgs) -> dict[str, Any]:
    """Both phases for one preset; returns its results (also written as JSON)."""
    out = Path(args.out) / preset
    start = time.perf_counter()
    env, obs, info = log_training_phase(preset, args, out / "log")
    train = read_log_arrays(out / "log")
    cfg = SIDTokenizerConfig(
        codebook_sizes=args.codebook_sizes,
        epochs=args.epochs,
        history_len=args.history_len,
        seed=args.seed,
    )
    toks = {mode: SIDTokenizer.fit(train, cfg.replace(mode=mode)) for mode in ("dynamic", "static")}
    for mode, tok in toks.items():
        tok.save(out / f"tokenizer-{mode}.pt")
    dyn = toks["dynamic"]
    runs = {"dynamic": ModeRun(dyn, LiveSIDTracker(dyn, hysteresis=args.hysteresis))}
    if args.hysteresis > 0:
        runs["plain"] = ModeRun(dyn, LiveSIDTracker(dyn, hysteresis=0.0))
    runs["static"] = ModeRun(toks["static"], LiveSIDTracker(toks["static"], hysteresis=0.0))
    runs["frozen"] = ModeRun(dyn, LiveSIDTracker(dyn, hysteresis=np.inf))
    for run in runs.values():
        seed_histories(run, train, args.history_len)
    ev = evaluate_phase(env, obs, info, runs, args)
    imp = ev["impressions"]
    result = {
        "preset": preset,
        "args": cliargs.to_dict(args),
        "train_rows": len(train["user_id"]),
        "eval_impressions": len(imp["click"]),
        "eval_clicks": int(imp["click"].sum()),
        "sim_seconds_eval": ev["sim_s"],
        "seconds": time.perf_counter() - start,
        "modes": {mode: mode_results(run, imp) for mode, run in runs.items()},
    }
    click = imp["click"].astype(bool)
    result["ci95"] = {
        f"dynamic-{other}": paired_bootstrap(
            runs["dynamic"], runs[other], click, args.n_boot, args.seed
        )
        for other in runs
        if other != "dynamic"
    }
    text = json.dumps(result, indent=2, default=float)
    atomic_write_bytes(out / "results.json", text.encode())
    return result


# --------------------------------------------------------------------------- report


def markdown(results: list[dict[str, Any]], k: int) -> str:
    """Two tables: retrieval and diagnostics per preset and mode; dynamic - static CIs."""
    header = [
        "preset",
        "mode",
        "AUC code",
        "AUC history",
        "AUC long view (code)",
        f"recall@{k} code",
        f"recall@{k} history",
        "distinct SIDs / room",
        "distinct L1 / room",
        "changes / room-h",
        "collision",
        "utilisation",
        "recon err",
        "id gate",
    ]
    rows, diff = [], []
    for r in results:
        for mode, m in r["modes"].items():
            rows.append(
                [
                    r["preset"],
                    mode,
                    f"{m['auc']['code']:.3f}",
                    f"{m['auc']['history']:.3f}",
                    f"{m['auc_long_view']['code']:.3f}",
                    f"{m['recall_code']:.3f}",
                    f"{m['recall_history']:.3f}",
                    f"{m['churn_mean_distinct']:.2f}",
                    f"{m['churn_level1_mean_distinct']:.2f}",
                    f"{m['changes_per_room_hour']:.2f}",
                    f"{m['collision_rate']:.3f}",
                    "/".join(f"{u:.2f}" for u in m["utilisation"]),
                    f"{m['reconstruction_error']:.3f}",
                    f"{m['mean_id_gate']:.2f}",
                ]
            )
        md = r["modes"]
        for pair, ci in r["ci95"].items():
            other = pair.split("-", 1)[1]
            diff.append(
                [
                    r["preset"],
                    f"dynamic - {other}",
                    str(r["eval_clicks"]),
                    f"{md['dynamic']['auc']['code'] - md[other]['auc']['code']:+.3f}",
                    "[{:+.3f}, {:+.3f}]".format(*ci["auc_code"]),
                    f"{md['dynamic']['recall_code'] - md[other]['recall_code']:+.3f}",
                    "[{:+.3f}, {:+.3f}]".format(*ci["recall_code"]),
                ]
            )
    second = markdown_table(
        [
            "preset",
            "difference",
            "held-out clicks",
            "AUC code",
            "95 % CI",
            f"recall@{k} code",
            "95 % CI",
        ],
        diff,
    )
    return markdown_table(header, rows) + "\n\n" + second


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = cliargs.parse(SIDExperimentArgs, argv, prog="python -m experiments.sid_experiments")
    torch.set_num_threads(args.threads)
    results = []
    for preset in args.presets:
        r = run_preset(preset, args)
        results.append(r)
        print(
            f"{preset}: {r['train_rows']} training rows, {r['eval_impressions']} held-out "
            f"impressions, {r['eval_clicks']} clicks, {r['seconds']:.0f} s"
        )
    table = markdown(results, args.k)
    print(table)
    atomic_write_bytes(Path(args.out) / "summary.md", (table + "\n").encode())
    return results


if __name__ == "__main__":
    main()


__all__ = ["SIDExperimentArgs", "main", "markdown", "run_preset"]
