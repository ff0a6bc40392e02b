"""Running the workbench: the ``liveenv`` command line (:mod:`agents.run.cli`), run
directories (:mod:`agents.run.rundir`) and the pipeline of a run: log -> tokenizer ->
pretraining -> reward model -> alignment -> cascade -> evaluation -> report, each
stage resumable. ``liveenv demo`` runs all of it (:func:`agents.run.demo.run_demo`);
every other ``liveenv`` command runs one stage.
"""
