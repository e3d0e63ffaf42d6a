"""Batch inference over many pullbacks (``python infer.py``; docs/inference.md).

:mod:`~octseg.infer.inputs` finds the pullbacks, :mod:`~octseg.model.predictor` runs the model,
:mod:`~octseg.infer.pipeline` overlaps reading, the model and writing, :mod:`~octseg.infer.manifest`
makes the run resumable, :mod:`~octseg.report.overlay` / :mod:`~octseg.report.pullback` /
:mod:`~octseg.infer.cohort` write the overlays, the HTML report and the cohort summary.
"""

from octseg.infer.pipeline import InferSettings, run_inference

__all__ = ["InferSettings", "run_inference"]
