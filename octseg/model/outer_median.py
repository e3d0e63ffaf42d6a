"""The outer calcium border along the pullback: the post-processing's ``calcium_outer_median``.

The network labels each frame on its own (with a few neighbours as input channels), and
neighbouring frames of a pullback 0.1-0.2 mm apart are near duplicates. Where calcium fades
into the tissue behind it the outer border the network draws wavers from frame to frame, and
the per-frame maximum thickness, a maximum over the rays of one frame, picks up each frame's
excursions (docs/calcium_candidates.md, fifty-fourth session). With ``calcium_outer_median`` = k
(odd, > 1), on each catheter ray where all k frames around a frame have calcium, that frame's
outer calcium border (the farthest calcium from the catheter on the ray) becomes the median of
the k frames' outer borders: calcium beyond it becomes tissue (a second deposit farther out on
the ray too), tissue between the frame's own border and it becomes calcium. Where the median
lies nearer than the frame's inner calcium border (a deep deposit under shallow neighbours: not
the same deposit) the ray keeps its calcium as it is. So no ray loses its calcium, none gains
any where it has none, the inner border (the depth) stays, and in polar frames so does the arc.
In Cartesian frames a ray is the wedge of pixels between two catheter rays, so a grown border
can reach a ray of the geometry's (from the lumen centroid) that had no calcium: the arc can
move by about one ray (0.5°). At the ends of a lesion or of its arc, and within ``k // 2``
frames of the pullback's ends, each frame keeps its own border; so does a frame next to a frame
without lumen, which is no frame's neighbour (``postprocess._outer_median``). Published
pipelines clean their per-frame calcium too (a conditional random field, Gharaibeh et al. 2019;
with the missing frames of a lesion interpolated, Lee et al. 2020).

Works on chunks of label maps with the catheter rays of :class:`octseg.model.postprocess._Rays`
(polar: the A-lines; Cartesian: the ray before each pixel, ``n_rays`` of them), in torch: one
pass for every frame's calcium extent ``(F, n_rays)``, one to apply the medians.
"""

from __future__ import annotations

import math

import torch

from octseg.core.classes import BACKGROUND, CALCIUM


def calcium_extent(
    lab: torch.Tensor, index: torch.Tensor, r: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame and ray of labels ``(B, H, W)``: the smallest and the largest radius ``r`` of a
    calcium pixel on the ray (the inner and the outer border), -1 for both where the ray has
    none. ``index`` / ``r`` ``(H * W,)``: each pixel's ray and radius."""
    b = lab.shape[0]
    ca = lab.reshape(b, -1) == CALCIUM
    at, rr = index.expand(b, -1), r.expand(b, -1)
    outer = torch.full((b, n), -1.0, device=lab.device)
    outer.scatter_reduce_(1, at, torch.where(ca, rr, -1.0), "amax")
    inner = torch.full((b, n), math.inf, device=lab.device)
    inner.scatter_reduce_(1, at, torch.where(ca, rr, math.inf), "amin")
    return torch.where(outer >= 0, inner, -1.0), outer


def median_borders(outer: torch.Tensor, window: int) -> torch.Tensor:
    """``outer`` ``(F, N)`` (-1: no calcium on the ray) with each value replaced by the median of
    the ``window`` (odd) frames around it where all of them have calcium on that ray (else
    kept)."""
    if window % 2 == 0:
        raise ValueError(f"the window must be odd, got {window}")
    f, half = outer.shape[0], window // 2
    if window <= 1 or f < window:
        return outer
    windows = outer.unfold(0, window, 1)  # (F - k + 1, N, k): the k frames around each
    full = (windows >= 0).all(-1)
    out = outer.clone()
    mid = out[half : f - half]
    mid.copy_(torch.where(full, windows.median(-1).values, mid))
    return out


def apply_borders(
    lab: torch.Tensor,
    inner: torch.Tensor,
    own: torch.Tensor,
    new: torch.Tensor,
    index: torch.Tensor,
    r: torch.Tensor,
) -> None:
    """Labels ``(B, H, W)`` in place: on each ray, calcium beyond ``new`` becomes tissue and
    tissue beyond ``own`` up to ``new`` becomes calcium (``inner``, ``own``, ``new``: ``(B, N)``,
    -1 where the ray has none). A ray whose ``new`` lies nearer than its ``inner`` border keeps
    its calcium as it is: the neighbours' calcium there ends before this frame's begins."""
    b = lab.shape[0]
    flat = lab.view(b, -1)
    at = index.expand(b, -1)
    new = torch.where(new >= inner, new, own)
    o, m = torch.gather(own, 1, at), torch.gather(new, 1, at)
    rr = r.expand(b, -1)
    cut = (flat == CALCIUM) & (rr > m)
    grow = (flat == BACKGROUND) & (rr > o) & (rr <= m) & (o >= 0)
    flat[cut] = BACKGROUND
    flat[grow] = CALCIUM
