"""Semantic-ID tokenizer core: residual k-means, the live SID index, diagnostics."""

from __future__ import annotations

from policies.tokenizer.diagnostics import (
    codebook_utilisation,
    collision_rate,
    reconstruction_error,
    sid_churn,
)
from policies.tokenizer.live_index import LiveSIDIndex
from policies.tokenizer.rq import (
    ResidualKMeans,
    ResidualKMeansConfig,
    disambiguate,
    encode_reference,
)
from policies.tokenizer.semantic_ids import SIDTokenizer, SIDTokenizerConfig
from policies.tokenizer.tracker import LiveSIDTracker

__all__ = [
    "LiveSIDIndex",
    "LiveSIDTracker",
    "ResidualKMeans",
    "ResidualKMeansConfig",
    "SIDTokenizer",
    "SIDTokenizerConfig",
    "codebook_utilisation",
    "collision_rate",
    "disambiguate",
    "encode_reference",
    "reconstruction_error",
    "sid_churn",
]
