"""Exact per-frame and per-strut measurements from the generator's geometry.

Every number follows ``docs/metrics.md`` and is computed from the analytic geometry (the
4096-vertex lumen polygon, the calcium band functions, the strut points), never from the label
raster. Numerical integration uses rays much finer than the geometry module's 720:

- lumen area / centroid: shoelace on the fine polygon; diameters: chords through the centroid
  at 0.5 degree steps, exactly as defined;
- calcium: 7200 rays from the centroid, each band sampled at 64 points to find what the
  guidewire shadow hides; the arc is bridged across the shadow where calcium flanks it;
- stent: :func:`octseg.core.contour.stent_contour` on the exact strut points about the exact
  centroid; malapposition area on 7200 rays.
- lipid (opt-in): the core band on the calcium rays and machinery (arc bridged across the
  shadow, depth = the cap in front of the first visible core sample); the minimal cap is the
  thinnest ``cap_at(u)`` over the rays whose whole cap and core front are visible; TCFA with the
  geometry settings' thresholds.

The pullback summary comes from :func:`octseg.geometry.summary.summarize`, the same bookkeeping the
geometry module uses.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from octseg.core.contour import stent_contour
from octseg.datasets.synth.anatomy import TWO_PI, FrameGeometry, ray_distance
from octseg.datasets.synth.params import Grid
from octseg.geometry.calcium import thickest_angle_deg
from octseg.geometry.lumen_contour import lumen_columns

N_RAYS = 7200
N_BAND = 64


def _rays(n: int = N_RAYS) -> np.ndarray:
    return (np.arange(n) + 0.5) * (TWO_PI / n)


def lumen_truth(geo: FrameGeometry) -> dict[str, float]:
    # the anatomy keeps every lumen 0.3 mm inside the A-lines' depth (anatomy.py): never open
    return {**lumen_columns(geo.rho_lumen, geo.area, geo.centroid), "lumen_open_percent": 0.0}


def _ray_hits_guidewire(geo: FrameGeometry, phi: np.ndarray, reach_mm: float) -> np.ndarray:
    """Whether rays from the centroid along ``phi`` meet class 4 within the A-lines' reach."""
    c = geo.centroid
    s = np.arange(0.0, reach_mm + np.hypot(*c), 0.004)
    y = c[0] + np.sin(phi)[:, None] * s[None, :]
    x = c[1] + np.cos(phi)[:, None] * s[None, :]
    inside = np.hypot(y, x) < reach_mm
    return (geo.hidden_by_guidewire(y, x) & inside).any(axis=1)


def calcium_truth(geo: FrameGeometry, reach_mm: float, sample_mm: float) -> dict[str, float | None]:
    """Calcium columns of one frame; where the maximum thickness lies by the product's rule on
    the per-ray extents in samples of ``sample_mm`` (the A-lines' sample spacing)."""
    blank: dict[str, float | None] = {
        "calcium_arc_deg": None,
        "calcium_max_thickness_mm": None,
        "calcium_min_depth_mm": None,
        "calcium_area_mm2": None,
        "calcium_max_thickness_angle_deg": None,
    }
    if not geo.lesions:
        return blank
    phi = _rays()
    hits = np.zeros(N_RAYS, bool)
    extent = np.zeros(N_RAYS)  # each ray's largest visible extent over the lesions
    min_d, area = math.inf, 0.0
    for les in geo.lesions:
        band = _visible_band(geo, les, phi)
        if band is None:
            continue
        sel_vis, ext, depth, band_area = band
        hits[sel_vis] = True
        if not sel_vis.size:
            continue
        np.maximum.at(extent, sel_vis, ext)
        min_d = min(min_d, depth)
        area += band_area
    if not hits.any():
        return blank
    if not hits.all():
        hits = _bridge_guidewire_gaps(geo, hits, phi, reach_mm)
    return {
        "calcium_arc_deg": float(hits.sum() * 360.0 / N_RAYS),
        "calcium_max_thickness_mm": float(extent.max()),
        "calcium_min_depth_mm": min_d,
        "calcium_area_mm2": area,
        "calcium_max_thickness_angle_deg": thickest_angle_deg(extent, sample_mm),
    }


def _visible_band(
    geo: FrameGeometry, les: Any, phi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """One lesion's band on the rays ``phi`` from the centroid, each sampled at ``N_BAND`` points:
    the rays with a visible (not guidewire-hidden) sample, the visible extent on each of them,
    the smallest visible depth and the visible area; None where no ray crosses the lesion."""
    c = geo.centroid
    u = les.arc_position(phi)
    sel = np.nonzero(u <= 1.0)[0]
    if sel.size == 0:
        return None
    ph, uu = phi[sel], u[sel]
    rl = geo.rho_lumen(ph)
    inner = rl + les.depth_at(uu)
    t = les.thickness_at(uu)
    step = t / N_BAND
    rho = inner[:, None] + (np.arange(N_BAND) + 0.5)[None, :] * step[:, None]
    y = c[0] + np.sin(ph)[:, None] * rho
    x = c[1] + np.cos(ph)[:, None] * rho
    vis = ~geo.hidden_by_guidewire(y, x)
    any_vis = vis.any(axis=1)
    if not any_vis.any():
        return sel[any_vis], np.zeros(0), math.inf, 0.0
    first = np.argmax(vis, axis=1)
    last = N_BAND - 1 - np.argmax(vis[:, ::-1], axis=1)
    extent = np.where(any_vis, (last - first + 1) * step, 0.0)
    depth = np.where(any_vis, inner + first * step - rl, np.inf)
    area = float((vis * rho * step[:, None]).sum() * (TWO_PI / N_RAYS))
    return sel[any_vis], extent[any_vis], float(depth.min()), area


def _bridge_guidewire_gaps(
    geo: FrameGeometry, hits: np.ndarray, phi: np.ndarray, reach_mm: float
) -> np.ndarray:
    """``hits`` with every gap between calcium whose rays all meet the guidewire/shadow filled
    (the arc is bridged across the shadow)."""
    k0 = int(np.argmin(hits))  # a gap ray; walk the circle from the next calcium run
    start = (k0 + int(np.argmax(np.roll(hits, -k0)))) % N_RAYS
    order = np.roll(np.arange(N_RAYS), -start)
    seq = hits[order]
    bridged = seq.copy()
    i = 0
    while i < N_RAYS:
        if seq[i]:
            i += 1
            continue
        j = i
        while j < N_RAYS and not seq[j]:
            j += 1
        gap = order[i:j]
        probe = gap[:: max(1, len(gap) // 8)]  # cheap rejection first
        if (
            _ray_hits_guidewire(geo, phi[probe], reach_mm).all()
            and _ray_hits_guidewire(geo, phi[gap], reach_mm).all()
        ):
            bridged[i:j] = True
        i = j
    out = np.zeros(N_RAYS, bool)
    out[order] = bridged
    return out


def stent_truth(
    geo: FrameGeometry, threshold_mm: float, samples_per_segment: int = 32
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    n = int(geo.struts.shape[0])
    row: dict[str, Any] = {
        "n_struts": n,
        "n_malapposed": 0,
        "stent_area_mm2": None,
        "max_malapposition_mm": None,
        "malapposition_area_mm2": None,
    }
    struts = []
    if n == 0:
        return row, struts
    mal = geo.strut_distance > threshold_mm
    for (y, x), a, d, m in zip(geo.struts, geo.strut_angles, geo.strut_distance, mal):
        struts.append(
            {
                "frame": geo.frame,
                "angle_deg": float(math.degrees(a) % 360.0),
                "x_mm": float(x),
                "y_mm": float(y),
                "distance_mm": float(d),
                "malapposed": bool(m),
            }
        )
    row["n_malapposed"] = int(mal.sum())
    row["max_malapposition_mm"] = float(geo.strut_distance.max())
    if n >= 3:
        pts = torch.from_numpy(geo.struts[None].astype(np.float64))
        valid = torch.ones((1, n), dtype=torch.bool)
        cen = torch.from_numpy(geo.centroid[None].astype(np.float64))
        curve, cmask, area = stent_contour(pts, valid, cen, samples_per_segment)
        row["stent_area_mm2"] = float(area[0])
        samples = curve[0][cmask[0]].numpy()
        phi = _rays()
        rho_s = ray_distance(samples, geo.centroid, phi, strict=False)
        rho_l = geo.rho_lumen(phi)
        row["malapposition_area_mm2"] = float(
            0.5 * np.clip(rho_l**2 - rho_s**2, 0, None).sum() * (TWO_PI / N_RAYS)
        )
    return row, struts


PLAQUE_TRUTH_KEYS = (
    "lipid_arc_deg",
    "lipid_min_depth_mm",
    "cap_min_thickness_um",
    "cap_min_angle_deg",
    "tcfa",
)
N_CAP = 16  # samples along each ray's cap to find what the guidewire shadow hides


def lipid_truth(
    geo: FrameGeometry, reach_mm: float, tcfa_cap_um: float = 65.0, tcfa_arc_deg: float = 90.0
) -> dict[str, Any]:
    """Plaque columns of one frame (``docs/metrics.md``, plaque); blank without lipid."""
    out: dict[str, Any] = dict.fromkeys(PLAQUE_TRUTH_KEYS)
    phi = _rays()
    hits = np.zeros(N_RAYS, bool)
    depth = math.inf
    cap_um, cap_ray = math.inf, -1
    for les in geo.lipids:
        band = _visible_band(geo, les, phi)
        if band is None or not band[0].size:
            continue
        hits[band[0]] = True
        depth = min(depth, band[2])
        um, ray = _thinnest_visible_cap(geo, les, phi)
        if um < cap_um:
            cap_um, cap_ray = um, ray
    if not hits.any():
        return out
    if not hits.all():
        hits = _bridge_guidewire_gaps(geo, hits, phi, reach_mm)
    arc = float(hits.sum() * 360.0 / N_RAYS)
    out["lipid_arc_deg"] = arc
    out["lipid_min_depth_mm"] = float(depth)
    if math.isfinite(cap_um):
        out["cap_min_thickness_um"] = float(cap_um)
        out["cap_min_angle_deg"] = float(math.degrees(phi[cap_ray]) % 360.0)
    out["tcfa"] = bool(cap_um < tcfa_cap_um and arc > tcfa_arc_deg)
    return out


def _thinnest_visible_cap(geo: FrameGeometry, les: Any, phi: np.ndarray) -> tuple[float, int]:
    """The thinnest cap (um) over the rays of ``phi`` whose whole cap and the core's first
    sample are visible (not in class 4), and its ray; (inf, -1) where none is."""
    u = les.arc_position(phi)
    sel = np.nonzero(u <= 1.0)[0]
    if sel.size == 0:
        return math.inf, -1
    ph, uu = phi[sel], u[sel]
    rl = geo.rho_lumen(ph)
    cap = les.cap_at(uu)
    rho = rl[:, None] + np.linspace(0.0, 1.0, N_CAP + 1)[None, :] * cap[:, None]
    c = geo.centroid
    y = c[0] + np.sin(ph)[:, None] * rho
    x = c[1] + np.cos(ph)[:, None] * rho
    seen = ~geo.hidden_by_guidewire(y, x).any(axis=1)
    if not seen.any():
        return math.inf, -1
    k = int(np.argmin(np.where(seen, cap, np.inf)))
    return float(cap[k] * 1000.0), int(sel[k])


def frame_truth(
    geo: FrameGeometry,
    frame_spacing_mm: float,
    reach_mm: float,
    threshold_mm: float,
    tcfa_cap_um: float = 65.0,
    tcfa_arc_deg: float = 90.0,
    sample_mm: float = Grid.pixel_spacing_mm,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``frames.csv`` row and ``struts.csv`` rows of one frame (``sample_mm``: the A-lines'
    sample spacing)."""
    row: dict[str, Any] = {"frame": geo.frame, "position_mm": geo.frame * frame_spacing_mm}
    row.update(lumen_truth(geo))
    row.update(calcium_truth(geo, reach_mm, sample_mm))
    srow, struts = stent_truth(geo, threshold_mm)
    row.update(srow)
    row.update(lipid_truth(geo, reach_mm, tcfa_cap_um, tcfa_arc_deg))
    return row, struts
