"""User cold start: a cluster memory over unbiased user features (REFERENCE.md section 4).

Users are clustered on their demographics only (age, gender and region
one-hots: features that do not depend on what the platform showed them, hence
"unbiased"); k-means centroids are fit once, on the warm users of a training
log. Each cluster holds a memory slot: the taste (mean clicked content, the
same ``taste`` vector as :func:`policies.cascade.features.request_side`) of
the warm users assigned to it. A user's soft assignment ``a = softmax(-|x -
c_k|^2 / temperature)`` reads a "group representation" ``sum_k a_k m_k`` that
stands in for the taste a new user does not have yet.

The memory is written online, from the observations the policy answers, with
an attention-style erase/add: for the warm requests ``i`` of a batch,

    S_k = sum_i a_ik,   n_k <- min(n_k + S_k, max_count),
    m_k <- m_k + (sum_i a_ik x_i - S_k m_k) / n_k

(erase ``S_k m_k / n_k``, add ``sum_i a_ik x_i / n_k``): a running mean that
forgets once ``max_count`` is reached. :meth:`reset` returns it to its
prior: the memory as the training logs left it (:meth:`set_prior`; empty
without one). The platform (users, streamers and the latent-to-observed
projection) is fixed by ``EnvConfig.world_seed`` and ``reset(seed)`` only
draws new dynamics, so the group tastes written from the training logs live
in the same content space as the evaluation days and a new user is served
from a filled memory from the first request on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from liveenv.population import N_AGE, N_GENDER, N_REGION

#: The unbiased user features: the demographic one-hots at the front of ``obs["user"]``.
N_DEMOGRAPHIC = N_AGE + N_GENDER + N_REGION


@dataclass(frozen=True)
class ColdStartConfig:
    """Cluster memory settings.

    n_clusters: k-means clusters over the demographic one-hots.
    temperature: softness of the assignment (squared distance units; one-hots
        of two users differing in one attribute are at squared distance 2).
    max_count: effective number of users a slot averages over before it forgets.
    seed: k-means initialisation seed.
    """

    n_clusters: int = 24
    temperature: float = 0.5
    max_count: float = 500.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "n_clusters": (
                self.n_clusters,
                int(self.n_clusters) == self.n_clusters and self.n_clusters >= 1,
                "an integer >= 1",
            ),
            "temperature": (self.temperature, self.temperature > 0, "a number > 0"),
            "max_count": (self.max_count, self.max_count >= 1, "a number >= 1"),
            "seed": (self.seed, int(self.seed) == self.seed and self.seed >= 0, "an integer >= 0"),
        }
        for name, (value, ok, allowed) in checks.items():
            if not ok:
                raise ValueError(f"ColdStartConfig.{name}={value!r} is invalid: must be {allowed}")


def demographics(users: np.ndarray) -> np.ndarray:
    """``(B, N_DEMOGRAPHIC)`` unbiased part of ``(B, USER_FEATURES)`` user features."""
    return np.asarray(users, dtype=np.float32)[:, :N_DEMOGRAPHIC]


class ClusterMemory:
    """Cluster centroids (learned) and the online taste memory (per episode)."""

    def __init__(self, config: ColdStartConfig, centroids: np.ndarray, obs_dim: int) -> None:
        centroids = np.asarray(centroids, dtype=np.float32)
        if centroids.shape != (config.n_clusters, N_DEMOGRAPHIC):
            raise ValueError(
                f"centroids have shape {centroids.shape}; expected "
                f"({config.n_clusters}, {N_DEMOGRAPHIC}) for n_clusters={config.n_clusters}"
            )
        self.config, self.centroids, self.obs_dim = config, centroids, int(obs_dim)
        self.prior_values = np.zeros((config.n_clusters, self.obs_dim), dtype=np.float64)
        self.prior_counts = np.zeros(config.n_clusters, dtype=np.float64)
        self.reset()

    @classmethod
    def fit(cls, config: ColdStartConfig, users: np.ndarray, obs_dim: int) -> ClusterMemory:
        """k-means (scikit-learn) on the demographics of ``users`` (warm users' features)."""
        from sklearn.cluster import KMeans

        x = demographics(users)
        distinct = np.unique(x, axis=0)
        if len(distinct) < config.n_clusters:
            raise ValueError(
                f"ColdStartConfig.n_clusters={config.n_clusters} exceeds the "
                f"{len(distinct)} distinct demographic profiles of the training users"
            )
        km = KMeans(n_clusters=config.n_clusters, n_init=4, random_state=config.seed).fit(x)
        return cls(config, km.cluster_centers_, obs_dim)

    def set_prior(self, values: np.ndarray, counts: np.ndarray) -> None:
        """The state :meth:`reset` returns to (e.g. the memory after replaying the logs)."""
        values = np.asarray(values, dtype=np.float64)
        counts = np.asarray(counts, dtype=np.float64)
        k, o = self.config.n_clusters, self.obs_dim
        if values.shape != (k, o) or counts.shape != (k,):
            raise ValueError(
                f"prior of shapes {values.shape}, {counts.shape}; expected ({k}, {o}) and ({k},)"
            )
        if not (np.isfinite(values).all() and np.isfinite(counts).all() and (counts >= 0).all()):
            raise ValueError("prior: values must be finite and counts finite and >= 0")
        self.prior_values, self.prior_counts = values.copy(), counts.copy()

    def reset(self) -> None:
        """Return the memory to its prior (empty without one)."""
        self.values = self.prior_values.copy()
        self.counts = self.prior_counts.copy()

    def clear(self) -> None:
        """Empty the memory and drop its prior."""
        self.set_prior(np.zeros_like(self.prior_values), np.zeros_like(self.prior_counts))
        self.reset()

    def assign(self, users: np.ndarray) -> np.ndarray:
        """``(B, K)`` soft assignment of each user to the clusters."""
        x = demographics(users)
        d2 = ((x[:, None, :] - self.centroids[None]) ** 2).sum(-1)  # (B, K)
        z = -d2 / self.config.temperature
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def read(self, users: np.ndarray) -> np.ndarray:
        """``(B, o + 1)``: the group taste and its confidence ``sum_k a_k n_k / (n_k + 10)``."""
        a = self.assign(users)
        filled = self.counts > 0
        w = a * filled
        taste = w @ self.values / np.maximum(w.sum(axis=1, keepdims=True), 1e-9)
        conf = a @ (self.counts / (self.counts + 10.0))
        return np.column_stack([taste, conf]).astype(np.float32)

    def write(self, users: np.ndarray, taste: np.ndarray, warm: np.ndarray) -> None:
        """Erase/add the tastes of the ``warm`` requests (users with a history)."""
        warm = np.asarray(warm, dtype=bool)
        if not warm.any():
            return
        a = self.assign(users[warm])  # (b, K)
        s = a.sum(axis=0)  # (K,)
        self.counts = np.minimum(self.counts + s, self.config.max_count)
        step = 1.0 / np.maximum(self.counts, 1e-9)
        self.values += step[:, None] * (a.T @ taste[warm] - s[:, None] * self.values)

    def get_config(self) -> dict[str, float]:
        return asdict(self.config)
