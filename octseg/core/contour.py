"""Closed curves through scattered points (stent struts), batched in torch.

The **stent contour** of a frame is a smooth closed curve through the strut points sorted by
angle about the lumen centroid: their distance from the centroid interpolated periodically in
angle by a cubic Hermite spline (tangents from the neighbouring struts, as Catmull-Rom's), so
across an arc without struts (the guidewire shadow, a side branch, struts not detected) the
curve follows the stent's round shape instead of cutting a chord through the lumen (a spline
in (y, x), used before, read apposed stents of the hybrid held-out set at a median 0.64 of the
lumen area across gaps of 150-180° and 0.36 across 180-270°; docs/metrics.md, Stent).
The stent area is the shoelace area of that curve sampled with ``samples_per_segment`` points
per segment. The geometry module and the synthetic and hybrid generators' ground truth all call
:func:`stent_contour`, so their definitions cannot drift apart.

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


def polar_by_angle(
    points: torch.Tensor, valid: torch.Tensor, center: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Angle in [0, 2*pi), distance and validity of points ``(B, N, 2)`` (y, x) about ``center``
    ``(B, 2)``, each ``(B, N)``, sorted by angle with the invalid points last."""
    d = points - center[:, None, :]
    ang = torch.remainder(torch.atan2(d[..., 0], d[..., 1]), 2 * math.pi)
    key = torch.where(valid, ang, torch.full_like(ang, 10.0))  # invalid after every angle
    order = torch.argsort(key, dim=1)
    dist = torch.sqrt((d * d).sum(-1))
    return tuple(torch.gather(x, 1, order) for x in (ang, dist, valid))


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


def _ring(x: torch.Tensor, count: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` (B, N) shifted by ``k`` along each row's first ``count`` entries, cyclically."""
    i = torch.arange(x.shape[1], device=x.device)[None, :]
    return torch.gather(x, 1, torch.remainder(i + k, count.clamp(min=1)[:, None]))


def stent_contour(
    points: torch.Tensor, valid: torch.Tensor, center: torch.Tensor, samples_per_segment: int = 32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The stent contour (module docstring) of each frame: samples ``(B, N * S, 2)`` (y, x),
    their mask (the first ``n_b * S`` of row ``b``; none with fewer than 3 struts) and the
    enclosed area (0 with fewer than 3 struts). ``points`` (B, N, 2), ``valid`` (B, N),
    ``center`` (B, 2): the lumen centroid."""
    theta, r, ok = polar_by_angle(points, valid, center)
    count = ok.sum(dim=1)
    step = torch.remainder(_ring(theta, count, 1) - theta, 2 * math.pi)  # to the next strut
    span = (_ring(step, count, -1) + step).clamp(min=1e-9)  # previous strut to the next one
    slope = (_ring(r, count, 1) - _ring(r, count, -1)) / span
    t = torch.arange(samples_per_segment, device=r.device, dtype=r.dtype)
    t = (t / samples_per_segment)[None, None, :]
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    r0, r1 = r[..., None], _ring(r, count, 1)[..., None]
    m0, m1 = (slope * step)[..., None], (_ring(slope, count, 1) * step)[..., None]
    rad = (h00 * r0 + h10 * m0 + h01 * r1 + h11 * m1).clamp(min=0)
    ang = theta[..., None] + t * step[..., None]
    curve = (
        center[:, None, None, :]
        + torch.stack([torch.sin(ang), torch.cos(ang)], -1) * rad[..., None]
    )
    b, n = ok.shape
    seg_ok = (torch.arange(n, device=r.device)[None, :] < count[:, None]) & (count[:, None] >= 3)
    mask = seg_ok[:, :, None].expand(-1, -1, samples_per_segment).reshape(b, -1)
    curve = curve.reshape(b, n * samples_per_segment, 2)
    return curve, mask, polygon_areas(curve[..., 0], curve[..., 1], mask)[0]
