"""Evaluation of automated measurements against manual ones (a core lab's reading).

``evaluate(auto, manual, out, settings)`` reads both sides (:mod:`.inputs`), pairs frames,
lesions and struts (:mod:`.matching`), computes agreement statistics (:mod:`.stats`) and overlap
metrics (:mod:`.segmentation`), and writes ``metrics.json``, CSV tables, plots and an HTML report
(:mod:`.report`). Formats and definitions: ``docs/evaluation.md``.
"""

from __future__ import annotations

from octseg.evaluate.pipeline import Evaluation, EvaluationSettings, evaluate

__all__ = ["Evaluation", "EvaluationSettings", "evaluate"]
