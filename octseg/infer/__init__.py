"""Batch inference over many pullbacks (``python infer.py``; docs/inference.md).

:mod:`~octseg.infer.inputs` finds the pullbacks, :mod:`~octseg.model.predictor` runs the model,
:mod:`~octseg.infer.pipeline` runs the stages of a run (:mod:`~octseg.infer.workers` overlaps
reading, the model and writing; :mod:`~octseg.infer.outputs` writes one pullback's outputs),
:mod:`~octseg.infer.manifest` makes the run resumable, :mod:`~octseg.infer.safety` guards the
output folder, :mod:`~octseg.infer.privacy` anonymises ids, :mod:`~octseg.report.overlay` /
:mod:`~octseg.report.pullback` / :mod:`~octseg.infer.cohort` write the overlays, the HTML report
and the cohort summary.
"""

from octseg.infer.pipeline import InferSettings, run_inference

__all__ = ["InferSettings", "run_inference"]
