"""Evaluate automated measurements against manual ones (Hydra entry point).

    python evaluate.py auto=<inference output | cohort folder> manual=<folder> out=<folder>
    python evaluate.py self_check=true auto=<synthetic cohort> out=<folder> [noise=1.0]

Thin wrapper around the package's evaluation job (:func:`octseg.jobs.main`; the same job as
``python -m octseg.jobs evaluate ...``). Settings: ``octseg.evaluate.settings.EvaluationSettings``
(``settings.*``). The same evaluation with flags: ``octseg evaluate --help``.
"""

from octseg.jobs import main

if __name__ == "__main__":
    main("evaluate")
