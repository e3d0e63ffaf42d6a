"""Struts as points, stent contour and area, malapposition, batched over frames in torch."""

from __future__ import annotations

import math

import torch

from octseg.core.classes import STRUT
from octseg.core.contour import stent_contour
from octseg.geometry.components import components_from_flat, flat_indices_of
from octseg.geometry.lumen import TWO_PI, periodic_profile


def strut_points(
    lab: torch.Tensor,
    space: str,
    ps: float,
    center_px: tuple[float, float] | None,
    work: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids of the 8-connected strut components of label maps ``(B, H, W)``.

    Returns ``(frame, yx)``: the frame of each strut (ascending) and its point (y, x) in mm from
    the catheter centre. Polar components may wrap across the A-line seam; their centroid is the
    mean of the pixel positions in Cartesian mm weighted by the pixel area. ``work``: optional
    uint8 scratch ``(P, H, W)`` for the strut search (see :func:`flat_indices_of`).
    """
    polar = space == "polar"
    flat = flat_indices_of(lab, STRUT, work)
    frame, row, col, comp, n = components_from_flat(flat, tuple(lab.shape), wrap_rows=polar)
    dev = lab.device
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=dev), torch.zeros(0, 2, device=dev)
    if polar:
        a = lab.shape[1]
        theta = row.float() * (TWO_PI / a)
        r = col.float() * ps
        y, x = r * torch.sin(theta), r * torch.cos(theta)
        wgt = col.float().clamp(min=0.125)
    else:
        y = (row.float() - center_px[0]) * ps
        x = (col.float() - center_px[1]) * ps
        wgt = torch.ones_like(y)
    acc = torch.zeros(n, 3, device=dev)
    acc.index_add_(0, comp, torch.stack([y * wgt, x * wgt, wgt], 1))
    yx = acc[:, :2] / acc[:, 2:]
    cframe = torch.zeros(n, dtype=torch.long, device=dev)
    cframe.scatter_(0, comp, frame)
    return cframe, yx


def pack(frame: torch.Tensor, values: torch.Tensor, n_frames: int):
    """Scatter per-strut ``values`` (N, ...) sorted by frame into ``(B, Nmax, ...)`` + mask."""
    counts = torch.bincount(frame, minlength=n_frames)
    nmax = int(counts.max()) if frame.numel() else 0
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(frame.numel(), device=frame.device) - start[frame]
    out = values.new_zeros((n_frames, max(nmax, 1)) + tuple(values.shape[1:]))
    valid = torch.zeros(n_frames, max(nmax, 1), dtype=torch.bool, device=frame.device)
    out[frame, slot] = values
    valid[frame, slot] = True
    return out, valid, counts, slot


def stent_metrics(
    frame: torch.Tensor,
    yx: torch.Tensor,
    n_frames: int,
    cy: torch.Tensor,
    cx: torch.Tensor,
    lumen_profile,
    rho_l: torch.Tensor,
    threshold_mm: float,
    min_struts: int,
    samples_per_segment: int,
) -> dict[str, torch.Tensor]:
    """Per-strut angle/distance/malapposed and per-frame stent area, malapposition area.

    ``lumen_profile(query (B, M)) -> rho_L`` gives the lumen distance about the centroid at
    arbitrary angles; ``rho_l`` (B, n) is that profile on the n centroid rays.
    """
    dev = yx.device
    centre = torch.stack([cy, cx], 1).float()
    pts, valid, counts, slot = pack(frame, yx, n_frames)
    d = pts - centre[:, None, :]
    phi = torch.remainder(torch.atan2(d[..., 0], d[..., 1]), TWO_PI)
    dist = torch.sqrt((d * d).sum(-1))
    rho_at = lumen_profile(phi)
    mal_dist = rho_at - dist
    curve, cmask, area = stent_contour(pts, valid, centre, samples_per_segment)
    cd = curve - centre[:, None, :]
    cphi = torch.atan2(cd[..., 0], cd[..., 1])
    cdist = torch.sqrt((cd * cd).sum(-1))
    n = rho_l.shape[1]
    query = torch.arange(n, device=dev, dtype=torch.float32) * (TWO_PI / n)
    rho_s = periodic_profile(cphi, cdist, cmask, query)
    gap = (rho_l * rho_l - rho_s * rho_s).clamp(min=0)
    mal_area = 0.5 * torch.nan_to_num(gap).sum(1) * (TWO_PI / n)
    has_stent = counts >= min_struts
    lumen_ok = torch.isfinite(rho_l).all(1)
    nan = torch.full_like(area, float("nan"))
    malapposed = (mal_dist > threshold_mm) & valid & torch.isfinite(mal_dist)
    neg_inf = torch.full_like(mal_dist, -math.inf)
    max_mal = torch.where(valid & torch.isfinite(mal_dist), mal_dist, neg_inf).amax(1)
    return {
        "strut_frame": frame,
        "strut_angle_deg": torch.rad2deg(phi[frame, slot]),
        "strut_distance_mm": mal_dist[frame, slot],
        "strut_malapposed": malapposed[frame, slot],
        "n_struts": counts,
        "n_malapposed": malapposed.sum(1),
        "stent_area_mm2": torch.where(has_stent, area.float(), nan),
        "max_malapposition_mm": torch.where(torch.isfinite(max_mal), max_mal, nan),
        "malapposition_area_mm2": torch.where(has_stent & lumen_ok, mal_area, nan),
    }
