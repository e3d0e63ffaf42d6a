"""True calcium columns of a frame from its continuous calcium shapes, by dense ray casting.

The shapes are the generating ones (:func:`octseg.datasets.hybrid.insert.calcium_margin`: signed
margin >= 0 inside), not the painted labels. Rays are cast from the centroid of the lumen the
frame *ends up with* (a calcified nodule moves the lumen border and its centroid), every
``360 / n_rays`` degrees, sampled every ``step`` mm out to the imaged field; the definitions are
those of docs/metrics.md (calcium): arc = the angular measure of the rays that meet calcium;
maximum thickness = the largest calcium length along one ray, and where it lies
(``octseg.geometry.calcium.thickest_angle_deg``: the product's rule on the lengths in pixels, so
an even lesion gives its middle as the product does); minimum depth = the smallest
distance from the lumen contour to the first calcium point on a ray (0 where the calcium *is*
the lumen border, as on a nodule); area = the shapes' area inside the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from octseg.datasets.hybrid.insert import LumenGeometry
from octseg.geometry.calcium import thickest_angle_deg

Margin = Callable[[np.ndarray, np.ndarray], np.ndarray]


def union_margin(margins: Sequence[Margin]) -> Margin:
    """The margin of the union of shapes (the largest margin)."""

    def m(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.maximum.reduce([f(y, x) for f in margins])

    return m


def shape_calcium_columns(
    g: LumenGeometry,
    margin: Margin,
    field_mm: float,
    *,
    n_rays: int = 1440,
    step_mm: float | None = None,
    chunk: int = 180,
) -> dict[str, float]:
    """``calcium_arc_deg``, ``calcium_max_thickness_mm`` (and its ray,
    ``calcium_max_thickness_angle_deg``), ``calcium_min_depth_mm`` and ``calcium_area_mm2`` of
    the shape(s) ``margin`` about the lumen ``g``, inside the field of radius ``field_mm`` about
    the catheter. ``step_mm`` defaults to a quarter pixel."""
    step = step_mm or g.ps / 4
    dphi = 2 * math.pi / n_rays
    r_max = field_mm + float(np.hypot(*g.centroid))
    rho = (np.arange(int(r_max / step) + 1) + 0.5) * step
    hit = np.zeros(n_rays, dtype=bool)
    thick = np.zeros(n_rays)
    depth = np.full(n_rays, np.inf)
    area = 0.0
    for s in range(0, n_rays, chunk):
        phi = (np.arange(s, min(s + chunk, n_rays)) + 0.5) * dphi
        y = g.centroid[0] + np.sin(phi)[:, None] * rho[None, :]
        x = g.centroid[1] + np.cos(phi)[:, None] * rho[None, :]
        inside = (margin(y, x) >= 0) & (np.hypot(y, x) <= field_mm)
        h = inside.any(axis=1)
        hit[s : s + phi.size] = h
        thick[s : s + phi.size] = inside.sum(axis=1) * step
        first = rho[np.argmax(inside, axis=1)] - step / 2
        depth[s : s + phi.size] = np.where(h, np.clip(first - g.rho(phi), 0, None), np.inf)
        area += float((inside * rho[None, :]).sum() * step * dphi)
    if not hit.any():
        return {}
    return {
        "calcium_arc_deg": float(hit.sum() * 360.0 / n_rays),
        "calcium_max_thickness_mm": float(thick.max()),
        "calcium_max_thickness_angle_deg": thickest_angle_deg(thick, g.ps),
        "calcium_min_depth_mm": float(depth.min()),
        "calcium_area_mm2": area,
    }
