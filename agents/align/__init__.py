"""Alignment of the generator to a weighted mix of objectives: the reward model's
training (:mod:`agents.train.reward`), GRPO/ECPO (:mod:`agents.align.grpo`), DPO
(:mod:`agents.align.dpo`) and their shared pieces (:mod:`agents.align.common`)."""
