"""Batch inference over many pullbacks (``python infer.py``; docs/inference.md).

:mod:`~octseg.infer.inputs` finds the pullbacks, :mod:`~octseg.infer.predictor` runs the model,
:mod:`~octseg.infer.pipeline` overlaps reading, the model and writing, :mod:`~octseg.infer.manifest`
makes the run resumable, :mod:`~octseg.infer.overlay` / :mod:`~octseg.infer.report` /
:mod:`~octseg.infer.cohort` write the overlays, the HTML report and the cohort summary.
"""

from octseg.infer.pipeline import InferSettings, run_inference

__all__ = ["InferSettings", "run_inference"]
