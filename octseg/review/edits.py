"""Label edits on one frame, as pure functions of a label map and its pixel geometry.

Every edit takes positions in mm from the catheter centre (``x`` along columns, ``y`` along rows,
the convention of :mod:`octseg.io.labels`), so the same edit applies to polar and Cartesian label
maps. Each returns a new label map; the input is not modified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.interpolate import CubicSpline

from octseg.core.classes import BACKGROUND, CALCIUM, FIBROUS_CAP, GUIDEWIRE, LIPID, LUMEN, STRUT
from octseg.core.contour import polygon_area_centroid

TISSUE = (CALCIUM, FIBROUS_CAP, LIPID)  # the classes a brush paints (wall tissue)

TWO_PI = 2 * math.pi
N_CONTROL = 24  # lumen control points per frame
N_CURVE = 1024  # samples of the lumen spline over 360 degrees
STRUT_RADIUS_MM = 0.04  # a strut added by hand: pixels within this distance of the click
STRUT_PICK_MM = 0.3  # a click picks the strut within this distance


@dataclass(frozen=True)
class PixelGrid:
    """Position of every pixel of a label map: radius (mm) and angle (radians, [0, 2*pi)) about
    the catheter centre, and Cartesian offsets ``x``/``y`` (mm)."""

    space: str
    shape: tuple[int, int]
    ps: float
    center: tuple[float, float] | None
    r: np.ndarray
    theta: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def make(cls, space: str, shape: tuple[int, int], ps: float, center) -> PixelGrid:
        h, w = shape
        if space == "polar":
            theta = np.repeat((np.arange(h) * (TWO_PI / h))[:, None], w, 1)
            r = np.repeat((np.arange(w) * ps)[None, :], h, 0)
            x, y = r * np.cos(theta), r * np.sin(theta)
        else:
            y = np.repeat(((np.arange(h) - center[0]) * ps)[:, None], w, 1)
            x = np.repeat(((np.arange(w) - center[1]) * ps)[None, :], h, 0)
            r = np.hypot(x, y)
            theta = np.mod(np.arctan2(y, x), TWO_PI)
        f32 = np.float32
        return cls(
            space,
            (h, w),
            ps,
            center,
            r.astype(f32),
            theta.astype(f32),
            x.astype(f32),
            y.astype(f32),
        )

    def window(self, radius_mm: float) -> tuple[slice, slice]:
        """Slices of the label map that hold every pixel within ``radius_mm`` of the catheter."""
        h, w = self.shape
        n = int(math.ceil(radius_mm / self.ps)) + 2
        if self.space == "polar":
            return slice(0, h), slice(0, min(w, n))
        cy, cx = int(round(self.center[0])), int(round(self.center[1]))
        return slice(max(0, cy - n), min(h, cy + n + 1)), slice(max(0, cx - n), min(w, cx + n + 1))

    def extent_mm(self, mask: np.ndarray) -> float:
        """Largest radius (mm) of a pixel of ``mask``; 0 if empty."""
        return float(self.r[mask].max()) if mask.any() else 0.0

    def nearest(self, x: float, y: float) -> tuple[int, int]:
        """The pixel nearest to the point (x, y) mm."""
        h, w = self.shape
        if self.space == "polar":
            row = int(round(math.atan2(y, x) % TWO_PI / TWO_PI * h)) % h
            col = min(w - 1, int(round(math.hypot(x, y) / self.ps)))
            return row, col
        row = int(round(self.center[0] + y / self.ps))
        col = int(round(self.center[1] + x / self.ps))
        return min(max(row, 0), h - 1), min(max(col, 0), w - 1)


# ---------------------------------------------------------------- lumen


def lumen_radii(lab: np.ndarray, grid: PixelGrid, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lumen radius (mm) on ``n`` catheter rays of one frame, by the geometry module's own ray
    casting (rays through the guidewire or a strut are interpolated). Returns (theta, radii)."""
    from octseg.geometry import lumen as lu

    t = torch.from_numpy(np.ascontiguousarray(lab))[None]
    if grid.space == "polar":
        radii, masked, _ = lu.catheter_radii_polar(t, grid.ps)
        idx = np.round(np.arange(n) * lab.shape[0] / n).astype(int) % lab.shape[0]
        radii, masked = radii[:, idx], masked[:, idx]
    else:  # rays only as long as the lumen reaches (the classes beyond do not matter)
        max_r = min(float(np.hypot(*lab.shape)), grid.extent_mm(lab == LUMEN) / grid.ps) + 4
        rays = lu.CatheterRays(lab.shape, grid.center, n, max_r, "cpu")
        radii, masked, _ = rays.radii(t, grid.ps)
    radii = lu.fill_masked_periodic(radii.float(), masked)[0].numpy()
    return np.arange(n) * (TWO_PI / n), radii.astype(np.float64)


def control_points(lab: np.ndarray, grid: PixelGrid, n: int = N_CONTROL) -> list[list[float]]:
    """``n`` lumen control points [x, y] (mm) of a frame; a 1 mm circle if it has no lumen."""
    theta, radii = lumen_radii(lab, grid, n)
    if not np.any(radii > 0):
        radii = np.full(n, 1.0)
    return [[float(r * math.cos(t)), float(r * math.sin(t))] for t, r in zip(theta, radii)]


def spline_radius(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The periodic cubic spline r(theta) through control points [[x, y], ...] (mm), sampled at
    ``N_CURVE`` angles: (theta, r). Points are ordered by angle about the catheter centre."""
    pts = np.asarray(points, dtype=np.float64)
    theta = np.mod(np.arctan2(pts[:, 1], pts[:, 0]), TWO_PI)
    r = np.hypot(pts[:, 0], pts[:, 1])
    order = np.argsort(theta)
    theta, r = theta[order], r[order]
    keep = np.concatenate([[True], np.diff(theta) > 1e-6])
    theta, r = theta[keep], r[keep]
    if theta.size < 3:
        raise ValueError("the lumen contour needs at least 3 control points at distinct angles")
    xs = np.concatenate([theta, [theta[0] + TWO_PI]])
    ys = np.concatenate([r, [r[0]]])
    spline = CubicSpline(xs, ys, bc_type="periodic")
    t = np.arange(N_CURVE) * (TWO_PI / N_CURVE)
    return t, np.clip(spline(np.where(t < theta[0], t + TWO_PI, t)), 0.0, None)


def contour_area_mm2(points: np.ndarray) -> float:
    """Area enclosed by the spline contour: the shoelace area of its ``N_CURVE`` samples."""
    t, r = spline_radius(points)
    return polygon_area_centroid(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))[0]


def set_lumen(lab: np.ndarray, grid: PixelGrid, points) -> np.ndarray:
    """Fill the lumen class from the spline through ``points``: lumen pixels outside the contour
    become background; background and wall-tissue pixels (calcium, plaque) inside become lumen (struts and guidewire
    stay)."""
    t, r = spline_radius(points)
    out = lab.copy()
    # only pixels within the new contour or the old lumen can change
    win = grid.window(max(float(r.max()), grid.extent_mm(lab == LUMEN)))
    sub, o = lab[win], out[win]
    inside = grid.r[win] < np.interp(grid.theta[win], t, r, period=TWO_PI)
    o[(sub == LUMEN) & ~inside] = BACKGROUND
    o[inside & ((sub == BACKGROUND) | np.isin(sub, TISSUE))] = LUMEN
    return out


def _inside_lumen(lab: np.ndarray, grid: PixelGrid, mask: np.ndarray) -> np.ndarray:
    """For the pixels of ``mask``: inside the lumen contour (360 catheter rays)?"""
    theta, radii = lumen_radii(lab, grid, 360)
    return grid.r[mask] < np.interp(grid.theta[mask], theta, radii, period=TWO_PI)


# ---------------------------------------------------------------- calcium brush


def brush_mask(grid: PixelGrid, points, radius_mm: float) -> np.ndarray:
    """Pixels within ``radius_mm`` of any of ``points`` [[x, y], ...] (mm)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    lo, hi = pts.min(0) - radius_mm, pts.max(0) + radius_mm
    near = (grid.x >= lo[0]) & (grid.x <= hi[0]) & (grid.y >= lo[1]) & (grid.y <= hi[1])
    idx = np.flatnonzero(near)
    xs, ys = grid.x.ravel()[idx], grid.y.ravel()[idx]
    hit = np.zeros(idx.size, dtype=bool)
    r2 = radius_mm * radius_mm
    for px, py in pts:
        hit |= (xs - px) ** 2 + (ys - py) ** 2 <= r2
    mask = np.zeros(grid.shape, dtype=bool)
    mask.ravel()[idx[hit]] = True
    for px, py in pts:  # a brush smaller than a pixel still paints the pixel under it
        mask[grid.nearest(float(px), float(py))] = True
    return mask


def brush(
    lab: np.ndarray, grid: PixelGrid, points, radius_mm: float, erase: bool, cls: int = CALCIUM
) -> np.ndarray:
    """Paint class ``cls`` (calcium, lipid or fibrous cap) over background under the brush;
    ``erase``: that class back to background."""
    if cls not in TISSUE:
        raise ValueError(f"the brush paints classes {TISSUE}, not {cls}")
    mask = brush_mask(grid, points, radius_mm)
    out = lab.copy()
    if erase:
        out[mask & (lab == cls)] = BACKGROUND
    else:
        out[mask & (lab == BACKGROUND)] = cls
    return out


# ---------------------------------------------------------------- struts


def _strut_components(lab: np.ndarray) -> tuple[np.ndarray, int]:
    return ndimage.label(lab == STRUT, structure=np.ones((3, 3), dtype=bool))


def pick_strut(lab: np.ndarray, grid: PixelGrid, x: float, y: float) -> np.ndarray | None:
    """Mask of the strut nearest to (x, y) mm within ``STRUT_PICK_MM``, or None."""
    comps, n = _strut_components(lab)
    if n == 0:
        return None
    idx = np.flatnonzero(comps)
    d2 = (grid.x.ravel()[idx] - x) ** 2 + (grid.y.ravel()[idx] - y) ** 2
    k = int(np.argmin(d2))
    if d2[k] > STRUT_PICK_MM**2:
        return None
    return comps == comps.ravel()[idx[k]]


def delete_strut(lab: np.ndarray, grid: PixelGrid, x: float, y: float) -> np.ndarray:
    """Remove the strut nearest to (x, y): its pixels become lumen inside the lumen contour,
    background outside. ``ValueError`` if there is no strut there."""
    mask = pick_strut(lab, grid, x, y)
    if mask is None:
        raise ValueError(f"no strut within {STRUT_PICK_MM} mm of ({x:.2f}, {y:.2f}) mm")
    out = lab.copy()  # rays count struts as lumen and interpolate the border across them
    out[mask] = np.where(_inside_lumen(lab, grid, mask), LUMEN, BACKGROUND)
    return out


def add_strut(lab: np.ndarray, grid: PixelGrid, x: float, y: float) -> np.ndarray:
    """A strut of radius ``STRUT_RADIUS_MM`` at (x, y) mm (the guidewire is not painted over)."""
    mask = brush_mask(grid, [[x, y]], STRUT_RADIUS_MM)
    out = lab.copy()
    out[mask & (lab != GUIDEWIRE)] = STRUT
    return out


def move_strut(lab: np.ndarray, grid: PixelGrid, src, dst) -> np.ndarray:
    return add_strut(delete_strut(lab, grid, *src), grid, *dst)


# ---------------------------------------------------------------- guidewire


def set_guidewire(
    lab: np.ndarray, grid: PixelGrid, start_deg: float, end_deg: float, radius_mm: float
) -> np.ndarray:
    """Replace the guidewire by the sector from ``start_deg`` clockwise to ``end_deg`` (angles
    about the catheter centre, the label convention), from ``radius_mm`` outwards. Old guidewire
    pixels become lumen inside the lumen contour, background outside. Equal angles: no
    guidewire."""
    out = lab.copy()
    old = lab == GUIDEWIRE
    if old.any():  # rays through the old wire are interpolated
        out[old] = np.where(_inside_lumen(lab, grid, old), LUMEN, BACKGROUND)
    a0 = math.radians(start_deg) % TWO_PI
    span = (math.radians(end_deg) - math.radians(start_deg)) % TWO_PI
    if span > 0:
        rel = np.mod(grid.theta - a0, TWO_PI)
        sector = (rel <= span) & (grid.r >= radius_mm) & (out != STRUT)
        out[sector] = GUIDEWIRE
    return out
