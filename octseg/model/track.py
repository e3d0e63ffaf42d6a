"""Small calcium components kept where a lesion continues them: the minimum area, tracked
along the pullback.

The post-processing's ``calcium_min_area_mm2`` removes calcium components smaller than a
threshold frame by frame: specks that score no overlap and add arc and lesions to the clinical
tables. At the ends of a lesion, where it tapers, or where the imaged field cuts it at a far
wall, the network often finds only such small pieces of calcium that is there
(docs/calcium_candidates.md, forty-sixth session). With ``calcium_track_frames`` = k > 0 a small
component is kept when calcium that is kept lies on one of its catheter rays (the same angle) in
a frame at most k frames before or after it; what it keeps keeps in turn (chained), so a lesion
can be followed into its tapered end frame by frame. Components in no such neighbourhood are
removed as before. Hysteresis thresholding along the pullback, as :mod:`octseg.model.extend` is
along the A-lines: the components of at least the minimum area are the confident core.

The core is what the other calcium rules keep: :func:`split_small` takes the small components
out (the minimum area), the minimum-length rule then removes short lesions, and
:func:`restore_tracked` puts back the small components that the calcium left tracks. So a speck
never lengthens or rescues a lesion that the other rules remove; it only extends one they keep.
Works on the label maps (polar or Cartesian) in place, on the CPU, after the per-frame rules of
:func:`octseg.model.postprocess.postprocess_labels`.
"""

from __future__ import annotations

import numpy as np

from octseg.core.classes import BACKGROUND, CALCIUM
from octseg.geometry.components import label_with_areas
from octseg.geometry.summary import bridged_runs

MARGIN_DEG = 3.0
"""How far beside its own rays (degrees) a small component looks for the calcium that keeps it:
a lesion drifts, and the imaged field cuts it differently, from frame to frame (the
post-processing's ``guidewire_margin_deg`` tolerates the guidewire's drift by as much)."""


Piece = tuple[int, np.ndarray, np.ndarray]  # (frame, flat pixel indices, its rays)


def calcium_frames(labels: np.ndarray, step: int = 32) -> np.ndarray:
    """Whether each frame of ``labels`` ``(F, H, W)`` holds calcium, ``step`` frames compared at
    a time (no full-pullback temporary)."""
    parts = [
        (labels[a : a + step] == CALCIUM).any(axis=(1, 2)) for a in range(0, len(labels), step)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def split_small(
    labels: np.ndarray,
    ray_index: np.ndarray,
    col_area: np.ndarray,
    polar: bool,
    has: np.ndarray,
    min_mm2: float,
) -> list[Piece]:
    """The calcium components (8-connected; polar rows periodic) of area under ``min_mm2`` in
    the frames ``has`` (frames with lumen; others are left as they are) of ``labels``
    ``(F, H, W)``, made background in place and returned: ``(frame, flat pixel indices, their
    rays)``. ``ray_index`` ``(H * W,)``: the catheter ray of each pixel; ``col_area`` ``(W,)``:
    the area of a pixel of each column (mm²). What is left is the minimum area's result."""
    pieces: list[Piece] = []
    for f in np.flatnonzero(np.asarray(has, bool)):
        pieces += _components(labels[f], f, ray_index, col_area, polar, min_mm2)
    for f, pixels, _ in pieces:
        labels[f].reshape(-1)[pixels] = BACKGROUND
    return pieces


def restore_tracked(
    labels: np.ndarray,
    pieces: list[Piece],
    ray_index: np.ndarray,
    n_rays: int,
    has: np.ndarray,
    frames: int,
    max_gap_frames: int,
    margin_rays: int | None = None,
) -> np.ndarray:
    """``labels`` with the ``pieces`` (:func:`split_small`) that the calcium now in ``labels``
    (frames ``has``: the core the other rules kept) tracks, chained, back as calcium (in
    place; module docstring): within ``frames`` frames (0: none) and ``margin_rays`` rays of
    ``n_rays`` round the catheter (None: :data:`MARGIN_DEG` in rays). Pieces that would form a
    lesion of their own (runs of frames with calcium, gaps of ``max_gap_frames`` bridged, as
    the geometry's lesions) with no core frame in it stay out: a ``frames`` larger than
    ``max_gap_frames`` + 1 reaches past the lesion it tracks."""
    if margin_rays is None:
        margin_rays = int(np.ceil(MARGIN_DEG * n_rays / 360 - 1e-9))
    present = calcium_frames(labels)
    core = present & np.asarray(has, bool)
    kept = np.zeros((len(labels), n_rays), bool)
    for f in np.flatnonzero(core):
        kept[f, ray_index[np.flatnonzero(labels[f] == CALCIUM)]] = True
    tracked = _track(pieces, kept, frames, margin_rays)
    flags = present.copy()
    flags[[f for f, _, _ in tracked]] = True
    for i0, i1 in bridged_runs(range(len(flags)), flags.tolist(), max_gap_frames):
        if not core[i0 : i1 + 1].any():
            tracked = [t for t in tracked if not i0 <= t[0] <= i1]
    for f, pixels, _ in tracked:
        labels[f].reshape(-1)[pixels] = CALCIUM
    return labels


def _components(lab2d, f, ray_index, col_area, polar, min_mm2) -> list[Piece]:
    """The calcium components of frame ``f`` under ``min_mm2``."""
    ca = lab2d == CALCIUM
    if not ca.any():
        return []
    comp, area, c0 = label_with_areas(ca, col_area, polar)
    rows, cc = np.nonzero(comp)
    ids = comp[rows, cc]
    small = area[ids - 1] < min_mm2
    ids, flat = ids[small], (rows * lab2d.shape[1] + cc + c0)[small]
    order = np.argsort(ids, kind="stable")
    ids, flat = ids[order], flat[order]
    cuts = np.flatnonzero(np.diff(ids)) + 1
    return [(f, p, np.unique(ray_index[p])) for p in np.split(flat, cuts) if p.size]


def _track(small: list[Piece], kept: np.ndarray, frames: int, margin_rays: int) -> list[Piece]:
    """The pieces that ``kept`` ``(F, n_rays)`` tracks within ``frames`` frames and
    ``margin_rays`` rays, chained (a tracked piece's own rays join ``kept``)."""
    if frames <= 0:
        return []
    n = kept.shape[1]
    tracked: list[Piece] = []
    pending = [(f, p, r, _widened(r, margin_rays, n)) for f, p, r in small]
    changed = True
    while changed and pending:
        changed = False
        left = []
        for item in pending:  # the order flips each pass: chains grow both ways in few passes
            f, _, rays, wide = item
            near = kept[max(f - frames, 0) : f + frames + 1, wide]
            near = np.delete(near, min(f, frames), axis=0)  # not its own frame
            if near.any():
                kept[f, rays] = True
                tracked.append(item[:3])
                changed = True
            else:
                left.append(item)
        pending = left[::-1]
    return tracked


def _widened(rays: np.ndarray, margin: int, n: int) -> np.ndarray:
    """The rays ``rays`` and those at most ``margin`` away (periodic over ``n`` rays)."""
    if margin <= 0:
        return rays
    return np.unique((rays[:, None] + np.arange(-margin, margin + 1)[None, :]) % n)
