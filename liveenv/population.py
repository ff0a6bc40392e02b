"""Users and streamers as struct-of-arrays, created and grown from one RNG.

Everything hidden (latent interests, content style, quality, gift pull,
propensities) lives here; what a recommender may see is built by
:meth:`liveenv.world.World.observe`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liveenv.config import EnvConfig
from liveenv.rhythm import DAY_S
from liveenv.soa import SoA

N_AGE, N_GENDER, N_REGION = 6, 2, 8
USER_FEATURES = N_AGE + N_GENDER + N_REGION + 4


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


@dataclass
class Archetypes:
    """World-level constants drawn once per world: content types, interest
    clusters and their demographics, and the latent -> observed projection."""

    type_protos: np.ndarray  # (n_types, d) unit content-type prototypes
    cluster_centres: np.ndarray  # (K, d) unit interest-cluster centres
    cluster_demo: list[np.ndarray]  # per attribute: (K, n_values) probabilities
    projection: np.ndarray  # (obs_dim, d) latent -> observed embedding

    @classmethod
    def draw(cls, cfg: EnvConfig, rng: np.random.Generator) -> Archetypes:
        d, ucfg = cfg.latent_dim, cfg.users
        protos = unit(rng.standard_normal((cfg.streamers.n_content_types, d)))
        k = ucfg.n_interest_clusters
        mix = rng.dirichlet(np.full(len(protos), 0.3), size=k)
        centres = unit(mix @ protos + 0.5 * unit(rng.standard_normal((k, d))))
        demo = []
        for n_values in (N_AGE, N_GENDER, N_REGION):
            mode = rng.integers(0, n_values, size=k)
            probs = np.full((k, n_values), (1 - ucfg.demographic_fidelity) / n_values)
            probs[np.arange(k), mode] += ucfg.demographic_fidelity
            demo.append(probs)
        projection = rng.standard_normal((cfg.obs_dim, d)) / np.sqrt(d)
        return cls(protos, centres, demo, projection.astype(np.float32))


def new_user_table(cfg: EnvConfig) -> SoA:
    """Room for the first users and two days of newcomers before the table grows."""
    d = cfg.latent_dim
    return SoA(
        cfg.users.n_users + int(2 * cfg.users.new_users_per_day),
        {
            "interest": ((d,), np.float32, 0.0),
            "boredom": ((d,), np.float32, 0.0),
            "cluster": ((), np.int32, 0),
            "demo": ((3,), np.int8, 0),
            "activity": ((), np.float64, 0.0),  # visits per day
            "like_prop": ((), np.float32, 0.0),
            "comment_prop": ((), np.float32, 0.0),
            "gift_prop": ((), np.float32, 0.0),
            "join_t": ((), np.float64, 0.0),
            "visits": ((), np.int32, 0),
            "last_visit_t": ((), np.float64, -np.inf),  # start of the latest visit
            "return_boost": ((), np.float32, 1.0),
            "n_follows": ((), np.int32, 0),
            "in_session": ((), np.bool_, False),
            "session_requests": ((), np.int32, 0),
            "session_value": ((), np.float32, 0.0),
        },
    )


def add_users(
    table: SoA,
    count: int,
    join_t: np.ndarray,
    cfg: EnvConfig,
    arch: Archetypes,
    rng: np.random.Generator,
) -> np.ndarray:
    """Create ``count`` users who joined at times ``join_t``; return their ids."""
    ucfg, d = cfg.users, cfg.latent_dim
    rows = table.append(count)
    cluster = rng.integers(0, ucfg.n_interest_clusters, size=count)
    noise = rng.standard_normal((count, d)) * ucfg.interest_noise / np.sqrt(d)
    table.interest[rows] = unit(arch.cluster_centres[cluster] + noise)
    table.cluster[rows] = cluster
    for j, probs in enumerate(arch.cluster_demo):
        cdf = np.cumsum(probs[cluster], axis=1)
        table.demo[rows, j] = (rng.random((count, 1)) > cdf).sum(axis=1).clip(0, probs.shape[1] - 1)
    table.activity[rows] = ucfg.visits_per_day * rng.lognormal(0.0, ucfg.activity_sigma, count)
    table.like_prop[rows] = rng.lognormal(-0.5 * ucfg.like_sigma**2, ucfg.like_sigma, count)
    table.comment_prop[rows] = rng.lognormal(
        -0.5 * ucfg.comment_sigma**2, ucfg.comment_sigma, count
    )
    gifter = rng.random(count) < ucfg.gifter_share
    table.gift_prop[rows] = np.where(gifter, rng.lognormal(-0.5, 1.0, count), 0.0)
    table.join_t[rows] = join_t
    table.visits[rows] = np.maximum(
        0, (table.activity[rows] * (-join_t.clip(max=0)) / DAY_S)
    ).astype(np.int32)
    return rows


def new_streamer_table(cfg: EnvConfig) -> SoA:
    d, scfg = cfg.latent_dim, cfg.streamers
    return SoA(
        scfg.n_streamers + int(2 * scfg.new_streamers_per_day),
        {
            "style": ((d,), np.float32, 0.0),
            "mix": ((scfg.n_content_types,), np.float32, 0.0),
            "quality": ((), np.float32, 1.0),
            "fans": ((), np.float32, 0.0),
            "rate": ((), np.float32, 0.0),  # broadcasts per day
            "start_hour": ((), np.float32, 20.0),
            "hour_spread": ((), np.float32, 1.5),
            "pooled": ((cfg.obs_dim,), np.float32, 0.0),
            "join_t": ((), np.float64, 0.0),
            "room": ((), np.int64, -1),  # live room id, -1 when offline
            "n_broadcasts": ((), np.int32, 0),
            "gift_pull": ((), np.float32, 1.0),  # multiplies the gift rate of its rooms
        },
    )


def add_streamers(
    table: SoA,
    count: int,
    join_t: np.ndarray,
    cfg: EnvConfig,
    arch: Archetypes,
    rng: np.random.Generator,
) -> np.ndarray:
    """Create ``count`` streamers who joined at ``join_t``; return their ids."""
    scfg, d = cfg.streamers, cfg.latent_dim
    rows = table.append(count)
    mix = rng.dirichlet(np.full(scfg.n_content_types, 0.25), size=count)
    style = unit(rng.standard_normal((count, d)))
    table.mix[rows] = mix
    table.style[rows] = style
    quality = rng.lognormal(0.0, scfg.quality_sigma, count)
    table.quality[rows] = quality
    # popular streamers are popular for a reason: log fans follow log quality
    log_fans = (
        5.0 + scfg.fans_quality * np.log(quality) + scfg.fans_sigma * rng.standard_normal(count)
    )
    table.fans[rows] = np.exp(log_fans)
    table.rate[rows] = rng.gamma(1.5, scfg.broadcasts_per_day / 1.5, count)
    habit = rng.random(count)
    evening, noon = scfg.evening_share, scfg.evening_share + scfg.noon_share
    table.start_hour[rows] = (
        np.where(
            habit < evening,
            rng.normal(20.5, 1.5, count),
            np.where(habit < noon, rng.normal(12.0, 1.0, count), rng.uniform(0, 24, count)),
        )
        % 24
    )
    table.hour_spread[rows] = np.where(habit < noon, 1.0, 4.0)
    pooled_latent = unit(mix @ arch.type_protos + scfg.style_weight * style)
    table.pooled[rows] = unit(pooled_latent @ arch.projection.T)
    table.join_t[rows] = join_t
    table.gift_pull[rows] = draw_gift_pull(count, scfg.gift_pull_sigma, rng)
    return rows


def draw_gift_pull(count: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``lognormal(0, sigma)`` gift pull of ``count`` streamers; all 1 without a
    draw when ``sigma`` is 0 (so the default world's random streams are unchanged)."""
    if sigma > 0:
        return rng.lognormal(0.0, sigma, count)
    return np.ones(count)


def user_cohort(activity: np.ndarray, age_s: np.ndarray, cfg: EnvConfig) -> np.ndarray:
    """0 new, 1 light, 2 heavy (see :data:`liveenv.world.USER_COHORTS`)."""
    new = age_s < cfg.users.new_days * DAY_S
    heavy = activity >= cfg.users.heavy_visits_per_day
    return np.where(new, 0, np.where(heavy, 2, 1)).astype(np.int8)
