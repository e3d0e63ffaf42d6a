"""Closed curves through scattered points (stent struts), batched in torch.

The **stent contour** of a frame is the closed uniform Catmull-Rom spline through the strut
points sorted by angle about the lumen centroid; the stent area is the shoelace area of that
spline sampled with ``samples_per_segment`` points per segment. Both the geometry module and
the synthetic generator's ground truth use :func:`closed_catmull_rom`, so their definitions
cannot drift apart.

:func:`polygon_area_centroid` is the numpy shoelace area and centroid of one closed polygon
(float64), used by the synthetic generator's lumen truth and the review tool's lumen editor.
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


def polygon_area(samples: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Shoelace area of closed polylines whose valid samples come first (B, M, 2) -> (B,).

    Rows with no valid samples give 0.
    """
    b, m, _ = samples.shape
    count = mask.sum(dim=1)
    idx = torch.arange(m, device=samples.device)[None, :].expand(b, -1)
    nxt = torch.remainder(idx + 1, count.clamp(min=1)[:, None])
    q = torch.gather(samples, 1, nxt[..., None].expand(-1, -1, 2))
    cross = samples[..., 1] * q[..., 0] - q[..., 1] * samples[..., 0]  # x_i*y_{i+1} - x_{i+1}*y_i
    return 0.5 * (cross * mask).sum(dim=1).abs()


def stent_contour(
    points: torch.Tensor, valid: torch.Tensor, center: torch.Tensor, samples_per_segment: int = 32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stent contour samples, their mask, and the enclosed area for each frame (0 if < 3 struts)."""
    pts, ok = sort_by_angle(points, valid, center)
    curve, mask = closed_catmull_rom(pts, ok, samples_per_segment)
    return curve, mask, polygon_area(curve, mask)
