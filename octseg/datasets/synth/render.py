"""Rasterising labels and rendering IVOCT-like polar frames from :class:`FrameGeometry`.

Labels (class indices of :mod:`octseg.core.classes`) are decided at pixel centres from the exact
geometry: lumen inside the analytic contour (catheter included), calcium in its band about the
lumen centroid, strut blooming as a small ellipse around each strut point, and class 4 for the
guidewire and everything behind it along its A-lines. Opt-in lipid: fibrous cap (5) and lipid
core (6) in their bands about the centroid. Priority 4 > 3 > 2 > 1 > 6 > 5 > 0 (lumen > lipid >
cap as in the real builder, ``octseg.datasets.danilov.reader.read_plaque_labels``; lipid lesions
are drawn in frames without calcium or stent, so 2 and 3 never meet 5/6, and class 4 hides them).

The image is a backscatter model along each A-line (all vectorised numpy, one frame at a time):
catheter with sheath rings, a dark flushed lumen with faint residual blood, a bright intima, a
darker media band and heterogeneous adventitia with exponential attenuation, signal-poor calcium
with sharp borders and low attenuation, lipid cores with a diffuse border and strong attenuation
under a bright thin cap, bright guidewire and struts with dark shadows,
multiplicative gamma speckle, an additive noise floor and log compression to uint8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from octseg.core.classes import BACKGROUND, CALCIUM, FIBROUS_CAP, GUIDEWIRE, LIPID, LUMEN, STRUT
from octseg.core.polar import wrap_pi
from octseg.datasets.synth.anatomy import TWO_PI, FrameGeometry
from octseg.datasets.synth.params import Grid, RenderParams


@dataclass
class FrameRaster:
    labels: np.ndarray  # uint8 (A, R)
    calcium: np.ndarray  # bool (A, R), before the guidewire/strut overrides
    strut_core: np.ndarray  # float32 (A, R) 0..1 blooming weight
    strut_shadow: np.ndarray  # bool (A, R)
    gw_depth: np.ndarray  # float32 (A, R): mm behind the guidewire's near surface, inf outside
    lipid: np.ndarray | None = None  # bool (A, R) lipid core, before the overrides; None: none
    cap: np.ndarray | None = None  # bool (A, R) fibrous cap, before the overrides


class PolarGrid:
    """Pixel-centre coordinates of a polar frame (A-lines x samples)."""

    def __init__(self, grid: Grid):
        self.grid = grid
        a, r = grid.n_alines, grid.n_samples
        self.theta = np.arange(a) * (TWO_PI / a)
        self.r = np.arange(r) * grid.pixel_spacing_mm
        self.y = (np.sin(self.theta)[:, None] * self.r[None, :]).astype(np.float64)
        self.x = (np.cos(self.theta)[:, None] * self.r[None, :]).astype(np.float64)


def rasterize(geo: FrameGeometry, pg: PolarGrid) -> FrameRaster:
    g = pg.grid
    a, n = g.n_alines, g.n_samples
    r = pg.r
    lab = np.where(r[None, :] < geo.rho_cat[:, None], LUMEN, BACKGROUND).astype(np.uint8)

    calcium = np.zeros((a, n), bool)
    cen = _centroid_polar(geo, pg) if (geo.lesions or geo.lipids) else None
    lipid = cap = None
    if geo.lipids:
        cap, lipid = _plaque_masks(geo, cen)
        lab[cap & (lab == BACKGROUND)] = FIBROUS_CAP
        lab[lipid & (lab != LUMEN)] = LIPID
    if geo.lesions:
        phi, rho, rl = cen
        for les in geo.lesions:
            u = les.arc_position(phi)
            inarc = u <= 1.0
            uu = np.where(inarc, u, 0.0)
            t = les.thickness_at(uu)
            inner = rl + les.depth_at(uu)
            calcium |= inarc & (rho >= inner) & (rho <= inner + t)
        lab[calcium] = CALCIUM

    strut_core = np.zeros((a, n), np.float32)
    strut_shadow = np.zeros((a, n), bool)
    for (py, px), hl, ht in zip(geo.struts, geo.strut_half_len, geo.strut_half_thick):
        th_p = math.atan2(py, px)
        r_p = math.hypot(py, px)
        dth = wrap_pi(pg.theta - th_p)  # (A,)
        rows = np.nonzero(np.abs(dth) * r_p <= hl * 1.5)[0]
        if rows.size == 0:
            continue
        q = (dth[rows, None] * r_p / hl) ** 2 + ((r[None, :] - r_p) / ht) ** 2
        core = q <= 1.0
        lab_rows = lab[rows]
        lab_rows[core] = STRUT
        lab[rows] = lab_rows
        # blooming weight: bright core with a short radial tail (the blooming artefact)
        tail = (r[None, :] - r_p) / (3 * ht)
        wgt = np.exp(-2 * q) * (q <= 1.5) + 0.3 * np.exp(-(((dth[rows, None] * r_p) / hl) ** 2)) * (
            np.exp(-np.clip(tail, 0, None) * 3) * (tail > 0) * (tail < 1.0)
        )
        strut_core[rows] = np.maximum(strut_core[rows], wgt.astype(np.float32))
        sh_rows = np.abs(dth[rows]) * r_p <= 0.9 * hl
        sh = sh_rows[:, None] & (r[None, :] > r_p + ht)
        strut_shadow[rows] |= sh

    near = geo.gw_near(pg.theta)  # (A,)
    gw_depth = (r[None, :] - near[:, None]).astype(np.float32)
    gw = gw_depth >= 0
    lab[gw] = GUIDEWIRE
    gw_depth[~gw] = np.inf
    return FrameRaster(lab, calcium, strut_core, strut_shadow, gw_depth, lipid, cap)


def _centroid_polar(geo: FrameGeometry, pg: PolarGrid) -> tuple[np.ndarray, ...]:
    """Angle and distance of every pixel centre about the lumen centroid, and the lumen contour's
    distance along that angle."""
    dy = pg.y - geo.centroid[0]
    dx = pg.x - geo.centroid[1]
    phi = np.remainder(np.arctan2(dy, dx), TWO_PI)
    rho = np.hypot(dy, dx)
    rl = geo.rho_lumen(phi.ravel()).reshape(phi.shape)
    return phi, rho, rl


def _plaque_masks(geo: FrameGeometry, cen: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """(fibrous cap, lipid core) pixel masks of the frame's lipid lesions."""
    phi, rho, rl = cen
    cap = np.zeros(phi.shape, bool)
    core = np.zeros(phi.shape, bool)
    for les in geo.lipids:
        u = les.arc_position(phi)
        inarc = u <= 1.0
        uu = np.where(inarc, u, 0.0)
        front = rl + les.cap_at(uu)
        cap |= inarc & (rho >= rl) & (rho < front)
        core |= inarc & (rho >= front) & (rho <= front + les.core_at(uu))
    return cap & ~core, core


def _smooth_field(rng: np.random.Generator, shape_lo: tuple[int, int], shape: tuple[int, int]):
    """A smooth zero-mean, unit-variance random field (periodic along A-lines)."""
    lo = rng.standard_normal(shape_lo)
    lo = ndimage.gaussian_filter(lo, 0.8, mode=("wrap", "nearest"))
    lo /= lo.std() + 1e-12
    zoom = (shape[0] / shape_lo[0], shape[1] / shape_lo[1])
    out = ndimage.zoom(lo, zoom, order=1, mode="grid-wrap", grid_mode=True)
    return out[: shape[0], : shape[1]]


def _lo_shape(g: Grid, cell_mm: float) -> tuple[int, int]:
    # angular cells of ~cell_mm at a typical wall radius of 2 mm
    na = int(np.clip(round(TWO_PI * 2.0 / cell_mm), 8, g.n_alines))
    nr = int(np.clip(round(g.depth_mm / cell_mm), 4, g.n_samples))
    return na, nr


def render_frame(
    geo: FrameGeometry,
    ras: FrameRaster,
    pg: PolarGrid,
    rp: RenderParams,
    catheter_radius_mm: float,
    z_mm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One polar frame, uint8 (A, R)."""
    g = pg.grid
    a, n = g.n_alines, g.n_samples
    ps = g.pixel_spacing_mm
    r = pg.r[None, :]
    shape = (a, n)

    z = r - geo.rho_cat[:, None]  # depth below the lumen surface along the A-line (mm)
    wall = z >= 0
    fine = _smooth_field(rng, _lo_shape(g, 0.07), shape)
    coarse = _smooth_field(rng, _lo_shape(g, 0.45), shape)
    line = _smooth_field(rng, (_lo_shape(g, 0.3)[0], 4), (a, 4))[:, :1]  # per A-line
    line2 = _smooth_field(rng, (_lo_shape(g, 0.6)[0], 4), (a, 4))[:, :1]
    mu_b, mu_t = _wall_optics(z, float(rp.intima_mm(z_mm)), rp, fine, coarse, line, line2)

    if ras.lipid is not None and ras.lipid.any():
        mu_b, mu_t = _lipid_optics(geo, ras, pg, mu_b, mu_t, fine, coarse)

    ca = ras.calcium
    if ca.any():
        # signal-poor, heterogeneous inside, sharply delineated, low attenuation
        specks = rng.random(shape) < 0.004
        ca_b = rp.calcium_backscatter * np.exp(0.7 * fine + 0.5 * coarse)
        ca_b = ca_b + 0.3 * ndimage.gaussian_filter(specks.astype(float), 0.7, mode="wrap")
        mu_b = np.where(ca, ca_b, mu_b)
        mu_t = np.where(ca, rp.calcium_attenuation_per_mm, mu_t)

    mu_t = np.where(wall, mu_t, 0.0)
    optical = np.cumsum(mu_t, axis=1) * ps
    inten = np.where(wall, mu_b * np.exp(-2 * optical), 0.0)

    # lumen: faint residual blood, a little denser near the catheter
    lumen = ~wall & (r > catheter_radius_mm)
    blood = rp.blood * (1 + 3.0 * np.exp(-(r - catheter_radius_mm) / 0.25)) * np.exp(coarse)
    inten = np.where(lumen, blood, inten)

    rc, w = catheter_radius_mm, max(ps, 0.008)
    inten = np.where(r <= rc + 3 * w, np.maximum(inten, _catheter(pg.r, rc, w)[None, :]), inten)

    # struts: bright blooming and a dark shadow behind
    if ras.strut_core.any():
        inten = np.where(ras.strut_shadow, inten * 0.02, inten)
        inten = np.maximum(inten, 12.0 * ras.strut_core)

    # guidewire: bright front surface, nothing behind
    gwd = ras.gw_depth
    gw = np.isfinite(gwd)
    inten = np.where(gw, 12.0 * np.exp(-((np.where(gw, gwd, 0) / 0.035) ** 2)), inten)
    return _speckle_and_compress(inten, rp, ps, rng)


def _lipid_optics(geo: FrameGeometry, ras: FrameRaster, pg: PolarGrid, mu_b, mu_t, fine, coarse):
    """Lipid core: low backscatter and strong attenuation (so it and everything behind it
    fade to dark) blended in with a diffuse (Gaussian) border; fibrous cap: bright, thin, with
    the wall's attenuation. The optics of the frame's first lipid lesion (one lesion per frame)."""
    les = geo.lipids[0]
    g = pg.grid
    sig_r = les.border_mm / g.pixel_spacing_mm
    sig_a = les.border_mm / (TWO_PI * 2.0 / g.n_alines)  # in A-lines at a 2 mm wall radius
    w = ndimage.gaussian_filter(
        ras.lipid.astype(np.float64), (sig_a, sig_r), mode=("wrap", "nearest")
    )
    core_b = les.backscatter * np.exp(0.35 * fine + 0.3 * coarse)
    mu_b = mu_b * (1 - w) + core_b * w
    mu_t = mu_t * (1 - w) + les.attenuation_per_mm * w
    cap = ras.cap & ~ras.lipid
    mu_b = np.where(cap, np.maximum(mu_b, les.cap_backscatter * np.exp(0.2 * fine)), mu_b)
    return mu_b, mu_t


def _wall_optics(
    z: np.ndarray, intima_mm: float, rp: RenderParams, fine, coarse, line, line2
) -> tuple[np.ndarray, np.ndarray]:
    """Backscatter and attenuation (per mm) of the wall at depth ``z`` below the lumen surface:
    bright intima (thickened in places), darker media band, adventitia, textured by the smooth
    random fields."""
    t_int = intima_mm * np.exp(0.5 * line)
    t_med = 0.12
    edge = 0.012
    s1 = 1 / (1 + np.exp(-(z - t_int) / edge))
    s2 = 1 / (1 + np.exp(-(z - t_int - t_med) / edge))
    media = (s1 - s2) * np.clip(0.6 + 0.8 * line2, 0, 1)  # the media is not seen everywhere
    mu_b = (1 + 1.1 * np.exp(-np.clip(z, 0, None) / 0.03)) * (1 - rp.media_contrast * media)
    mu_b *= 1 - 0.25 * s2  # adventitia a little less bright than intima
    mu_b *= np.exp(rp.texture_sigma * fine + 0.45 * coarse - 0.5 * (rp.texture_sigma**2 + 0.2))
    mu_t = rp.tissue_attenuation_per_mm * np.exp(0.15 * coarse) * np.ones_like(mu_b)
    return mu_b, mu_t


def _catheter(rr: np.ndarray, rc: float, w: float) -> np.ndarray:
    """Catheter intensity along an A-line at radii ``rr``: sheath (moderate scatter) with bright
    inner/outer surfaces (width ``w``) at radius ``rc``, and an inner ring."""
    cat = np.zeros(rr.shape[0])
    cat += 1.6 * np.exp(-0.5 * ((rr - rc) / w) ** 2)
    cat += 0.9 * np.exp(-0.5 * ((rr - (rc - 0.07)) / w) ** 2)
    cat += 0.004 * ((rr > rc - 0.07) & (rr < rc))
    cat += 0.5 * np.exp(-0.5 * ((rr - 0.55 * rc) / w) ** 2)
    cat += 2e-4 * (rr < 0.55 * rc)
    return cat


def _speckle_and_compress(
    inten: np.ndarray, rp: RenderParams, ps: float, rng: np.random.Generator
) -> np.ndarray:
    """Speckle, noise floor and log compression of intensities ``(A, R)`` to uint8 grey."""
    a = inten.shape[0]
    # speckle: multiplicative, correlated over about the resolution (~12 um axially, ~25 um
    # laterally); log-normal with the log-spread of gamma speckle of shape k
    k = rp.speckle_shape
    sp = rng.standard_normal(inten.shape)
    sig_r = 0.006 / ps
    sig_a = 0.012 / (TWO_PI * 1.8 / a)  # lateral, in A-lines at a typical wall radius
    sig = (sig_a if sig_a > 0.3 else 0.0, sig_r if sig_r > 0.3 else 0.0)
    if any(sig):
        sp = ndimage.gaussian_filter(sp, sig, mode=("wrap", "nearest"))
        sp /= sp.std() + 1e-12
    s_log = math.sqrt(math.log(1 + 1 / k))
    inten = inten * np.exp(s_log * sp - 0.5 * s_log**2)
    dr = rp.dynamic_range_db
    floor = 10 ** (-dr / 10)
    inten = inten + floor * rng.exponential(1.0, inten.shape)

    # log compression: the noise floor mostly black (grey 0-5), the intima (1.0) at ~grey 190
    db = 10 * np.log10(inten)
    lo = -dr + 4.0
    out = (db - lo) / (0.0 - lo) * 190
    return np.round(np.clip(out, 0, 255)).astype(np.uint8)
