"""Decoding speed of the generator: sequential MTP against full-depth AR, same size.

    python benchmarks/decode_speed.py --mtp runs/ablate/fast_drift/full-s0/model.pt \\
        --ar runs/ablate/fast_drift/ar-s0/model.pt --holdout runs/ablate/fast_drift/holdout.npz

Both models decode the same held-out requests (constrained beam search over the
rooms live at each request, then SID -> slot mapping) in the same process, batch by
batch and interleaved (MTP then AR on each batch, ``--repeats`` rounds), on CPU with
``--threads`` torch threads. Reported per model: recommendations (requests) per
second, p50/p99 latency per batch, and the hit rate of the recommendations (the
logged clicked room among the top ``--top-k`` rooms: HR@k), so the speed-up is read
at (near) equal quality. Inputs (features, live SIDs) are prepared once beforehand
and are the same for both; only decoding is timed.

``--random-init`` times two untrained models of ``--n-layer`` / ``--d-model`` instead
(speed only; their hit rates are meaningless).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.evaluate.holdout import Holdout
from agents.run import cliargs
from liveenv.atomic import atomic_write_bytes
from policies.onelive import OneLiveConfig, OneLiveGenerator, beam_search
from policies.onelive.features import room_log_viewers, room_stat_features
from policies.onelive.policy import GeneratorPolicy, _slots_of_beams


@dataclass
class DecodeSpeedArgs:
    """MTP vs full-depth AR decoding speed at equal hit rate."""

    holdout: str = field(
        default="", metadata={"help": "held-out requests (agents.evaluate.holdout)"}
    )
    mtp: str = field(default="", metadata={"help": "MTP generator checkpoint"})
    ar: str = field(default="", metadata={"help": "full-depth AR generator checkpoint"})
    random_init: bool = field(default=False, metadata={"help": "time untrained models instead"})
    n_layer: int = field(default=3, metadata={"help": "layers (random init only)"})
    d_model: int = field(default=64, metadata={"help": "width (random init only)"})
    batch_size: int = field(default=32, metadata={"help": "requests per batch"})
    beam_size: int = field(default=32, metadata={"help": "beams per level"})
    top_k: int = field(default=10, metadata={"help": "rooms recommended per request (HR@k)"})
    requests: int = field(default=1024, metadata={"help": "held-out requests used at most"})
    repeats: int = field(default=3, metadata={"help": "timed rounds over all batches"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    out: str = field(default="", metadata={"help": "JSON file for the results (optional)"})


def _policies(args: DecodeSpeedArgs) -> dict[str, GeneratorPolicy]:
    if not args.random_init:
        return {
            "mtp": GeneratorPolicy.from_files(args.mtp, beam_size=args.beam_size),
            "ar": GeneratorPolicy.from_files(args.ar, beam_size=args.beam_size),
        }
    base = GeneratorPolicy.from_files(args.mtp, beam_size=args.beam_size)
    tok = base.tokenizer
    out = {}
    for name, mtp in (("mtp", True), ("ar", False)):
        cfg = OneLiveConfig.from_dict(
            {
                **base.model.config.to_dict(),
                "use_mtp": mtp,  # type: ignore[union-attr]
                "n_layer": args.n_layer,
                "d_model": args.d_model,
            }
        )
        torch.manual_seed(0)
        out[name] = GeneratorPolicy.from_parts(OneLiveGenerator(cfg), tok, beam_size=args.beam_size)  # type: ignore[arg-type]
    return out


def _decode(policy: GeneratorPolicy, prepared: tuple[Any, ...], k: int, beams: int) -> np.ndarray:
    gb, live, mask, obs = prepared
    stats = room_stat_features(obs, mask.numpy())
    res = beam_search(policy.model, gb, live, mask, beams, beams, live_stats=stats)  # type: ignore[arg-type]
    viewers = room_log_viewers(obs, mask.numpy()).numpy()
    return np.stack(
        [
            _slots_of_beams(res.sids[b].numpy(), live[b].numpy(), mask[b].numpy(), viewers[b], k)
            for b in range(gb.batch_size)
        ]
    )


def run(args: DecodeSpeedArgs) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    holdout = Holdout.load(args.holdout)
    policies = _policies(args)
    n = min(args.requests, len(holdout))
    target = holdout.rows["slot"].to_numpy()[:n]
    batches = [np.arange(i, min(i + args.batch_size, n)) for i in range(0, n, args.batch_size)]
    prepared: dict[str, list[Any]] = {}
    for name, pol in policies.items():
        pol.features.cache.update(holdout.streamer_ids, holdout.pooled)  # type: ignore[union-attr]
        prepared[name] = [pol.prepare(holdout.observations(idx)) for idx in batches]
    lat: dict[str, list[float]] = {name: [] for name in policies}
    slots: dict[str, list[np.ndarray]] = {name: [] for name in policies}
    with torch.no_grad():
        for name, pol in policies.items():  # warm-up
            _decode(pol, prepared[name][0], args.top_k, args.beam_size)
        for rep in range(args.repeats):
            for i in range(len(batches)):
                for name, pol in policies.items():
                    t0 = time.perf_counter()
                    s = _decode(pol, prepared[name][i], args.top_k, args.beam_size)
                    lat[name].append(time.perf_counter() - t0)
                    if rep == 0:
                        slots[name].append(s)
    result: dict[str, Any] = {
        "args": cliargs.to_dict(args),
        "requests": n,
        "batches": len(batches),
        "models": {},
    }
    for name, pol in policies.items():
        top = np.concatenate(slots[name])
        hit = (top == target[:, None]).any(1)
        t = np.asarray(lat[name])
        result["models"][name] = {
            "n_layer": pol.model.config.n_layer,
            "d_model": pol.model.config.d_model,  # type: ignore[union-attr]
            "params": pol.model.num_params(),  # type: ignore[union-attr]
            "recs_per_s": args.repeats * n / t.sum(),
            "p50_ms": 1e3 * float(np.percentile(t, 50)),
            "p99_ms": 1e3 * float(np.percentile(t, 99)),
            f"hr@{args.top_k}": float(hit.mean()),
            "hr@1": float((top[:, 0] == target).mean()),
        }
    m, a = result["models"]["mtp"], result["models"]["ar"]
    hk = f"hr@{args.top_k}"
    result["throughput_gain"] = m["recs_per_s"] / a["recs_per_s"] - 1.0
    result["hit_rate_rel_diff"] = (m[hk] - a[hk]) / max(a[hk], 1e-12)
    result["equal_hit_rate_within_1pct"] = abs(result["hit_rate_rel_diff"]) <= 0.01
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = cliargs.parse(DecodeSpeedArgs, argv, prog="python benchmarks/decode_speed.py")
    result = run(args)
    hk = f"hr@{args.top_k}"
    print(
        f"{result['requests']} requests, batches of {args.batch_size}, beam {args.beam_size}, "
        f"{args.threads} thread(s), {args.repeats} rounds"
    )
    print(f"| decoder | layers | params | recs/s | p50 ms/batch | p99 ms/batch | {hk} | hr@1 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in result["models"].items():
        print(
            f"| {name} | {r['n_layer']} | {r['params']:,} | {r['recs_per_s']:,.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r[hk]:.4f} | {r['hr@1']:.4f} |"
        )
    print(
        f"MTP throughput gain: {100 * result['throughput_gain']:+.1f} %; hit-rate difference "
        f"{100 * result['hit_rate_rel_diff']:+.2f} % relative "
        f"({'within' if result['equal_hit_rate_within_1pct'] else 'NOT within'} 1 %)"
    )
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(result, indent=2) + "\n").encode())
    return result


if __name__ == "__main__":
    main()
