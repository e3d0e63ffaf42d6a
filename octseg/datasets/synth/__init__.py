"""Synthetic IVOCT pullbacks with exact ground truth (``octseg synth``).

- :mod:`octseg.datasets.synth.params`: every parameter of a pullback, drawn from a seed.
- :mod:`octseg.datasets.synth.anatomy`: the exact geometry of each frame (lumen, guidewire, calcium,
  struts).
- :mod:`octseg.datasets.synth.render`: label rasterisation and IVOCT-like image rendering (polar).
- :mod:`octseg.datasets.synth.truth`: the true measurements (``docs/metrics.md``) from the geometry.
- :mod:`octseg.datasets.synth.cohort`: writing pullbacks and cohorts in the dataset layout.

See ``docs/synth.md``.
"""

from __future__ import annotations

from octseg.datasets.synth.anatomy import Anatomy, FrameGeometry, draw_pullback
from octseg.datasets.synth.cohort import (
    PullbackSynth,
    describe_cohort,
    generate_cohort,
    grid_from,
    write_pullback,
)
from octseg.datasets.synth.params import PRESETS, Grid, PullbackParams

__all__ = [
    "PRESETS",
    "Anatomy",
    "FrameGeometry",
    "Grid",
    "PullbackParams",
    "PullbackSynth",
    "describe_cohort",
    "draw_pullback",
    "generate_cohort",
    "grid_from",
    "write_pullback",
]
