"""Half-degree direction bins about a frame's lumen centroid (720 per turn): where the guidewire
shadow, the imaged field's edge or a lumen running out of the field forbid an insert, and the
arcs trimmed to what is left. Used by the hybrid draws and frame assembly
(:mod:`octseg.datasets.hybrid.draw`, :mod:`octseg.datasets.hybrid.cohort`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from octseg.core.classes import LUMEN
from octseg.datasets.hybrid.insert import (
    TWO_PI,
    CalciumSpec,
    LumenGeometry,
    dilate_periodic,
    polar_xy,
)


def forbidden_bins(sector: np.ndarray, g: LumenGeometry, margin_deg: float = 3.0) -> np.ndarray:
    """720 half-degree direction bins about the centroid that the guidewire shadow covers
    (sector A-lines from the lumen border to 2 mm behind it), widened by ``margin_deg``."""
    bins = np.zeros(720, dtype=bool)
    idx = np.nonzero(sector)[0]
    if idx.size == 0:
        return bins
    a = sector.size
    th = idx * (TWO_PI / a)
    depths = np.linspace(0.0, 2.0, 21)
    r = g.edge_mm[idx][:, None] + depths[None, :]
    y, x = r * np.sin(th)[:, None], r * np.cos(th)[:, None]
    phi = np.arctan2(y - g.centroid[0], x - g.centroid[1]) % TWO_PI
    b = np.unique((phi / TWO_PI * 720).astype(int) % 720)
    bins[b] = True
    return dilate_periodic(bins, int(round(margin_deg * 2)))


PAST_FIELD_FRONT_MM = 0.1  # of a lesion that may run past the field: what must lie inside


def field_bins(
    g: LumenGeometry,
    spec: CalciumSpec,
    field_mm: float,
    margin_mm: float = 0.3,
    past_field: bool = False,
) -> np.ndarray:
    """Half-degree bins about the centroid where the calcium would leave the imaged field
    (or where the lumen itself reaches it: a side branch, no wall to put calcium in). With
    ``past_field`` only the lesion's front (its depth + :data:`PAST_FIELD_FRONT_MM`) counts."""
    extent = spec.depth_mm + spec.thickness_mm * (1 + 1.5 * spec.irregularity)
    if past_field:
        extent = spec.depth_mm + PAST_FIELD_FRONT_MM
    return extent_bins(g, extent, field_mm, margin_mm)


def extent_bins(g: LumenGeometry, extent_mm: float, field_mm: float, margin_mm: float = 0.3):
    """Half-degree bins about the centroid where an insert reaching ``extent_mm`` behind the
    lumen contour would leave the field (or where the lumen reaches the field's edge)."""
    outer, edge = border_points(g, extent_mm), border_points(g)
    return (np.hypot(*outer.T) > field_mm - margin_mm) | (np.hypot(*edge.T) > field_mm - 0.6)


def border_points(g: LumenGeometry, behind_mm: float = 0.0) -> np.ndarray:
    """(720, 2) (y, x) mm from the catheter: ``behind_mm`` behind the lumen border on each
    half-degree direction about the centroid (bin centres)."""
    phi = (np.arange(720) + 0.5) * (math.pi / 360)
    r = g.rho(phi) + behind_mm
    return g.centroid[None, :] + r[:, None] * np.stack([np.sin(phi), np.cos(phi)], 1)


def trim_sector(
    center_deg: float, arc_deg: float, forbidden: np.ndarray, min_arc_deg: float = 10.0
) -> tuple[float, float] | None:
    """The largest part (centre, arc) of an arc outside the forbidden half-degree bins."""
    if not forbidden.any():
        return center_deg, arc_deg
    n = int(np.floor(arc_deg * 2))
    start = center_deg - arc_deg / 2
    dirs = start + 0.25 + 0.5 * np.arange(n)  # half-degree samples along the arc
    ok = ~forbidden[np.floor(dirs * 2).astype(int) % 720]
    if ok.all():
        return center_deg, arc_deg
    best, cur, best_end = 0, 0, -1
    for i, v in enumerate(ok):
        cur = cur + 1 if v else 0
        if cur > best:
            best, best_end = cur, i
    arc = best * 0.5 - 0.5  # half a bin of margin
    if arc < min_arc_deg:
        return None
    i0 = best_end - best + 1
    return (start + 0.25 * (i0 + best_end + 1)) % 360, arc


def trim_arc(
    spec: CalciumSpec, forbidden: np.ndarray, min_arc_deg: float = 10.0
) -> CalciumSpec | None:
    """The largest part of ``spec``'s arc outside the forbidden half-degree bins (or None)."""
    t = trim_sector(spec.center_deg, spec.arc_deg, forbidden, min_arc_deg)
    if t is None:
        return None
    if t == (spec.center_deg, spec.arc_deg):
        return spec
    return replace(spec, center_deg=t[0], arc_deg=t[1])


def arc_bins(center_deg: float, arc_deg: float, margin_deg: float = 0.0) -> np.ndarray:
    """Half-degree bins covered by an arc widened by ``margin_deg`` on each side."""
    half = arc_deg / 2 + margin_deg
    d = np.abs(((np.arange(720) + 0.5) / 2 - center_deg + 180) % 360 - 180)
    return d <= half


def lumen_beyond_bins(labels: np.ndarray, g: LumenGeometry, margin_deg: float = 3.0) -> np.ndarray:
    """Half-degree bins about the centroid (widened by ``margin_deg``) where the real label map
    has lumen more than 2 pixels beyond the measured lumen contour (a side branch or a lumen
    island the expert labelled, which the geometry's contour does not include): inserts keep
    off them, since they relabel only background and would get a hole there."""
    a, r = labels.shape
    yy, xx = polar_xy(a, r, g.ps)
    dy, dx = yy - g.centroid[0], xx - g.centroid[1]
    phi = np.arctan2(dy, dx)
    far = (labels == LUMEN) & (np.hypot(dy, dx) > g.rho(phi) + 2 * g.ps)
    bins = np.zeros(720, dtype=bool)
    bins[np.unique((phi[far] % TWO_PI / TWO_PI * 720).astype(int) % 720)] = True
    return dilate_periodic(bins, int(round(margin_deg * 2)))


def union_bins(masks: list[np.ndarray]) -> np.ndarray:
    return np.logical_or.reduce(masks) if masks else np.zeros(720, dtype=bool)
