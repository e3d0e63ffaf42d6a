"""A straightforward per-frame NumPy / SciPy / scikit-image implementation of the same metrics.

Used by ``benchmarks/geometry.py`` as the speed baseline and as an independent cross-check of
the batched torch implementation (different code paths: ``scipy.ndimage.map_coordinates`` for
ray sampling, ``numpy.interp`` for periodic profiles, ``skimage.measure.label`` for strut
components). Frame by frame; not meant for production use.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from skimage.measure import label as sk_label

from octseg.core.classes import CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.core.contour import stent_contour
from octseg.geometry import lumen as lu
from octseg.geometry.settings import GeometrySettings

TWO_PI = 2 * math.pi


def _reach(seed: np.ndarray, mask: np.ndarray, copies: int = 5) -> np.ndarray:
    """Pixels of ``mask`` (A, S) 8-connected to ``seed`` with periodic rows (propagated on
    ``copies`` stacked copies, the middle one returned)."""
    big = ndimage.binary_propagation(
        np.tile(seed & mask, (copies, 1)),
        structure=np.ones((3, 3), bool),
        mask=np.tile(mask, (copies, 1)),
    )
    a = mask.shape[0]
    return big[(copies // 2) * a : (copies // 2 + 1) * a]


def filled_exit(vals: np.ndarray, cath_samples: int) -> np.ndarray:
    """First sample outside the filled lumen on each ray (docs/metrics.md, lumen contour)."""
    lum = np.isin(vals, (LUMEN, STRUT))
    passable = lum.copy()
    passable[:, :cath_samples] = True
    seed = np.zeros_like(lum)
    seed[:, 0] = True
    kept = _reach(seed, passable) & lum
    seed_o = np.zeros_like(lum)
    seed_o[:, -1] = True
    gw = vals == GUIDEWIRE  # ends a ray, connects nothing
    outside = _reach(seed_o, ~kept & ~gw) | gw
    return np.where(outside.any(1), outside.argmax(1), vals.shape[1])


def _widen(masked: np.ndarray, k: int) -> np.ndarray:
    """``masked`` rays (N,) widened by ``k`` rays on both sides, wrapping around the frame."""
    if k <= 0:
        return masked
    return ndimage.maximum_filter1d(masked, size=2 * k + 1, mode="wrap")


def _first_exit(
    vals: np.ndarray, cath_samples: int = 0, fill: bool = False, shadow=None, strut_widen: int = 0
):
    """Exit sample of every ray and the rays to interpolate: through the guidewire, or with a
    strut at most ``shadow`` samples (None: any distance) before the exit, beyond the catheter
    (those widened by ``strut_widen`` rays on each side)."""
    n, s = vals.shape
    notl = ~np.isin(vals, (LUMEN, STRUT))
    anyout = notl.any(1)
    k = np.where(anyout, notl.argmax(1), s)
    if fill:
        k = filled_exit(vals, cath_samples)
        anyout = k < s
    out_cls = vals[np.arange(n), np.minimum(k, s - 1)]
    gw = (vals == GUIDEWIRE).any(1)  # rays through the guidewire shadow: interpolated
    lo = np.full(n, cath_samples) if shadow is None else np.maximum(cath_samples, k - shadow)
    idx = np.arange(s)
    near = ((vals == STRUT) & (idx >= lo[:, None]) & (idx < k[:, None])).any(1)
    return k, gw | (anyout & (out_cls == GUIDEWIRE)) | _widen(near, strut_widen)


def _profile(phi: np.ndarray, dist: np.ndarray, query: np.ndarray) -> np.ndarray:
    phi = np.mod(phi, TWO_PI)
    o = np.argsort(phi, kind="stable")
    return np.interp(query, phi[o], dist[o], period=TWO_PI)


def _sample(lab, space, ps, center, y, x):
    """Nearest label at mm offsets (y, x) from the catheter; background outside the frame."""
    h, w = lab.shape
    if space == "cartesian":
        rows = np.round(center[0] + y / ps)
        cols = np.round(center[1] + x / ps)
    else:
        rows = np.mod(np.round(np.arctan2(y, x) * h / TWO_PI), h)
        cols = np.round(np.hypot(y, x) / ps)
    return ndimage.map_coordinates(lab, [rows, cols], order=0, mode="constant", cval=0)


def measure_frame(
    lab: np.ndarray,
    space: str,
    ps: float,
    center: tuple[float, float] | None = None,
    settings: GeometrySettings | None = None,
) -> tuple[dict, list[dict]]:
    """Per-frame metrics (FRAME_COLUMNS minus frame/position) and strut rows of one frame."""
    s = settings or GeometrySettings()
    h, w = lab.shape
    n = s.n_rays
    fill = s.fill_lumen_holes
    margin, strut_widen = lu.margin_rays(s, h if space == "polar" else n)
    if space == "polar":
        theta = TWO_PI * np.arange(h) / h
        cath = lu.samples_within(s.catheter_radius_mm, ps)
        shadow = lu.samples_within(s.strut_shadow_mm, ps)
        k, masked = _first_exit(lab, cath, fill, shadow, strut_widen)
        radii = np.clip((k - 0.5) * ps, 0, None)
    else:
        theta = TWO_PI * np.arange(n) / n
        rmax = math.hypot(max(center[0], h - 1 - center[0]), max(center[1], w - 1 - center[1]))
        t = np.arange(int(math.ceil(rmax / 0.5)) + 2) * 0.5 * ps
        yy = t[None, :] * np.sin(theta)[:, None]
        xx = t[None, :] * np.cos(theta)[:, None]
        vals = _sample(lab, space, ps, center, yy, xx)
        cath = lu.samples_within(s.catheter_radius_mm, 0.5 * ps)
        shadow = lu.samples_within(s.strut_shadow_mm, 0.5 * ps)
        k, masked = _first_exit(vals, cath, fill, shadow, strut_widen)
        radii = np.clip((k - 0.5) * 0.5 * ps, 0, None)
    masked = _widen(masked, margin)  # the shadow margin about every masked ray
    if masked.any() and not masked.all():
        radii = radii.copy()
        radii[masked] = np.interp(theta[masked], theta[~masked], radii[~masked], period=TWO_PI)
    hw = s.contour_smoothing_rays
    if hw:
        ker = np.ones(2 * hw + 1) / (2 * hw + 1)
        radii = np.convolve(np.concatenate([radii[-hw:], radii, radii[:hw]]), ker, "valid")
    x, y = radii * np.cos(theta), radii * np.sin(theta)
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    a2 = cross.sum()
    row: dict = {}
    has_lumen = a2 != 0
    cx = ((x + x1) * cross).sum() / (3 * a2) if has_lumen else 0.0
    cy = ((y + y1) * cross).sum() / (3 * a2) if has_lumen else 0.0
    phi = TWO_PI * np.arange(n) / n
    if has_lumen:
        vphi, vdist = np.arctan2(y - cy, x - cx), np.hypot(y - cy, x - cx)
        rho_l = _profile(vphi, vdist, phi)
        chord = rho_l[: n // 2] + rho_l[n // 2 :]
        row.update(
            lumen_area_mm2=abs(a2) / 2,
            lumen_mean_diameter_mm=chord.mean(),
            lumen_min_diameter_mm=chord.min(),
            lumen_max_diameter_mm=chord.max(),
            lumen_eccentricity=(chord.max() - chord.min()) / chord.max(),
            lumen_centroid_x_mm=cx,
            lumen_centroid_y_mm=cy,
        )
    else:
        rho_l = np.full(n, np.nan)

    # calcium along rays from the centroid, one sample per pixel out to the frame's extent
    if space == "polar":
        reach = w * ps
    else:
        reach = math.hypot(h, w) * ps
    t = np.arange(int(math.ceil((reach + math.hypot(cy, cx)) / ps)) + 2) * ps
    vals = _sample(
        lab,
        space,
        ps,
        center,
        cy + t[None, :] * np.sin(phi)[:, None],
        cx + t[None, :] * np.cos(phi)[:, None],
    )
    ca = vals == CALCIUM
    hit = ca.any(1)
    if hit.any():
        # rays through the guidewire shadow or a strut: nothing behind them can be seen
        gw = ((vals == GUIDEWIRE) | (vals == STRUT)).any(1) & ~hit
        bridged = np.zeros(n, bool)
        for start in np.flatnonzero(gw & ~np.roll(gw, 1)):  # runs of shadow rays
            end = start
            while gw[(end + 1) % n] and (end + 1) % n != start:
                end += 1
            if hit[(start - 1) % n] and hit[(end + 1) % n]:
                bridged[np.arange(start, end + 1) % n] = True
        row["calcium_arc_deg"] = (hit | bridged).sum() * 360.0 / n
        row["calcium_max_thickness_mm"] = ca.sum(1).max() * ps
        if has_lumen:
            lead = np.clip((ca.argmax(1) - 0.5) * ps, 0, None)
            row["calcium_min_depth_mm"] = max(float((lead - rho_l)[hit].min()), 0.0)
    cam = lab == CALCIUM
    if cam.any():
        if space == "cartesian":
            row["calcium_area_mm2"] = cam.sum() * ps * ps
        else:
            j = np.maximum(np.arange(w), 0.125)
            row["calcium_area_mm2"] = (cam.sum(0) * j).sum() * ps * ps * TWO_PI / h

    # struts: skimage components, merged across the polar seam
    sm = lab == STRUT
    comp = sk_label(sm, connectivity=2)
    if space == "polar" and comp.max() > 0:
        parent = np.arange(comp.max() + 1)

        def root(a):
            while parent[a] != a:
                a = parent[a]
            return a

        for j in np.flatnonzero(sm[-1]):
            for jj in (j - 1, j, j + 1):
                if 0 <= jj < w and sm[0, jj]:
                    ra, rb = root(comp[-1, j]), root(comp[0, jj])
                    parent[max(ra, rb)] = min(ra, rb)
        comp = np.vectorize(root)(comp) * sm
    ids = [i for i in np.unique(comp) if i > 0]
    rr, cc = np.nonzero(sm)
    if space == "polar":
        th, r = TWO_PI * rr / h, cc * ps
        py, px, wt = r * np.sin(th), r * np.cos(th), np.maximum(cc, 0.125)
    else:
        py, px, wt = (rr - center[0]) * ps, (cc - center[1]) * ps, np.ones(rr.size)
    lab_of = comp[rr, cc]
    pts = np.array(
        [
            [
                np.average(py[lab_of == i], weights=wt[lab_of == i]),
                np.average(px[lab_of == i], weights=wt[lab_of == i]),
            ]
            for i in ids
        ]
    ).reshape(-1, 2)
    struts = []
    row["n_struts"] = len(pts)
    if not len(pts):
        row["n_malapposed"] = 0
    if len(pts):
        d = pts - [cy, cx]
        sphi = np.mod(np.arctan2(d[:, 0], d[:, 1]), TWO_PI)
        dist = _profile(vphi, vdist, sphi) - np.hypot(d[:, 0], d[:, 1]) if has_lumen else None
        thr = s.strut_threshold_mm
        for q in range(len(pts)):
            dq = None if dist is None else float(dist[q])
            struts.append(
                {
                    "angle_deg": math.degrees(sphi[q]),
                    "x_mm": pts[q, 1],
                    "y_mm": pts[q, 0],
                    "distance_mm": dq,
                    "malapposed": None if dq is None else dq > thr,
                }
            )
        if dist is not None:
            row["n_malapposed"] = int((dist > thr).sum())
            row["max_malapposition_mm"] = float(dist.max())
        if len(pts) >= s.min_struts:
            tp = torch.from_numpy(pts)[None].float()
            curve, cmask, area = stent_contour(
                tp,
                torch.ones(1, len(pts), dtype=torch.bool),
                torch.tensor([[cy, cx]], dtype=torch.float32),
                s.contour_samples_per_segment,
            )
            row["stent_area_mm2"] = float(area[0])
            if has_lumen:
                cv = curve[0].numpy().astype(float) - [cy, cx]
                rho_s = _profile(np.arctan2(cv[:, 0], cv[:, 1]), np.hypot(cv[:, 0], cv[:, 1]), phi)
                gap = np.clip(rho_l**2 - rho_s**2, 0, None)
                row["malapposition_area_mm2"] = 0.5 * gap.sum() * TWO_PI / n
    return row, struts


def measure_reference(labels: np.ndarray, space: str, ps: float, center=None, settings=None):
    """Per-frame rows and strut lists of every frame (a plain loop over frames)."""
    if space == "cartesian" and center is None:
        h, w = labels.shape[1:]
        center = ((h - 1) / 2, (w - 1) / 2)
    return [measure_frame(f, space, ps, center, settings) for f in labels]
