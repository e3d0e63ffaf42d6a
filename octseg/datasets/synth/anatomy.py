"""The geometry of each frame, evaluated exactly from :class:`~octseg.datasets.synth.params.PullbackParams`.

Coordinates are ``(y, x)`` in mm from the catheter centre (:mod:`octseg.io.labels`); angles in
radians here, from +x towards +y.

- The lumen is a star-shaped closed curve about its own centre ``O`` (offset from the catheter):
  ``r(psi) = R(z) * n(z) * (1 + h(z) * sum_k a_k(z) cos(k psi - p_k(z))) + bulge(psi)``, where
  ``n`` is the stent's narrowing (underexpansion), ``h`` the stent's rounding and ``bulge`` the
  outward bulge of malapposition. It is sampled as a 4096-vertex polygon.
- Calcium and struts are defined about the lumen **centroid** ``C`` of that polygon, with
  ``rho_L(phi)`` the distance from ``C`` to the contour along ``phi`` (``docs/metrics.md``).
- Lipid (opt-in) is defined about the centroid too: a fibrous cap band starting at the contour
  and the lipid core band behind it (:class:`ActiveLipid`).
- Struts sit on the stent, i.e. on the lumen curve *without* the bulge, so where the lumen
  bulges they are left inside the lumen (malapposed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from octseg.core.contour import polygon_area_centroid
from octseg.core.polar import wrap_pi
from octseg.datasets.synth.params import (
    Grid,
    LesionParams,
    PullbackParams,
    draw_base,
    draw_lesions,
    draw_lipids,
)

N_POLY = 4096
TWO_PI = 2 * math.pi


class NotStarShaped(ValueError):
    """A curve is not star-shaped about the requested centre."""


def ray_distance(
    poly: np.ndarray, center: np.ndarray, angles: np.ndarray, strict: bool = True
) -> np.ndarray:
    """Distance from ``center`` to a closed curve (fine polygon, (M, 2) in (y, x)) along
    ``angles``; the curve must be star-shaped about ``center`` (else :class:`NotStarShaped`;
    with ``strict=False`` the vertices are sorted by angle instead)."""
    d = poly - np.asarray(center)[None, :]
    ang = np.unwrap(np.arctan2(d[:, 0], d[:, 1]))
    r = np.hypot(d[:, 0], d[:, 1])
    if ang[-1] < ang[0]:  # clockwise vertex order: reverse
        ang, r = ang[::-1], r[::-1]
    steps = np.diff(np.r_[ang, ang[0] + TWO_PI])
    if np.any(steps <= 0) or abs(ang[-1] - ang[0]) >= TWO_PI:
        if strict:
            raise NotStarShaped("curve is not star-shaped about the centre")
        a = np.remainder(ang, TWO_PI)
        order = np.argsort(a, kind="stable")
        ang, r = a[order], r[order]
    xs = np.r_[ang, ang[0] + TWO_PI]
    rs = np.r_[r, r[0]]
    q = np.remainder(np.asarray(angles, dtype=np.float64) - ang[0], TWO_PI) + ang[0]
    return np.interp(q, xs, rs)


@dataclass
class ActiveLesion:
    """One calcium lesion in one frame: the band ``rho_L(phi) + depth(u) <= rho <=
    rho_L(phi) + depth(u) + thickness(u)`` about the lumen centroid, for ``phi`` in the arc and
    ``u`` the fractional position in the arc."""

    index: int  # index into params.lesions
    start: float  # arc start angle (rad, about the centroid)
    arc: float  # rad
    thickness: float  # mm, the largest along the arc
    depth: float  # mm, the smallest along the arc
    arc_taper: float
    wobble: float = 0.0
    depth_wobble: float = 0.0
    cycles: float = 1.0
    phase: float = 0.0

    def __post_init__(self) -> None:
        u = np.linspace(0, 1, 4001)
        self._tmax = float(self._shape(u).max())

    def _shape(self, u: np.ndarray) -> np.ndarray:
        s = np.sqrt(np.clip(np.sin(math.pi * np.clip(u, 0, 1)), 0, 1))
        base = self.arc_taper + (1 - self.arc_taper) * s
        return base * (1 + self.wobble * np.sin(TWO_PI * self.cycles * u + self.phase))

    def thickness_at(self, u: np.ndarray) -> np.ndarray:
        """Thickness (mm) at fractional arc position ``u`` in [0, 1]; its maximum is
        ``thickness``."""
        return self.thickness * self._shape(np.asarray(u, dtype=np.float64)) / self._tmax

    def depth_at(self, u: np.ndarray) -> np.ndarray:
        """Depth (mm) below the lumen contour at ``u``; its minimum over a full wobble period
        is ``depth``."""
        u = np.asarray(u, dtype=np.float64)
        w = 0.5 * (1 - np.cos(TWO_PI * self.cycles * u + 1.7 * self.phase))
        return self.depth + self.depth_wobble * w

    def arc_position(self, phi: np.ndarray) -> np.ndarray:
        """Fractional position in the arc (values > 1 are outside)."""
        return np.remainder(np.asarray(phi) - self.start, TWO_PI) / self.arc


@dataclass
class ActiveLipid:
    """One lipid lesion in one frame, about the lumen centroid: on a ray of the arc at position
    ``u`` the fibrous cap is ``rho_L <= rho < rho_L + cap_at(u)`` and the core
    ``rho_L + cap_at(u) <= rho <= rho_L + cap_at(u) + core_at(u)``. ``depth_at`` /
    ``thickness_at`` name the core band like :class:`ActiveLesion`'s, so the calcium truth code
    measures it unchanged."""

    index: int  # index into params.lipids
    start: float  # arc start angle (rad, about the centroid)
    arc: float  # rad
    cap_min: float  # mm, the thinnest cap of the frame (at u = cap_position)
    cap_rise: float
    cap_position: float
    core: float  # mm, the largest core thickness (middle of the arc)
    arc_taper: float
    backscatter: float
    attenuation_per_mm: float
    cap_backscatter: float
    border_mm: float

    def cap_at(self, u: np.ndarray) -> np.ndarray:
        """Cap thickness (mm) at ``u`` in [0, 1]: ``cap_min`` at ``cap_position``, rising
        quadratically to ``cap_rise * cap_min`` at the farther end of the arc."""
        u = np.asarray(u, dtype=np.float64)
        u0 = self.cap_position
        x = (u - u0) / max(u0, 1 - u0)
        return self.cap_min * (1 + (self.cap_rise - 1) * x * x)

    def core_at(self, u: np.ndarray) -> np.ndarray:
        s = np.sqrt(np.clip(np.sin(math.pi * np.clip(np.asarray(u, np.float64), 0, 1)), 0, 1))
        return self.core * (self.arc_taper + (1 - self.arc_taper) * s)

    def depth_at(self, u: np.ndarray) -> np.ndarray:
        return self.cap_at(u)

    def thickness_at(self, u: np.ndarray) -> np.ndarray:
        return self.core_at(u)

    def arc_position(self, phi: np.ndarray) -> np.ndarray:
        """Fractional position in the arc (values > 1 are outside)."""
        return np.remainder(np.asarray(phi) - self.start, TWO_PI) / self.arc


@dataclass
class FrameGeometry:
    frame: int
    poly: np.ndarray  # (N_POLY, 2) lumen contour, (y, x) mm from the catheter
    area: float
    centroid: np.ndarray  # (y, x)
    rho_cat: np.ndarray  # (A,) lumen contour distance along each A-line
    gw_angle: float  # catheter-centred (rad)
    gw_dist: float  # catheter centre to guidewire centre (mm)
    gw_radius: float
    lesions: list[ActiveLesion] = field(default_factory=list)
    lipids: list[ActiveLipid] = field(default_factory=list)
    struts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (S, 2) (y, x)
    strut_angles: np.ndarray = field(default_factory=lambda: np.zeros(0))  # about centroid
    strut_distance: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mm
    strut_half_len: np.ndarray = field(default_factory=lambda: np.zeros(0))  # tangential, mm
    strut_half_thick: np.ndarray = field(default_factory=lambda: np.zeros(0))  # radial, mm

    @property
    def gw_half_width(self) -> float:
        """Half angle (rad, about the catheter) of the guidewire's shadow band."""
        return math.asin(min(1.0, self.gw_radius / self.gw_dist))

    def rho_lumen(self, phi: np.ndarray) -> np.ndarray:
        """Distance from the lumen centroid to the contour along ``phi`` (rad)."""
        return ray_distance(self.poly, self.centroid, phi)

    def gw_near(self, theta: np.ndarray) -> np.ndarray:
        """Radius (from the catheter) where A-line ``theta`` enters the guidewire; inf if it
        misses. Class 4 is everything at or beyond it."""
        dth = wrap_pi(np.asarray(theta) - self.gw_angle)
        s = self.gw_dist * np.sin(dth)
        disc = self.gw_radius**2 - s * s
        ok = (disc >= 0) & (np.abs(dth) < math.pi / 2)
        near = self.gw_dist * np.cos(dth) - np.sqrt(np.where(ok, disc, 0.0))
        return np.where(ok, near, np.inf)

    def hidden_by_guidewire(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """True where (y, x) lies in class 4 (the guidewire or its shadow)."""
        th = np.arctan2(y, x)
        return np.hypot(y, x) >= self.gw_near(th)


class Anatomy:
    """Evaluates :class:`FrameGeometry` for any frame of a pullback."""

    def __init__(self, params: PullbackParams):
        self.p = params
        self.grid: Grid = params.grid
        self.psi = np.arange(N_POLY) * (TWO_PI / N_POLY)
        a = self.grid.n_alines
        self.theta = np.arange(a) * (TWO_PI / a)

    # ---------------------------------------------------------------- lumen curve
    def lumen_radius(self, f: int, psi: np.ndarray, bulge: bool = True) -> np.ndarray:
        p, fs = self.p, self.grid.frame_spacing_mm
        z = f * fs
        big_r = float(p.lumen.radius_mm(z))
        hscale = 1.0
        st = p.stent
        if st is not None:
            big_r *= float(st.narrowing(z, fs))
            hscale = 1.0 - st.rounding * float(st.window(z, fs))
        shape = np.zeros_like(psi)
        for h in p.lumen.harmonics:
            amp = max(0.0, float(h.amp(z)))
            shape += amp * np.cos(h.k * psi - math.radians(float(h.phase_deg(z))))
        r = big_r * (1 + hscale * shape)
        mal = st.malapposition if st is not None else None
        if bulge and mal is not None:
            height = float(mal.height(f))
            if height > 0:
                dd = wrap_pi(psi - math.radians(mal.angle_deg))
                w = math.radians(mal.half_width_deg)
                r = r + np.where(np.abs(dd) < w, height * 0.5 * (1 + np.cos(math.pi * dd / w)), 0)
        return r

    def lumen_offset(self, f: int) -> np.ndarray:
        """Lumen centre ``O`` (y, x) from the catheter, clamped so the catheter fits inside."""
        lum = self.p.lumen
        z = f * self.grid.frame_spacing_mm
        rmin = float(self.lumen_radius(f, self.psi, bulge=False).min())
        m = float(np.clip(lum.offset_mm(z), 0.1, 0.6))
        m = max(0.0, min(m, rmin - lum.catheter_radius_mm - lum.catheter_margin_mm))
        b = math.radians(float(lum.offset_angle_deg(z)))
        return np.array([m * math.sin(b), m * math.cos(b)])

    def lumen_polygon(self, f: int, bulge: bool = True) -> np.ndarray:
        o = self.lumen_offset(f)
        r = self.lumen_radius(f, self.psi, bulge)
        return np.stack([o[0] + r * np.sin(self.psi), o[1] + r * np.cos(self.psi)], axis=1)

    # ---------------------------------------------------------------- one frame
    def frame(self, f: int, with_lesions: bool = True) -> FrameGeometry:
        p, g = self.p, self.grid
        z = f * g.frame_spacing_mm
        poly = self.lumen_polygon(f)
        area, cen = polygon_area_centroid(poly)
        rho_cat = ray_distance(poly, np.zeros(2), self.theta)
        # guidewire: inside the lumen, between catheter and wall
        gw = p.guidewire
        alpha = math.radians(float(gw.angle_deg(z)))
        wall = float(ray_distance(poly, np.zeros(2), np.array([alpha]))[0])
        dmin = p.lumen.catheter_radius_mm + gw.radius_mm + 0.03
        dmax = wall - gw.radius_mm - 0.05
        q = float(np.clip(gw.position(z), 0.05, 0.95))
        dist = dmin + q * max(0.0, dmax - dmin)
        geo = FrameGeometry(
            frame=f,
            poly=poly,
            area=area,
            centroid=cen,
            rho_cat=rho_cat,
            gw_angle=alpha,
            gw_dist=dist,
            gw_radius=gw.radius_mm,
        )
        if with_lesions:
            geo.lesions = self._lesions(f)
            geo.lipids = self._lipids(f)
        if p.stent is not None and p.stent.start_frame <= f <= p.stent.end_frame:
            self._struts(geo)
        return geo

    def _lesions(self, f: int) -> list[ActiveLesion]:
        out = []
        for i, les in enumerate(self.p.lesions):
            if (active := _active_arc(les, f)) is None:
                continue
            v, start, arc = active
            out.append(
                ActiveLesion(
                    index=i,
                    start=start,
                    arc=arc,
                    thickness=v["thickness_mm"],
                    depth=v["depth_mm"],
                    arc_taper=les.arc_taper,
                    wobble=les.wobble,
                    depth_wobble=les.depth_wobble_mm,
                    cycles=les.wobble_cycles,
                    phase=les.wobble_phase + les.wobble_drift * (f - les.start_frame),
                )
            )
        return out

    def _lipids(self, f: int) -> list[ActiveLipid]:
        out = []
        for i, les in enumerate(self.p.lipids):
            if (active := _active_arc(les, f)) is None:
                continue
            v, start, arc = active
            out.append(
                ActiveLipid(
                    index=i,
                    start=start,
                    arc=arc,
                    cap_min=v["cap_um"] / 1000.0,
                    cap_rise=les.cap_rise,
                    cap_position=les.cap_position,
                    core=v["core_mm"],
                    arc_taper=les.arc_taper,
                    backscatter=les.backscatter,
                    attenuation_per_mm=les.attenuation_per_mm,
                    cap_backscatter=les.cap_backscatter,
                    border_mm=les.border_mm,
                )
            )
        return out

    def _struts(self, geo: FrameGeometry) -> None:
        st, g = self.p.stent, self.grid
        assert st is not None
        f = geo.frame
        rng = np.random.default_rng([st.strut_seed, f])
        n = int(np.clip(st.n_struts + rng.integers(-2, 3), 8, 16))
        phi0 = math.radians(st.phase_deg + 360.0 * f * g.frame_spacing_mm / st.pitch_mm)
        phi = phi0 + TWO_PI * (np.arange(n) + rng.uniform(-0.15, 0.15, n)) / n
        phi = np.remainder(phi, TWO_PI)
        e = rng.uniform(-0.03, 0.02, n)  # apposition: distance to the stent-free contour
        half_len = np.full(n, st.strut_length_mm / 2)
        half_thick = np.full(n, st.strut_thickness_mm / 2)
        base = self.lumen_polygon(f, bulge=False)
        rho_b = ray_distance(base, geo.centroid, phi)
        rad = rho_b - e
        pts = geo.centroid[None, :] + rad[:, None] * np.stack([np.sin(phi), np.cos(phi)], 1)
        # blooming at least ~1 pixel in each direction so it survives rasterisation
        r_p = np.hypot(pts[:, 0], pts[:, 1])
        half_len = np.maximum(half_len, 0.6 * r_p * TWO_PI / g.n_alines)
        half_thick = np.maximum(half_thick, 0.6 * g.pixel_spacing_mm)
        # struts behind the guidewire are invisible: not placed
        th_p = np.arctan2(pts[:, 0], pts[:, 1])
        margin = geo.gw_half_width + half_len / r_p + 2.5 * TWO_PI / g.n_alines
        keep = np.abs(wrap_pi(th_p - geo.gw_angle)) > margin
        rho_l = ray_distance(geo.poly, geo.centroid, phi)
        geo.struts = pts[keep]
        geo.strut_angles = phi[keep]
        geo.strut_distance = (rho_l - rad)[keep]
        geo.strut_half_len = half_len[keep]
        geo.strut_half_thick = half_thick[keep]

    # ---------------------------------------------------------------- helpers
    def gw_angle_about_centroid(self, f: int, depth_mm: float) -> float:
        """Direction (deg, about the lumen centroid) of the guidewire shadow at a depth below
        the lumen contour."""
        geo = self.frame(f, with_lesions=False)
        wall = float(ray_distance(geo.poly, np.zeros(2), np.array([geo.gw_angle]))[0])
        r = wall + depth_mm
        pt = np.array([r * math.sin(geo.gw_angle), r * math.cos(geo.gw_angle)])
        d = pt - geo.centroid
        return math.degrees(math.atan2(d[0], d[1])) % 360.0

    def check(self) -> None:
        """Raise ValueError when a frame breaks the generator's assumptions."""
        g = self.grid
        depth_limit = g.depth_mm - 6 * g.pixel_spacing_mm - 0.05
        cath = self.p.lumen.catheter_radius_mm
        for f in range(g.n_frames):
            geo = self.frame(f)
            # star-shaped about the catheter (rho_cat) and the centroid
            rho = geo.rho_lumen(np.linspace(0, TWO_PI, 720, endpoint=False))
            if geo.rho_cat.min() < cath + 0.1:
                raise ValueError(f"frame {f}: the catheter touches the lumen wall")
            if (
                geo.gw_dist + geo.gw_radius
                > ray_distance(geo.poly, np.zeros(2), np.array([geo.gw_angle]))[0] - 0.02
                or geo.gw_dist - geo.gw_radius < cath + 0.01
            ):
                raise ValueError(f"frame {f}: no room for the guidewire")
            if geo.struts.shape[0]:
                base = self.lumen_polygon(f, bulge=False)
                ray_distance(base, geo.centroid, np.zeros(1))
            for les in [*geo.lesions, *geo.lipids]:
                phi = les.start + np.linspace(0, les.arc, 64)
                rl = geo.rho_lumen(phi)
                uu = np.linspace(0, 1, 64)
                rout = rl + les.depth_at(uu) + les.thickness_at(uu)
                pts = geo.centroid[None, :] + rout[:, None] * np.stack(
                    [np.sin(phi), np.cos(phi)], 1
                )
                if np.hypot(pts[:, 0], pts[:, 1]).max() > depth_limit:
                    raise ValueError(f"frame {f}: a lesion reaches beyond the A-lines")
            if rho.max() > depth_limit - 0.3:
                raise ValueError(f"frame {f}: lumen too large for the field of view")


def _active_arc(les: Any, f: int) -> tuple[dict[str, float], float, float] | None:
    """A lesion's (calcium or lipid) per-frame values at frame ``f``, and its arc's start angle
    (rad, in [0, 2 pi)) and extent (rad, at most 359 degrees) about the centroid; None outside
    the lesion's frames."""
    if not les.contains(np.array([f]))[0]:
        return None
    v = {k: float(x[0]) for k, x in les.per_frame(np.array([f])).items()}
    arc = math.radians(min(v["arc_deg"], 359.0))
    start = math.radians(v["center_deg"]) - arc / 2
    return v, float(start % TWO_PI), arc


def _lesion_frames_ok(lesions: list[LesionParams], n_frames: int) -> bool:
    for a in lesions:
        if a.start_frame < 0 or a.end_frame >= n_frames or a.end_frame <= a.start_frame:
            return False
    for a, b in zip(lesions, lesions[1:]):
        if b.start_frame - a.end_frame < 4:  # keep lesions apart (gaps up to 2 are bridged)
            return False
    return True


def draw_pullback(
    grid: Grid, seed: int, index: int, pullback_id: str | None = None, lipid: bool = False
):
    """Draw parameters for pullback ``index`` of the cohort with ``seed``; redraws (with a
    different attempt number, deterministically) until every frame is valid. ``lipid`` adds a
    lipid lesion (:func:`~octseg.datasets.synth.params.draw_lipids`) from a random stream of its
    own, so everything else is drawn as without it, unless the lipid has no free run of frames
    or does not fit the field (:meth:`Anatomy.check`): then the whole pullback is redrawn."""
    grid.validate()
    pid = pullback_id or f"synth-{index:03d}"
    last: Exception | None = None
    for attempt in range(20):
        p = draw_base(grid, seed + 7919 * attempt, index, pid)
        p.seed = int(seed)
        anat = Anatomy(p)
        rng = np.random.default_rng([int(seed), int(index), 2, attempt])
        p.lesions = draw_lesions(p, index, rng, anat.gw_angle_about_centroid)
        if not _lesion_frames_ok(p.lesions, grid.n_frames):
            last = ValueError("lesions do not fit")
            continue
        if lipid:
            lrng = np.random.default_rng([int(seed), int(index), 3, attempt])
            p.lipids = draw_lipids(p, index, lrng, anat.gw_angle_about_centroid)
            if not p.lipids:
                last = ValueError("no room for a lipid lesion")
                continue
        try:
            Anatomy(p).check()
        except ValueError as exc:  # includes NotStarShaped
            last = exc
            continue
        return p
    raise RuntimeError(f"could not draw a valid pullback for seed {seed}, index {index}: {last}")
