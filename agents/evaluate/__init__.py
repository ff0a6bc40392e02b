"""Evaluation: policies played on the same unseen days in the simulator
(:mod:`agents.evaluate.online`, ``python -m agents.evaluate.online``), their
metrics and confidence intervals (:mod:`agents.evaluate.metrics`), paired
comparisons (:mod:`agents.evaluate.paired`, :mod:`agents.evaluate.compare`),
offline metrics on held-out logs (:mod:`agents.evaluate.offline`,
:mod:`agents.evaluate.holdout`), result tables and figures
(:mod:`agents.evaluate.tables`) and the world beside KuaiLive's figures
(:mod:`agents.evaluate.calibration`).
"""
