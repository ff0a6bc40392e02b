"""Trainers: one module per model, each an args dataclass and a ``fit(args)``
function, all named in :mod:`agents.train.registry` (the tokenizer, generator
pretraining, the reward model, the cascade, SB3 agents). Shared pieces: the
generator's training sequences (:mod:`agents.train.sequences`), seeds and RNG
snapshots (:mod:`agents.train.seeding`) and curve files (:mod:`agents.train.curves`).
"""
