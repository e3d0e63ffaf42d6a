"""Calcium by a majority of neighbouring frames: the post-processing's ``calcium_frame_vote``.

The network labels each frame on its own (with a few neighbours as input channels), and
neighbouring frames of a pullback 0.1-0.2 mm apart are near duplicates: the calcium border it
draws still wavers from frame to frame, and the per-frame maximum thickness, a maximum over the
rays of one frame, picks up each frame's excursions (docs/calcium_candidates.md, fifty-fourth
session). With ``calcium_frame_vote`` = k (odd, > 1) a tissue or calcium pixel is calcium when
more than half of the k frames around it (the frame itself and k // 2 on each side) have calcium
at that pixel: a median filter of the calcium mask along the pullback. Published pipelines clean
their per-frame calcium too (a conditional random field, Gharaibeh et al. 2019; with the missing
frames of a lesion interpolated, Lee et al. 2020). Along a lesion whose border grows or shrinks
steadily it keeps each frame's own border (the median of three nested borders is the middle
one); an excursion seen on one frame only goes.

Only calcium and background (tissue) pixels change: the lumen, struts and guidewire are the
network's. Frames are padded at the ends of the pullback by repeating the end frame, so an end
frame keeps its own calcium. Frames without lumen (``has`` false) are left as they are. Works on
the label maps (polar or Cartesian, catheter-centred, so a pixel is the same place in every
frame) in place, on the CPU, with at most k + 1 frames of masks held at once.
"""

from __future__ import annotations

import numpy as np

from octseg.core.classes import BACKGROUND, CALCIUM


def vote_calcium(labels: np.ndarray, window: int, has: np.ndarray | None = None) -> np.ndarray:
    """``labels`` ``(F, H, W)`` (in place, and returned) with calcium where more than half of the
    ``window`` frames around each pixel have calcium (see the module docstring); ``window`` 1:
    unchanged. ``has`` ``(F,)``: the frames that may change (default: all)."""
    if window % 2 == 0:
        raise ValueError(f"the window must be odd, got {window}")
    f = len(labels)
    if window <= 1 or f < 2:
        return labels
    half = window // 2
    masks: dict[int, np.ndarray] = {}

    def calcium(j: int) -> np.ndarray:
        j = min(max(j, 0), f - 1)  # the end frames repeated
        if j not in masks:
            masks[j] = labels[j] == CALCIUM  # read before frame j is changed
        return masks[j]

    for i in range(f):
        count = np.zeros(labels.shape[1:], np.int32)
        for j in range(i - half, i + half + 1):
            count += calcium(j)
        masks.pop(i - half - 1, None)  # no later window reaches it
        if has is not None and not has[i]:
            continue
        lab, keep = labels[i], count > half
        lab[keep & (lab == BACKGROUND)] = CALCIUM
        lab[~keep & (lab == CALCIUM)] = BACKGROUND
    return labels
