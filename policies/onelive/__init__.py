"""OneLive-style generator: config, model, constrained beam search, checkpoints."""

from policies.onelive.checkpoint import load_checkpoint, save_checkpoint
from policies.onelive.config import GeneratorBatch, OneLiveConfig
from policies.onelive.decoding import (
    BeamResult,
    allowed_next_tokens,
    beam_search,
    constrained_log_softmax,
    constrained_loss,
    constrained_nll,
    match_live_index,
    score_all_live,
    sequence_log_prob,
)
from policies.onelive.model import DecodeState, OneLiveGenerator

__all__ = [
    "BeamResult",
    "DecodeState",
    "GeneratorBatch",
    "OneLiveConfig",
    "OneLiveGenerator",
    "allowed_next_tokens",
    "beam_search",
    "constrained_log_softmax",
    "constrained_loss",
    "constrained_nll",
    "load_checkpoint",
    "match_live_index",
    "save_checkpoint",
    "score_all_live",
    "sequence_log_prob",
]
