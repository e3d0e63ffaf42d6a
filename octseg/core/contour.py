"""Closed curves through scattered points (stent struts), batched in torch.

The **stent contour** of a frame is the closed uniform Catmull-Rom spline through the strut
points sorted by angle about the lumen centroid; the stent area is the shoelace area of that
spline sampled with ``samples_per_segment`` points per segment. Both the geometry module and
the synthetic generator's ground truth use :func:`closed_catmull_rom`, so their definitions
cannot drift apart.

:func:`polygon_area_centroid` is the shoelace area and centroid of one closed polygon (numpy,
float64: the synthetic generator's lumen truth, the review tool's lumen editor);
:func:`polygon_areas` is the same formula batched in torch (the geometry module's lumen area and
centroid, the stent area).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def polygon_area_centroid(poly: np.ndarray) -> tuple[float, np.ndarray]:
    """Shoelace area and area centroid (y, x) of a closed polygon (M, 2) in (y, x)."""
    y, x = poly[:, 0], poly[:, 1]
    y1, x1 = np.roll(y, -1), np.roll(x, -1)
    cross = x * y1 - x1 * y
    a = 0.5 * cross.sum()
    cx = ((x + x1) * cross).sum() / (6 * a)
    cy = ((y + y1) * cross).sum() / (6 * a)
    return abs(float(a)), np.array([cy, cx])


def sort_by_angle(
    points: torch.Tensor, valid: torch.Tensor, center: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort points ``(B, N, 2)`` (y, x) by angle about ``center`` ``(B, 2)``; invalid ones last."""
    d = points - center[:, None, :]
    ang = torch.remainder(torch.atan2(d[..., 0], d[..., 1]), 2 * math.pi)
    ang = torch.where(valid, ang, torch.full_like(ang, 10.0))  # invalid after every angle
    order = torch.argsort(ang, dim=1)
    pts = torch.gather(points, 1, order[..., None].expand(-1, -1, 2))
    return pts, torch.gather(valid, 1, order)


def closed_catmull_rom(
    points: torch.Tensor, valid: torch.Tensor, samples_per_segment: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample closed Catmull-Rom splines through ordered points.

    ``points`` (B, N, 2) are ordered along the curve with the ``n_b = valid[b].sum()`` valid ones
    first. Returns samples ``(B, N * S, 2)`` and their validity mask; the spline of row ``b`` is
    its first ``n_b * S`` samples (rows with fewer than 3 points are all invalid).
    """
    b, n, _ = points.shape
    dev = points.device
    count = valid.sum(dim=1)  # (B,)
    safe = count.clamp(min=1)[:, None]
    i = torch.arange(n, device=dev)[None, :].expand(b, -1)

    def at(k: int) -> torch.Tensor:
        idx = torch.remainder(i + k, safe)
        return torch.gather(points, 1, idx[..., None].expand(-1, -1, 2))

    p0, p1, p2, p3 = at(-1), at(0), at(1), at(2)
    t = torch.arange(samples_per_segment, device=dev, dtype=points.dtype) / samples_per_segment
    t = t[None, None, :, None]
    t2, t3 = t * t, t * t * t
    p0, p1, p2, p3 = (p[:, :, None, :] for p in (p0, p1, p2, p3))
    curve = 0.5 * (
        2 * p1
        + (-p0 + p2) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
        + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
    )
    seg_ok = (i < count[:, None]) & (count[:, None] >= 3)
    mask = seg_ok[:, :, None].expand(-1, -1, samples_per_segment)
    return curve.reshape(b, n * samples_per_segment, 2), mask.reshape(b, -1)


def polygon_areas(
    y: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shoelace area and area centroid (cy, cx) of closed polygons with vertices ``(y, x)``
    (B, M) each, batched: :func:`polygon_area_centroid` in torch. With ``mask`` (B, M) only the
    valid vertices, which come first, make the polygon. Rows of zero area (or no valid vertex)
    give area 0 and centroid (0, 0)."""
    if mask is None:
        y1, x1 = torch.roll(y, -1, 1), torch.roll(x, -1, 1)
    else:
        b, m = y.shape
        idx = torch.arange(m, device=y.device)[None, :].expand(b, -1)
        nxt = torch.remainder(idx + 1, mask.sum(dim=1).clamp(min=1)[:, None])
        y1, x1 = torch.gather(y, 1, nxt), torch.gather(x, 1, nxt)
    cross = x * y1 - x1 * y
    if mask is not None:
        cross = cross * mask
    a2 = cross.sum(1)  # twice the signed area
    safe = torch.where(a2.abs() > 0, a2, torch.ones_like(a2))
    cx = ((x + x1) * cross).sum(1) / (3 * safe)
    cy = ((y + y1) * cross).sum(1) / (3 * safe)
    zero = torch.zeros_like(cx)
    return 0.5 * a2.abs(), torch.where(a2 != 0, cy, zero), torch.where(a2 != 0, cx, zero)


def stent_contour(
    points: torch.Tensor, valid: torch.Tensor, center: torch.Tensor, samples_per_segment: int = 32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stent contour samples, their mask, and the enclosed area for each frame (0 if < 3 struts)."""
    pts, ok = sort_by_angle(points, valid, center)
    curve, mask = closed_catmull_rom(pts, ok, samples_per_segment)
    return curve, mask, polygon_areas(curve[..., 0], curve[..., 1], mask)[0]
