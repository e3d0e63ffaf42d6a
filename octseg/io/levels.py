"""Whether a pullback's frames look inverted (white for weak signal) or have no black, from
their grey levels.

Most of an IVOCT frame is dark: the flushed lumen and the tissue beyond the light's reach (and,
in Cartesian exports, the corners outside the scan circle). The hybrid polar frames built from
the real Danilov pullback have a median grey of at most 0.125 (its Cartesian frames, read
through the sepia map, at most 0.114). A display with white for weak signal (matplotlib's
"Greys", a "print" export, a MONOCHROME2 file holding MONOCHROME1 values) turns that into a
median near 0.9, and octseg reads such frames as they are: lumen bright, tissue dark.

``infer.py`` records ``median_level`` and ``dark_level`` (:func:`level_metadata`) on the frames
it segments, as resampled onto the network's polar grid, and :func:`level_warnings` warns above
:data:`INVERTED_MEDIAN`, or, for frames with no black (a raised black level, a colour map whose
darkest colour is not black), above :data:`DARK_FLOOR`. Nothing is inverted automatically.
Opening a pullback stays lazy: the levels are taken where the frames are decoded anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from octseg.io.color import display_warnings

DARK_FLOOR = 0.1
"""Frames whose darkest 1% read above this have no black: a raised black level (a display
window), or a colour map whose darkest colour is not black read through the sepia curve
(matplotlib's "YlOrBr_r" 0.41, "Blues_r" 0.35 on a real frame). Real frames: 0.016 or less on
the hybrid polar frames, 0.000 on the Danilov pullback's Cartesian frames."""

INVERTED_MEDIAN = 0.6
"""Frames whose median grey level is above this look inverted (real frames: 0.125 or less;
inverted, 0.875 or more; frames of uniform noise, as some tests use, 0.5)."""


def level_metadata(frames: Sequence[np.ndarray]) -> dict[str, float]:
    """``{"median_level": m, "dark_level": d}``: over the frames (grey, in [0, 1]; infer.py
    passes the first, middle and last, :func:`octseg.io.color.display_sample`), the median of
    each frame's median grey and of its 1st percentile; nothing without frames."""
    if len(frames) == 0:
        return {}
    grey = [np.asarray(f, dtype=np.float32) for f in frames]
    median = float(np.median([np.median(g) for g in grey]))
    dark = float(np.median([np.percentile(g, 1) for g in grey]))
    return {"median_level": round(median, 3), "dark_level": round(dark, 3)}


def level_warnings(metadata: Mapping[str, Any]) -> list[str]:
    """A warning when the frames look inverted, else when they have no black
    (:func:`level_metadata`)."""
    level, dark = metadata.get("median_level"), metadata.get("dark_level")
    if level is not None and level > INVERTED_MEDIAN:
        return [
            f"the frames look inverted (white for weak signal): their median grey level is "
            f"{level:.2f}, where IVOCT frames are mostly dark (0.13 or less on a real "
            "pullback); octseg reads them as they are, so the lumen reads as tissue: export "
            "them with black for weak signal"
        ]
    if dark is not None and dark > DARK_FLOOR:
        return [
            f"the frames have no black: their darkest 1% read {dark:.2f} and above, where a "
            "flushed lumen reads near 0 (0.02 or less on a real pullback): a raised black "
            "level, or a colour map whose darkest colour is not black; the lumen may be missed: "
            "export the frames in grey or sepia with black for weak signal"
        ]
    return []


def input_warnings(metadata: Mapping[str, Any]) -> list[str]:
    """Every warning about how a pullback's frames were displayed: a colour map octseg does
    not know (:func:`octseg.io.color.display_warnings`), inverted frames (:func:`level_warnings`).
    infer.py adds them to the pullback's warnings."""
    return display_warnings(metadata) + level_warnings(metadata)
