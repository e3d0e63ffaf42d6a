"""Calcium arc, thickness, depth and area, batched over frames in torch.

Rays are cast from each frame's lumen centroid (``n_rays`` rays over 360 degrees) and sampled by
nearest-neighbour lookup every ``step`` mm (one pixel): for Cartesian input straight on the pixel
grid, for polar input by mapping each sample to (A-line, depth) about the catheter (the A-line
axis wraps).
"""

from __future__ import annotations

import math

import torch

from octseg.classes import CALCIUM, GUIDEWIRE
from octseg.geometry.lumen import TWO_PI, with_sentinel


def sample_centroid_rays(
    lab: torch.Tensor,
    space: str,
    ps: float,
    center_px: tuple[float, float] | None,
    cy: torch.Tensor,
    cx: torch.Tensor,
    n_rays: int,
    n_samples: int,
    step: float,
) -> torch.Tensor:
    """Labels ``(B, n_rays, n_samples)`` along rays from the centres ``(cy, cx)`` (mm from the
    catheter); sample ``k`` of ray ``q`` lies at distance ``k * step`` mm, angle ``2*pi*q/n``."""
    b, h, w = lab.shape
    dev = lab.device
    phi = torch.arange(n_rays, device=dev, dtype=torch.float32) * (TWO_PI / n_rays)
    t = torch.arange(n_samples, device=dev, dtype=torch.float32) * step
    sy = (t[None, :] * torch.sin(phi)[:, None])[None]  # (1, n, S) mm
    sx = (t[None, :] * torch.cos(phi)[:, None])[None]
    y = cy.float()[:, None, None] + sy
    x = cx.float()[:, None, None] + sx
    if space == "cartesian":
        rows = torch.round(center_px[0] + y / ps).long()
        cols = torch.round(center_px[1] + x / ps).long()
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    else:  # polar: rows are A-lines (angle), columns depth
        rows = torch.remainder(torch.round(torch.atan2(y, x) * (h / TWO_PI)).long(), h)
        cols = torch.round(torch.sqrt(y * y + x * x) / ps).long()
        inside = cols < w
    del y, x
    base = (torch.arange(b, device=dev) * (h * w + 1))[:, None, None]
    idx = torch.where(inside, rows * w + cols, torch.full_like(rows, h * w)) + base
    return torch.take(with_sentinel(lab), idx)


def bridge_shadow(hit: torch.Tensor, shadow: torch.Tensor) -> torch.Tensor:
    """Rays ``(B, n)`` inside a guidewire-shadow run whose nearest non-shadow rays on both sides
    (wrapping) hit calcium."""
    b, n = hit.shape
    dev = hit.device
    gw = shadow & ~hit
    keep3 = (~gw).repeat(1, 3)
    hit3 = hit.repeat(1, 3)
    pos = torch.arange(3 * n, device=dev).expand(b, -1)
    neg = torch.full_like(pos, -1)
    left = torch.cummax(torch.where(keep3, pos, neg), 1).values[:, n : 2 * n]
    right = (3 * n - 1 - torch.cummax(torch.where(keep3.flip(1), pos, neg), 1).values).flip(1)
    right = right[:, n : 2 * n]
    lh = torch.gather(hit3, 1, left.clamp(0, 3 * n - 1)) & (left >= 0)
    rh = torch.gather(hit3, 1, right.clamp(0, 3 * n - 1)) & (right < 3 * n)
    return gw & lh & rh


def calcium_metrics(
    vals: torch.Tensor, step: float, rho_l: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-frame arc (deg), max thickness, min depth (mm) from centroid-ray samples ``(B, n, S)``
    and the lumen profile ``rho_l`` (B, n) on the same rays (NaN where there is no lumen)."""
    n = vals.shape[1]
    ca = vals == CALCIUM
    hit = ca.any(-1)
    shadow = (vals == GUIDEWIRE).any(-1)
    bridged = bridge_shadow(hit, shadow)
    arc = (hit | bridged).sum(1).float() * (360.0 / n)
    thick = ca.sum(-1).amax(1).float() * step
    first = ca.to(torch.uint8).argmax(-1).float()
    lead = ((first - 0.5) * step).clamp(min=0)
    depth = torch.where(hit, (lead - rho_l).clamp(min=0), torch.full_like(lead, math.inf))
    depth = depth.amin(1)
    any_ca = hit.any(1)
    nan = torch.full_like(arc, float("nan"))
    depth = torch.where(any_ca & torch.isfinite(depth), depth, nan)
    return {
        "calcium_arc_deg": torch.where(any_ca, arc, nan),
        "calcium_max_thickness_mm": torch.where(any_ca, thick, nan),
        "calcium_min_depth_mm": depth,
    }


def calcium_area(lab: torch.Tensor, space: str, ps: float) -> torch.Tensor:
    """Calcium pixel area (mm²) per frame; polar pixels weighted by their annular area."""
    ca = lab == CALCIUM
    if space == "cartesian":
        return ca.sum((1, 2)).float() * (ps * ps)
    a, r = lab.shape[1:]
    j = torch.arange(r, device=lab.device, dtype=torch.float32).clamp(min=0.125)
    per_col = ca.sum(1).float()  # (B, R)
    return (per_col * j).sum(1) * (ps * ps * TWO_PI / a)
