"""The calibration figures of a log and of the broadcasts of a simulation.

Pure functions of a log DataFrame (columns of :mod:`agents.logs.schema`) and
of a rooms table (``room_id, streamer, start_t, end_t`` in simulated
seconds), so that they apply to any recorded log, not only to a calibration run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from agents.evaluate.metrics import gini

DAY_S, HOUR_S = 86_400.0, 3600.0
EVENING = (18, 24)  # "mostly 18:00-24:00"
NOON = (11, 14)  # "a small peak at noon": 11:00-14:00
NOON_NEIGHBOURS = (8, 11, 14, 17)  # hours 8-10 and 14-16, to compare the noon hours with


def top_share(values: np.ndarray, share: float = 0.01) -> float:
    """Share of the total held by the top ``share`` of holders (at least one)."""
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if len(x) == 0 or x.sum() <= 0:
        return float("nan")
    k = max(1, int(np.ceil(share * len(x))))
    return float(x[:k].sum() / x.sum())


def hour_shares(hours: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``(24,)`` share of ``weights`` (or of counts) per hour of day."""
    counts = np.bincount(np.asarray(hours, dtype=np.int64) % 24, weights=weights, minlength=24)
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(np.float64)


def rhythm_figures(shares: np.ndarray, prefix: str) -> dict[str, float]:
    """Share in 18-24 h, share in 11-14 h and the noon peak ratio (mean share
    per noon hour over the mean share of hours 8-10 and 14-16; > 1 is a peak)."""
    a, b, c, d = NOON_NEIGHBOURS
    around = np.concatenate([shares[a:b], shares[c:d]]).mean()
    noon = shares[NOON[0] : NOON[1]]
    return {
        f"{prefix}_share_18_24": float(shares[EVENING[0] : EVENING[1]].sum()),
        f"{prefix}_share_11_14": float(noon.sum()),
        f"{prefix}_noon_peak_ratio": float(noon.mean() / around) if around > 0 else float("nan"),
    }


def interaction_figures(log: pd.DataFrame) -> dict[str, float]:
    clicks = int(log["is_click"].sum())
    per = max(clicks, 1)
    return {
        "exposures": float(len(log)),
        "clicks": float(clicks),
        "ctr": clicks / max(len(log), 1),
        "comment_per_click": log["comment"].sum() / per,
        "like_per_click": log["like"].sum() / per,
        "gift_per_click": (log["gift_price"] > 0).sum() / per,
        "follow_per_click": log["follow"].sum() / per,
    }


def watch_figures(log: pd.DataFrame) -> dict[str, float]:
    """Watch seconds per (user, room) visit: a user's clicks on one room summed."""
    clicked = log[log["is_click"]]
    per_visit = clicked.groupby(["user_id", "live_id"])["watch_time_ms"].sum().to_numpy() / 1000
    if len(per_visit) == 0:
        per_visit = np.zeros(1)
    q = np.percentile(per_visit, [50, 90, 99])
    return {
        "visits": float(len(per_visit)),
        "watch_median_s": float(q[0]),
        "watch_mean_s": float(per_visit.mean()),
        "watch_p90_s": float(q[1]),
        "watch_p99_s": float(q[2]),
    }


def gift_figures(log: pd.DataFrame, lowest_price: float) -> dict[str, float]:
    prices = log.loc[log["gift_price"] > 0, "gift_price"].to_numpy(dtype=np.float64)
    if len(prices) == 0:
        nan = float("nan")
        return {
            "gifts": 0.0,
            "gift_price_median": nan,
            "gift_price_p90": nan,
            "gift_price_p99": nan,
            "gift_lowest_share": nan,
        }
    q = np.percentile(prices, [50, 90, 99], method="inverted_cdf")
    return {
        "gifts": float(len(prices)),
        "gift_price_median": float(q[0]),
        "gift_price_p90": float(q[1]),
        "gift_price_p99": float(q[2]),
        "gift_lowest_share": float(np.mean(prices <= lowest_price)),
    }


def concentration_figures(log: pd.DataFrame) -> dict[str, float]:
    """Gini and top-1 % share of clicks and gift value across the streamers
    (users) that had at least one exposure."""
    out: dict[str, float] = {}
    gift = log["gift_price"].astype(np.float64)
    for who, col in (("streamers", "streamer_id"), ("users", "user_id")):
        grouped = pd.DataFrame({"k": log[col], "click": log["is_click"], "gift": gift})
        sums = grouped.groupby("k")[["click", "gift"]].sum()
        for what in ("click", "gift"):
            v = sums[what].to_numpy(dtype=np.float64)
            out[f"{what}_gini_{who}"] = gini(v)
            out[f"{what}_top1_{who}"] = top_share(v)
    return out


def return_figures(log: pd.DataFrame) -> dict[str, float]:
    """Share of the users with a click who click again, in a later request, a
    streamer they clicked before; and the share of clicks that are such returns."""
    c = log.loc[log["is_click"], ["user_id", "streamer_id", "timestamp_ms"]]
    c = c.sort_values(["user_id", "timestamp_ms"], kind="stable")
    repeat = c.duplicated(["user_id", "streamer_id"]).to_numpy()
    users = c["user_id"].to_numpy()
    n_users = len(np.unique(users))
    return {
        "return_user_share": len(np.unique(users[repeat])) / max(n_users, 1),
        "return_click_share": float(repeat.mean()) if len(repeat) else float("nan"),
        "top_streamer_watch_share": top_streamer_watch_share(log),
    }


def top_streamer_watch_share(log: pd.DataFrame, min_clicks: int = 5) -> float:
    """The median, over users with at least ``min_clicks`` clicks and some watch time,
    of their most-watched streamer's share of their watch time (KuaiLive: ~36 %)."""
    c = log.loc[log["is_click"], ["user_id", "streamer_id", "watch_time_ms"]]
    per = c.groupby(["user_id", "streamer_id"], sort=False)["watch_time_ms"].sum()
    by_user = per.groupby(level=0)
    share = by_user.max() / by_user.sum()
    clicks = c.groupby("user_id").size()
    keep = (clicks.reindex(share.index) >= min_clicks) & (by_user.sum() > 0)
    return float(share[keep].median()) if keep.any() else float("nan")


def watch_rhythm_figures(log: pd.DataFrame) -> dict[str, float]:
    """When users watch: watch time per hour of day (heavy-tailed, so noisy in
    small logs) and exposures (requests) per hour of day."""
    clicked = log[log["is_click"]]
    shares = hour_shares(clicked["hour"].to_numpy(), clicked["watch_time_ms"].to_numpy(float))
    out = rhythm_figures(shares, "watch")
    out.update(rhythm_figures(hour_shares(log["hour"].to_numpy()), "exposure"))
    return out


def room_figures(
    rooms: pd.DataFrame, t0: float, t1: float, n_streamers: float, min_minutes: float = 5.0
) -> dict[str, float]:
    """Broadcasts that started in ``[t0, t1)``: durations (minutes; rooms of at
    least ``min_minutes``, as KuaiLive's 5 min to 24 h), start hours, and rooms
    per streamer extrapolated from the window to 21 days."""
    started = rooms[(rooms["start_t"] >= t0) & (rooms["start_t"] < t1)]
    minutes = (started["end_t"] - started["start_t"]).to_numpy(dtype=np.float64) / 60.0
    minutes = minutes[(minutes >= min_minutes) & (minutes <= 24 * 60)]
    q = np.percentile(minutes, [25, 50, 75, 90]) if len(minutes) else np.full(4, np.nan)
    hours = (started["start_t"].to_numpy() % DAY_S) // HOUR_S
    days = (t1 - t0) / DAY_S
    out = {
        "rooms_started": float(len(started)),
        "room_duration_p25_min": float(q[0]),
        "room_duration_median_min": float(q[1]),
        "room_duration_p75_min": float(q[2]),
        "room_duration_p90_min": float(q[3]),
        "rooms_per_streamer_21d": len(started) / max(n_streamers, 1) / max(days, 1e-9) * 21,
    }
    out.update(rhythm_figures(hour_shares(hours), "room_start"))
    return out
