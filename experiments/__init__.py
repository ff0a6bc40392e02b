"""Research experiments, run as ``python -m experiments.<name>``: ablations of the
generator (:mod:`experiments.ablate`), static against dynamic semantic IDs
(:mod:`experiments.sid_experiments`) and the baselines' reference table
(:mod:`experiments.baseline_results`). Their figures are in BENCHMARKS.md."""
