"""Whether a pullback's frames look inverted (white for weak signal), from their grey levels.

Most of an IVOCT frame is dark: the flushed lumen and the tissue beyond the light's reach (and,
in Cartesian exports, the corners outside the scan circle). The hybrid polar frames built from
the real Danilov pullback have a median grey of at most 0.125 (its Cartesian frames, read
through the sepia map, at most 0.114). A display with white for weak signal (matplotlib's
"Greys", a "print" export, a MONOCHROME2 file holding MONOCHROME1 values) turns that into a
median near 0.9, and octseg reads such frames as they are: lumen bright, tissue dark.

``infer.py`` records ``median_level`` (:func:`level_metadata`) on the frames it segments, as
resampled onto the network's polar grid, and :func:`level_warnings` warns above
:data:`INVERTED_MEDIAN`. Nothing is inverted automatically. Opening a pullback stays lazy: the
levels are taken where the frames are decoded anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from octseg.io.color import display_warnings

INVERTED_MEDIAN = 0.6
"""Frames whose median grey level is above this look inverted (real frames: 0.125 or less;
inverted, 0.875 or more; frames of uniform noise, as some tests use, 0.5)."""


def level_metadata(frames: Sequence[np.ndarray]) -> dict[str, float]:
    """``{"median_level": m}``: the median of the frames' median grey (grey frames in [0, 1];
    infer.py passes the first, middle and last, :func:`octseg.io.color.display_sample`);
    nothing without frames."""
    if len(frames) == 0:
        return {}
    medians = [float(np.median(np.asarray(f, dtype=np.float32))) for f in frames]
    return {"median_level": round(float(np.median(medians)), 3)}


def level_warnings(metadata: Mapping[str, Any]) -> list[str]:
    """A warning when the frames look inverted (:func:`level_metadata`)."""
    level = metadata.get("median_level")
    if level is None or level <= INVERTED_MEDIAN:
        return []
    return [
        f"the frames look inverted (white for weak signal): their median grey level is "
        f"{level:.2f}, where IVOCT frames are mostly dark (0.13 or less on a real pullback); "
        "octseg reads them as they are, so the lumen reads as tissue: export them with black for "
        "weak signal"
    ]


def input_warnings(metadata: Mapping[str, Any]) -> list[str]:
    """Every warning about how a pullback's frames were displayed: a colour map octseg does
    not know (:func:`octseg.io.color.display_warnings`), inverted frames (:func:`level_warnings`).
    infer.py adds them to the pullback's warnings."""
    return display_warnings(metadata) + level_warnings(metadata)
