"""Synthetic calcium and stent struts placed into real catheter-centred polar frames.

Everything works on one polar frame ``(A, R)`` (A-lines x depth, ``octseg.io.labels`` conventions)
with grey values in [0, 1] and its label map, at depth spacing ``ps`` mm.

* :func:`lumen_geometry` reads the **real** lumen contour from the label map with the product's
  own geometry (:func:`octseg.geometry.frame_lumen`, ``docs/metrics.md``): the contour, its
  centroid and the distance ``rho_L(phi)`` from the centroid to the contour along any direction.
* :func:`insert_calcium` paints a calcium region defined **about the lumen centroid**: the rays
  ``phi`` with ``|phi - centre| <= arc/2`` and, along each, the radii
  ``rho_L(phi) + depth .. rho_L(phi) + depth + thickness * sqrt(1 - (|phi - centre| / (arc/2))^4)``
  (full thickness over most of the arc, rounded ends). Its labels (class 2) are exactly the
  polar pixels whose centres fall inside, so the arc, maximum thickness and minimum depth that
  the geometry module measures are the parameters (up to a pixel). Only background pixels are
  relabelled; real lumen labels stay as they are. The image inside becomes signal-poor with sharp
  (one-pixel anti-aliased) borders: ``contrast x`` the tissue level a few samples in front of
  it, times the real speckle of those pixels (image / its local mean), times a smooth
  heterogeneity field;
  with ``fade`` (the default since session 63; ``cohort build --calcium-look flat`` turns it
  off) also times the fall of the real tissue level along depth (:func:`depth_fade`, counted
  from where that level is read, so its first samples are already a little darker), so the
  back border shows.
* :func:`insert_strut` paints one strut at the point ``rho_L(phi) - distance`` along ray ``phi``
  from the centroid (``distance`` > 0: malapposed, on the lumen side): a bright blooming ellipse
  (class 3, tangential width x radial thickness, centroid exactly at the point) and the dark shadow
  it casts behind itself along the catheter A-lines through the real tissue (the labels there are
  unchanged).
* :func:`guidewire_sector` detects the guidewire shadow of a real frame (A-lines whose tissue
  band behind the lumen border is much darker than the frame's median): inserts keep away from
  it.

True values per frame (the ``frames.csv`` / ``struts.csv`` columns) come from the parameters and
the real lumen contour, not from measuring the painted labels; the lumen columns are the real
label frame measured by :mod:`octseg.geometry` (one lumen implementation, issue 13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from octseg.core.classes import BACKGROUND, CALCIUM, LUMEN, STRUT
from octseg.core.contour import stent_contour
from octseg.core.polar import wrap_pi
from octseg.geometry.lumen_contour import FrameLumen

TWO_PI = 2.0 * math.pi


def run_swell(frame: int, start: int, stop: int) -> float:
    """How far into a run of frames ``[start, stop)`` frame ``frame`` lies, as a half sine: near 0
    at the ends, 1 at the middle (lesions, branches, vasa and malapposition swell with it)."""
    return math.sin(math.pi * (frame - start + 0.5) / (stop - start))


def polar_xy(n_alines: int, n_samples: int, ps: float) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian (y, x) mm of every polar pixel centre, each ``(A, R)``."""
    theta = np.arange(n_alines) * (TWO_PI / n_alines)
    r = np.arange(n_samples) * ps
    return np.sin(theta)[:, None] * r[None, :], np.cos(theta)[:, None] * r[None, :]


def ray_polygon(
    origin: np.ndarray, phis: np.ndarray, poly: np.ndarray, chunk: int = 512
) -> np.ndarray:
    """Largest distance from ``origin`` (y, x) along each direction ``phis`` to the closed
    polygon ``poly`` (N, 2) (y, x); NaN where the ray misses it."""
    a = poly - origin[None, :]
    b = np.roll(a, -1, axis=0)
    e = b - a  # (N, 2)
    out = np.full(phis.shape, np.nan)
    for s in range(0, phis.size, chunk):
        ph = phis[s : s + chunk]
        dy, dx = np.sin(ph)[:, None], np.cos(ph)[:, None]
        # solve t*d = a + u*e  ->  cross products (2-D, (y, x) order)
        den = dx * e[None, :, 0] - dy * e[None, :, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (a[None, :, 1] * e[None, :, 0] - a[None, :, 0] * e[None, :, 1]) / den
            u = (a[None, :, 1] * dy - a[None, :, 0] * dx) / den
        ok = (np.abs(den) > 1e-12) & (u >= 0) & (u < 1) & (t > 0)
        t = np.where(ok, t, -np.inf).max(axis=1)
        out[s : s + chunk] = np.where(np.isfinite(t), t, np.nan)
    return out


#: the lumen of one polar frame: octseg.geometry's (one lumen implementation, issue 13)
LumenGeometry = FrameLumen


def lumen_geometry(labels: np.ndarray, ps: float) -> LumenGeometry:
    """The lumen contour of a polar label frame ``(A, R)`` as the product measures it
    (:func:`octseg.geometry.frame_lumen`: contour, centroid, ``rho(phi)``), to place inserts
    relative to it; ``ValueError`` when the frame has no lumen."""
    from octseg.geometry import frame_lumen

    return frame_lumen(labels, ps, "polar")


# --------------------------------------------------------------------------- guidewire


def guidewire_sector(
    image: np.ndarray,
    labels: np.ndarray,
    ps: float,
    *,
    band_mm: tuple[float, float] = (0.1, 0.6),
    ratio: float = 0.45,
    margin_alines: int = 4,
) -> np.ndarray:
    """Boolean ``(A,)``: A-lines in the guidewire shadow (dilated by ``margin_alines``).

    The tissue band ``band_mm`` behind the lumen border of each A-line is averaged; A-lines
    darker than ``ratio`` x the median form candidate runs (periodic); the widest run is the
    shadow. Returns all False when no A-line qualifies.
    """
    r = image.shape[1]
    g = lumen_geometry(labels, ps)
    j0 = np.clip(np.rint(g.edge_mm / ps + band_mm[0] / ps).astype(int), 0, r - 1)
    j1 = np.clip(np.rint(g.edge_mm / ps + band_mm[1] / ps).astype(int), 1, r)
    cols = np.arange(r)[None, :]
    band = (cols >= j0[:, None]) & (cols < np.maximum(j1, j0 + 1)[:, None])
    mean = (image * band).sum(axis=1) / np.maximum(band.sum(axis=1), 1)
    mean = ndimage.uniform_filter1d(mean, 3, mode="wrap")
    dark = mean < ratio * np.median(mean)
    if not dark.any():
        return dark
    if dark.all():
        return dark
    # widest periodic run
    start = int(np.argmin(dark))  # a bright A-line: unroll from there
    d = np.roll(dark, -start)
    lab, n = ndimage.label(d)
    sizes = ndimage.sum(d, lab, range(1, n + 1))
    keep = np.roll(lab == (int(np.argmax(sizes)) + 1), start)
    return dilate_periodic(keep, margin_alines)


def dilate_periodic(mask: np.ndarray, n: int) -> np.ndarray:
    """A periodic 1-D boolean ``mask`` widened by ``n`` elements on each side."""
    return ndimage.maximum_filter1d(mask, 2 * n + 1, mode="wrap") if n > 0 else mask.copy()


# --------------------------------------------------------------------------- calcium


@dataclass(frozen=True)
class CalciumSpec:
    """One calcium region: arc about the lumen centroid, depth and thickness behind the contour,
    and its look.

    Shape: ``end_power`` rounds the ends (2: rounded, 8: nearly square); ``irregularity``
    (0-0.6) perturbs the outer border (thickness x ``1 + irregularity * h(u)``) and pushes the
    inner border deeper by up to ``irregularity * thickness / 2`` with smooth random harmonics
    ``h`` drawn from ``shape_seed`` (``depth_mm`` stays the minimum depth of the inner border
    profile); ``bulge_mm`` > 0 makes a calcified **nodule**: the inner border rises
    ``bulge_mm * (1 - u^2)^1.5`` into the lumen (``u``: position along the arc, -1..1), and the
    lumen pixels it covers become calcium. Look: ``contrast`` (calcium level / tissue level in
    front of it), ``heterogeneity`` and ``texture_scale`` of its smooth texture field, ``edge_px``
    width of the anti-aliased border (1-2: sharp), ``rim`` brightening of the inner border
    (a nodule's bright surface).
    """

    center_deg: float
    arc_deg: float
    depth_mm: float
    thickness_mm: float
    contrast: float = 0.35  # calcium level / tissue level just in front of it
    end_power: float = 4.0
    irregularity: float = 0.0
    shape_seed: int = 0
    shape_phase: float = 0.0  # rad added to the outline harmonics' phases (drifts along a lesion)
    bulge_mm: float = 0.0
    heterogeneity: float = 0.25
    texture_scale: float = 1.0
    edge_px: float = 1.0
    rim: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.arc_deg < 360:
            raise ValueError(f"calcium arc must be in (0, 360) degrees, got {self.arc_deg}")
        if self.thickness_mm <= 0 or self.depth_mm < 0 or self.bulge_mm < 0:
            raise ValueError("calcium thickness must be > 0, depth and bulge >= 0")
        if not 0 <= self.irregularity < 1:
            raise ValueError(f"calcium irregularity must be in [0, 1), got {self.irregularity}")


def _harmonics(u: np.ndarray, seed: int, which: int, shift: float = 0.0) -> np.ndarray:
    """A smooth random profile in [-1, 1] along the arc (``u`` in [-1, 1]): three harmonics,
    their phases moved by ``shift`` rad (a slowly changing outline along a lesion)."""
    rng = np.random.default_rng([seed, which])
    amp = rng.uniform(0.3, 1.0, 3)
    phase = rng.uniform(0, TWO_PI, 3) + shift
    k = np.arange(1, 4)
    h = amp[:, None, None] * np.sin(k[:, None, None] * math.pi * u[None] + phase[:, None, None])
    return h.sum(0) / amp.sum()


def calcium_margin(
    g: LumenGeometry, spec: CalciumSpec, y: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Signed margin (mm, >= 0 inside) of the continuous calcium shape at points ``(y, x)`` mm
    (catheter frame), and the distance (mm) behind its inner border along the centroid ray."""
    dy, dx = y - g.centroid[0], x - g.centroid[1]
    phi = np.arctan2(dy, dx)
    rho = np.hypot(dy, dx)
    half = math.radians(spec.arc_deg) / 2
    delta = wrap_pi(phi - math.radians(spec.center_deg))
    u = np.clip(delta / half, -1.0, 1.0)
    au = np.abs(u)
    rl = g.rho(phi)
    base = rl + spec.depth_mm
    inner = base - spec.bulge_mm * (1.0 - au**2) ** 1.5
    thick = spec.thickness_mm * np.sqrt(1.0 - au**spec.end_power)
    if spec.irregularity > 0:
        inner = inner + 0.5 * spec.irregularity * spec.thickness_mm * (
            0.5 + 0.5 * _harmonics(u, spec.shape_seed, 0, spec.shape_phase)
        ) * (1.0 - au**2)
        thick = thick * (
            1.0 + spec.irregularity * _harmonics(u, spec.shape_seed, 1, spec.shape_phase)
        )
    outer = base + thick
    m = np.minimum.reduce([rho - inner, outer - rho, (half - np.abs(delta)) * rho])
    return m, rho - inner


def calcium_region(
    g: LumenGeometry, spec: CalciumSpec, n_alines: int, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance-like margin (mm, > 0 inside) and alpha in [0, 1] on the polar grid."""
    yy, xx = polar_xy(n_alines, n_samples, g.ps)
    m, _ = calcium_margin(g, spec, yy, xx)
    alpha = np.clip(m / (g.ps * spec.edge_px) + 0.5, 0.0, 1.0)
    return m, alpha


def _smooth_noise(shape: tuple[int, int], sigma: tuple[float, float], rng) -> np.ndarray:
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode=("wrap", "reflect"))
    return n / (n.std() + 1e-9)


def insert_calcium(
    image: np.ndarray,
    labels: np.ndarray,
    g: LumenGeometry,
    spec: CalciumSpec,
    rng: np.random.Generator,
    *,
    fade: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint one calcium region into a copy of ``image`` / ``labels`` (polar ``(A, R)``).

    Background pixels inside become calcium; for a nodule (``bulge_mm`` > 0) lumen pixels
    inside too (the lumen then ends at the nodule's surface). With ``fade`` (the default since
    session 63) the calcium's level falls along depth as the real tissue it replaces falls
    (:func:`depth_fade`), so its back border stays as visible as its front one; without, it
    keeps the level of the tissue in front of it all the way down (the builds of sessions
    1-62)."""
    a, r = image.shape
    yy, xx = polar_xy(a, r, g.ps)
    m, behind = calcium_margin(g, spec, yy, xx)
    alpha = np.clip(m / (g.ps * spec.edge_px) + 0.5, 0.0, 1.0)
    free = labels == BACKGROUND
    if spec.bulge_mm > 0:
        free = free | (labels == LUMEN)
    inside = (m >= 0) & free
    alpha = alpha * free
    img = image.astype(np.float32, copy=True)
    lab = labels.copy()
    if not inside.any():
        return img, lab
    local = ndimage.gaussian_filter(image.astype(np.float64), (2.0, 6.0), mode=("wrap", "nearest"))
    speckle = np.clip(image / np.maximum(local, 1e-3), 0.0, 3.0)
    level, ref = _tissue_level(local, inside, g)
    s = spec.texture_scale
    het = 1.0 + spec.heterogeneity * _smooth_noise((a, r), (3.0 * s, 5.0 * s), rng)
    cal = spec.contrast * level[:, None] * np.clip(het, 0.3, 2.0) * speckle
    if fade:
        cal = cal * depth_fade(local, ref)
    if spec.rim > 0:  # bright surface (nodules): (1 + rim) x the tissue in front, fading to
        # the calcium level over 0.04 mm behind the inner border (brighter than the tissue,
        # not a brightened calcium level, which stays darker than the tissue for most nodules)
        w = np.exp(-np.clip(behind, 0, None) / 0.04)
        cal = (1 - w) * cal + w * (1.0 + spec.rim) * level[:, None] * speckle
    img = (1 - alpha) * img + alpha * np.clip(cal, 0.0, 1.0)
    lab[inside] = CALCIUM
    return img.astype(np.float32), lab


def _tissue_level(
    local: np.ndarray, inside: np.ndarray, g: LumenGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """Per A-line: the smoothed tissue level just in front of the insert (never in the lumen:
    at least 2 pixels behind the lumen border), smoothed across A-lines; and the sample it is
    read at (2 pixels behind the lumen border on A-lines without the insert)."""
    a, r = local.shape
    first = np.where(inside.any(axis=1), np.argmax(inside, axis=1), -1)
    rows = np.nonzero(first >= 0)[0]
    wall = np.rint(np.nan_to_num(g.edge_mm) / g.ps).astype(int) + 2
    ref = np.clip(np.maximum(first - 4, wall), 0, r - 1)
    level = np.zeros(a)
    level[rows] = local[rows, ref[rows]]
    weight = ndimage.gaussian_filter1d((first >= 0).astype(float), 3.0, mode="wrap")
    level = ndimage.gaussian_filter1d(level, 3.0, mode="wrap") / np.maximum(weight, 1e-6)
    return np.where(first >= 0, level, np.median(level[rows])), ref


def depth_fade(local: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``(A, R)`` factor in [0, 1]: how far the real tissue level ``local`` has fallen along each
    A-line since sample ``ref`` (1 up to it), as a running minimum so that a bright band inside
    the region cannot lift the calcium, then smoothed across A-lines (sigma 3). The smoothing is
    over every A-line, unweighted: at the ends of an arc the fall of the neighbouring A-lines
    without the insert (read from 2 pixels behind the lumen border) mixes in, a few per cent of
    the calcium's level; an A-line whose tissue level at ``ref`` is 0 (no light) gives 0.
    The RULE46 builds were made with exactly this; changing it changes every fade build.

    Calcium attenuates light about as fibrous tissue does; it looks dark because it scatters
    little back. Its signal therefore falls with depth as the tissue it replaces did, while the
    tissue behind it keeps its own level: the back border is as sharp as the front one
    (``../shared/domain.md``: calcium has sharply delineated borders)."""
    a, r = local.shape
    start = local[np.arange(a), ref]
    behind = np.arange(r)[None, :] > ref[:, None]
    env = np.minimum.accumulate(np.where(behind, local, start[:, None]), axis=1)
    fall = env / np.maximum(start[:, None], 1e-6)
    return np.clip(ndimage.gaussian_filter1d(fall, 3.0, axis=0, mode="wrap"), 0.0, 1.0)


def calcium_columns(g: LumenGeometry, spec: CalciumSpec) -> dict[str, float]:
    """True calcium columns of ``frames.csv`` for one region."""
    phi = math.radians(spec.center_deg) + np.linspace(
        -math.radians(spec.arc_deg) / 2, math.radians(spec.arc_deg) / 2, 2001
    )
    rin = g.rho(phi) + spec.depth_mm
    frac = np.abs(np.linspace(-1.0, 1.0, phi.size))
    rout = rin + spec.thickness_mm * np.sqrt(1.0 - frac**4)
    area = 0.5 * np.trapezoid(rout**2 - rin**2, phi)
    return {
        "calcium_arc_deg": float(spec.arc_deg),
        "calcium_max_thickness_mm": float(spec.thickness_mm),
        "calcium_min_depth_mm": float(spec.depth_mm),
        "calcium_area_mm2": float(area),
    }


# --------------------------------------------------------------------------- struts


@dataclass(frozen=True)
class StrutSpec:
    """One strut: direction about the lumen centroid and distance from the lumen contour."""

    angle_deg: float
    distance_mm: float  # > 0: on the lumen side (malapposed if > threshold)
    width_mm: float = 0.12  # tangential extent of the blooming
    thickness_mm: float = 0.05  # radial extent of the blooming
    brightness: float = 0.95
    shadow: float = 0.08  # intensity factor in the shadow


def strut_point(g: LumenGeometry, spec: StrutSpec) -> np.ndarray:
    phi = math.radians(spec.angle_deg)
    return g.point(phi, float(g.rho(phi)) - spec.distance_mm)


def insert_strut(
    image: np.ndarray,
    labels: np.ndarray,
    g: LumenGeometry,
    spec: StrutSpec,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paint one strut (blooming + shadow) into copies; returns (image, labels, point (y, x))."""
    a, r = image.shape
    p = strut_point(g, spec)
    rp = float(np.hypot(*p))
    ur = p / max(rp, 1e-9)
    ut = np.array([ur[1], -ur[0]])  # tangential direction
    yy, xx = polar_xy(a, r, g.ps)
    u = yy * ur[0] + xx * ur[1] - rp
    v = yy * ut[0] + xx * ut[1]
    hw, hh = spec.width_mm / 2, spec.thickness_mm / 2
    q = np.sqrt((u / hh) ** 2 + (v / hw) ** 2)
    img = image.astype(np.float32, copy=True)
    lab = labels.copy()
    # shadow: A-lines through the strut, behind it (soft one-A-line edges)
    theta = np.arange(a) * (TWO_PI / a)
    thp = math.atan2(p[0], p[1])
    lateral = np.abs(wrap_pi(thp - theta)) * rp  # mm at the strut radius
    step = TWO_PI / a * rp
    s_ang = np.clip((hw - lateral) / max(step, 1e-9) + 0.5, 0.0, 1.0)
    behind = np.clip((np.arange(r) * g.ps - (rp + hh)) / g.ps + 0.5, 0.0, 1.0)
    k = 1.0 - (1.0 - spec.shadow) * s_ang[:, None] * behind[None, :]
    img = img * k
    # blooming: bright core (label) with a one-pixel halo
    jitter = 1.0 + 0.08 * rng.standard_normal((a, r))
    core = spec.brightness * (1.0 - 0.3 * np.clip(q, 0, 1) ** 2) * jitter
    halo = np.clip(1.5 - q, 0.0, 0.5) * 2  # 1 inside, fading to 0 at q = 1.5
    img = np.maximum(img, np.clip(core * halo, 0.0, 1.0)).astype(np.float32)
    lab[q <= 1.0] = STRUT
    return img, lab, p


def stent_columns(
    g: LumenGeometry,
    points: np.ndarray,
    distances: np.ndarray,
    threshold_mm: float,
    samples_per_segment: int = 32,
) -> dict[str, float | int | None]:
    """True stent columns of ``frames.csv`` from strut points (y, x) and their distances."""
    n = int(points.shape[0])
    out: dict[str, float | int | None] = {
        "n_struts": n,
        "n_malapposed": int((distances > threshold_mm).sum()),
        "max_malapposition_mm": float(distances.max()) if n else None,
        "stent_area_mm2": None,
        "malapposition_area_mm2": None,
    }
    if n < 3:
        return out
    pts = torch.tensor(points[None], dtype=torch.float64)
    valid = torch.ones(1, n, dtype=torch.bool)
    c = torch.tensor(g.centroid[None], dtype=torch.float64)
    curve, cv, area = stent_contour(pts, valid, c, samples_per_segment)
    poly = curve[0][cv[0]].numpy()
    out["stent_area_mm2"] = float(area[0])
    phis = np.arange(3600) * (TWO_PI / 3600)
    rs = ray_polygon(g.centroid, phis, poly)
    rl = g.rho(phis)
    rs = np.where(np.isnan(rs), rl, rs)
    out["malapposition_area_mm2"] = float(
        0.5 * np.clip(rl**2 - rs**2, 0, None).sum() * (TWO_PI / 3600)
    )
    return out


def strut_row(frame: int, g: LumenGeometry, point: np.ndarray, distance: float, thr: float):
    d = point - g.centroid
    return {
        "frame": int(frame),
        "angle_deg": float(math.degrees(math.atan2(d[0], d[1])) % 360.0),
        "x_mm": float(point[1]),
        "y_mm": float(point[0]),
        "distance_mm": float(distance),
        "malapposed": bool(distance > thr),
    }
