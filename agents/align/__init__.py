"""Alignment of the generator to a weighted mix of objectives.

:mod:`agents.align.registry` names every aligner (GRPO/ECPO in
:mod:`agents.align.grpo`, DPO in :mod:`agents.align.dpo`); they share the loop
of :mod:`agents.align.loop` over its arguments (:mod:`agents.align.args`), the
request pools of :mod:`agents.align.pool`, the generator as an actor
(:mod:`agents.align.actor`) and the group objective (:mod:`agents.align.objective`).
:mod:`agents.align.sweep` aligns over a grid of reward weights, which users
write as :mod:`agents.align.weights` reads them.
"""
