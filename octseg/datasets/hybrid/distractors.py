"""Things that are not calcium, placed into real polar frames with exact labels: lipid under a
fibrous cap (classes 6 and 5); side branches, media bands and vasa vasorum (labels unchanged).

**Lipid** (:class:`LipidSpec`), about the lumen centroid like calcium
(:mod:`octseg.datasets.hybrid.insert`): over the rays ``|phi - centre| <= arc/2`` the **fibrous
cap** (class 5) runs from the lumen contour ``rho_L(phi)`` to ``rho_L(phi) + cap(phi)`` and the
**lipid core** (class 6) from there to ``+ core_thickness * sqrt(1 - u^4)`` (``u``: position along
the arc, -1..1). The cap is thinnest, ``cap_min_um``, over ``+-flat_deg`` about
``cap_min_deg`` and thickens linearly with the angular distance beyond that, reaching
``cap_max_um`` ``flat_deg`` + half an arc from ``cap_min_deg`` (and no more); so the true
minimal cap thickness is ``cap_min_um`` (flat over more than the geometry's +-2 degree
averaging window), the true lipid depth ``cap_min_um`` and the true lipid arc ``arc_deg``. Only background pixels are relabelled. The look is the textbook
one (docs/metrics.md, plaque): the cap is brighter than the wall (``cap_boost``), the core is
signal-poor with a *diffuse* inner border (a sigmoid ``diffuse_mm`` wide) and the signal decays
fast behind that border (``attenuation_mm``, down to ``floor``) through the core and the tissue
behind it; its angular ends fade over ``taper_deg``. The real speckle is kept (multiplicative).

**Side branch** (:class:`BranchSpec`): a disc of radius ``radius_mm`` whose centre sits
``offset`` x radius behind the lumen contour along ``center_deg``, opening out of the lumen;
the non-lumen pixels in it get the lumen's own dark level and speckle, with a brighter rim (the
branch wall). **Labels are not changed**: the branch stays background and the lumen is closed
across the ostium as on the real pullback, whose expert masks close the lumen straight across
a branch's opening (docs/real_data.md, section 2). The lumen truth is therefore unchanged.

**Media band behind calcium** (:class:`MediaSpec`): on real frames a thin signal-poor band, the
media, often runs just behind a thin calcium lesion, and a model then reads the two as one
thicker lesion. :func:`insert_media_band` darkens a band ``width_mm`` wide that starts
``gap_mm`` behind the far border of one inserted lesion, A-line by A-line, optionally running on
``extra_deg`` beyond the lesion's ends at the depth of its nearest A-line. Borders are soft
(``edge_mm``: diffuse, where calcium's are sharp), the ends fade, the real speckle is kept.
**Labels are not changed**: the band is tissue.

**Vasa vasorum** (:class:`VasaChannel`, :func:`insert_vasa`): the small vessels of the wall, on
real frames small round signal-poor voids with *sharp* borders a few tenths of a millimetre
into the wall, seen over a few consecutive frames. Sharp-edged and dark like calcium, they are
what a model trained without them calls calcium in the real held-out wall
(docs/calcium_candidates.md, twenty-sixth session). A channel is a disc of radius ``radius_mm``
centred ``depth_mm`` behind the lumen contour along ``center_deg``; its pixels are darkened
(``darkness``, the real speckle kept) over a ``edge_mm`` border, and only where every label
within ``clear_mm`` of the disc is background (never over or beside calcium, lipid or cap, whose
truth would then be ambiguous). **Labels are not changed**: a vas vasorum is tissue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from octseg.core.classes import BACKGROUND, FIBROUS_CAP, LIPID, LUMEN
from octseg.core.polar import wrap_pi
from octseg.datasets.hybrid.insert import LumenGeometry, polar_xy, run_swell

# The 151 expert-labelled vasa vasorum of the real pullback (78 of its 186 frames, 1-3 a frame;
# 5th-95th percentiles at the assumed 0.01 mm pixel): 0.13-0.40 mm across, centres 0.23-0.84 mm
# behind the lumen border, median signal 0.21-0.58 of the tissue ring around them.
VASA_DEPTH_MM = (0.2, 0.85)
VASA_RADIUS_MM = (0.065, 0.2)
VASA_DARKNESS = (0.4, 0.8)


@dataclass(frozen=True)
class LipidSpec:
    center_deg: float
    arc_deg: float
    cap_min_um: float
    cap_max_um: float
    core_thickness_mm: float
    cap_min_deg: float | None = None  # direction of the thinnest cap (None: the centre)
    flat_deg: float = 4.0
    cap_boost: float = 0.4
    diffuse_mm: float = 0.08
    attenuation_mm: float = 0.15
    floor: float = 0.08
    taper_deg: float = 8.0

    def __post_init__(self) -> None:
        if not 0 < self.arc_deg < 360:
            raise ValueError(f"lipid arc must be in (0, 360) degrees, got {self.arc_deg}")
        if not 0 < self.cap_min_um <= self.cap_max_um:
            raise ValueError("lipid cap thicknesses must satisfy 0 < cap_min_um <= cap_max_um")
        off = abs(math.degrees(wrap_pi(math.radians(self.min_deg - self.center_deg))))
        if off + self.flat_deg + 2.0 > self.arc_deg / 2:
            raise ValueError("the thinnest cap must lie 2 degrees + flat_deg inside the arc")

    @property
    def min_deg(self) -> float:
        return self.center_deg if self.cap_min_deg is None else self.cap_min_deg


def _lipid_profile(g: LumenGeometry, spec: LipidSpec, y: np.ndarray, x: np.ndarray):
    """(delta from the centre (rad), rho, rho_L, cap (mm), core outer radius) at points (y, x)."""
    dy, dx = y - g.centroid[0], x - g.centroid[1]
    phi = np.arctan2(dy, dx)
    rho = np.hypot(dy, dx)
    half = math.radians(spec.arc_deg) / 2
    delta = wrap_pi(phi - math.radians(spec.center_deg))
    off = np.degrees(np.abs(wrap_pi(phi - math.radians(spec.min_deg))))
    ramp = np.clip((off - spec.flat_deg) / (spec.arc_deg / 2), 0.0, 1.0)
    cap = (spec.cap_min_um + (spec.cap_max_um - spec.cap_min_um) * ramp) / 1000.0
    rl = g.rho(phi)
    au = np.clip(np.abs(delta) / half, 0.0, 1.0)
    outer = rl + cap + spec.core_thickness_mm * np.sqrt(1.0 - au**4)
    return delta, rho, rl, cap, outer


def lipid_regions(
    g: LumenGeometry, spec: LipidSpec, n_alines: int, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean cap and core masks ``(A, R)``: the polar pixel centres inside each."""
    yy, xx = polar_xy(n_alines, n_samples, g.ps)
    delta, rho, rl, cap, outer = _lipid_profile(g, spec, yy, xx)
    on_arc = np.abs(delta) <= math.radians(spec.arc_deg) / 2
    cap_m = on_arc & (rho >= rl) & (rho < rl + cap)
    core = on_arc & (rho >= rl + cap) & (rho < outer)
    return cap_m, core


def insert_lipid(
    image: np.ndarray, labels: np.ndarray, g: LumenGeometry, spec: LipidSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Paint a fibrous cap over a lipid core into copies of ``image`` / ``labels``."""
    a, r = image.shape
    yy, xx = polar_xy(a, r, g.ps)
    delta, rho, rl, cap, _ = _lipid_profile(g, spec, yy, xx)
    cap_m, core = lipid_regions(g, spec, a, r)
    bg = labels == BACKGROUND
    lab = labels.copy()
    lab[cap_m & bg] = FIBROUS_CAP
    lab[core & bg] = LIPID
    half = math.radians(spec.arc_deg) / 2
    taper = math.radians(spec.taper_deg)
    wa = np.clip((half - np.abs(delta)) / taper + 0.5, 0.0, 1.0)  # fading angular ends
    r_in = rl + cap
    beyond = rho - r_in
    s = 0.5 * (1.0 + np.tanh(beyond / max(spec.diffuse_mm / 2, 1e-6)))  # diffuse inner border
    att = spec.floor + (1 - spec.floor) * np.exp(-np.clip(beyond, 0, None) / spec.attenuation_mm)
    dark = 1.0 - s * wa * (1.0 - att)
    cap_w = np.clip(1.0 - np.abs((rho - rl - cap / 2) / (cap / 2 + g.ps)), 0, 1) ** 0.5
    bright = 1.0 + spec.cap_boost * cap_w * wa * (rho >= rl - g.ps) * ~(labels == LUMEN)
    img = np.clip(image.astype(np.float32) * dark * bright, 0.0, 1.0)
    return img.astype(np.float32), lab


def lipid_columns(spec: LipidSpec) -> dict[str, float]:
    """True plaque columns of ``frames.csv`` for one lipid insert (docs/metrics.md, plaque)."""
    return {
        "lipid_arc_deg": float(spec.arc_deg),
        "lipid_min_depth_mm": float(spec.cap_min_um / 1000.0),
        "cap_min_thickness_um": float(spec.cap_min_um),
        "cap_min_angle_deg": float(spec.min_deg % 360.0),
    }


@dataclass(frozen=True)
class BranchSpec:
    center_deg: float
    radius_mm: float
    offset: float = 0.6  # disc centre behind the lumen contour, in radii (< 1: it opens)
    rim: float = 0.35  # brightening of the branch wall


def insert_branch(
    image: np.ndarray,
    labels: np.ndarray,
    g: LumenGeometry,
    spec: BranchSpec,
    rng: np.random.Generator,
) -> np.ndarray:
    """A side branch opening out of the lumen, in a copy of ``image`` (labels unchanged)."""
    a, r = image.shape
    yy, xx = polar_xy(a, r, g.ps)
    phi = math.radians(spec.center_deg)
    c = g.point(phi, float(g.rho(phi)) + spec.offset * spec.radius_mm)
    d = np.hypot(yy - c[0], xx - c[1]) - spec.radius_mm
    lum = labels == LUMEN
    img = image.astype(np.float32, copy=True)
    far = lum & (np.hypot(yy, xx) > 0.8)  # lumen beyond the catheter and sheath
    if not far.any():
        return img
    local = ndimage.gaussian_filter(image.astype(np.float64), (2.0, 6.0), mode=("wrap", "nearest"))
    speckle = np.clip(image / np.maximum(local, 1e-3), 0.0, 3.0)
    level = float(np.median(image[far]))
    hole = np.clip(0.5 - d / (3 * g.ps), 0.0, 1.0) * ~lum  # a 3-pixel soft edge
    rim = spec.rim * np.exp(-np.clip(d, 0, None) / 0.08) * ((d > 0) & (d < 0.25)) * ~lum
    img = img * (1.0 + rim)
    img = (1 - hole) * img + hole * level * speckle * rng.uniform(0.8, 1.2)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def branch_sector_deg(g: LumenGeometry, spec: BranchSpec) -> tuple[float, float]:
    """The direction (deg) and the half-width (deg) of the branch seen from the centroid."""
    phi = math.radians(spec.center_deg)
    dist = float(g.rho(phi)) + spec.offset * spec.radius_mm
    half = math.degrees(math.asin(min(1.0, spec.radius_mm / max(dist, 1e-6))))
    return spec.center_deg % 360.0, half


@dataclass(frozen=True)
class MediaSpec:
    gap_mm: float = 0.09  # lesion's far border to the band's half-dark inner border
    width_mm: float = 0.2
    darkness: float = 0.7  # 1 - the band's signal relative to the tissue it covers
    extra_deg: float = 0.0  # the band runs on this far past the lesion's ends
    edge_mm: float = 0.05  # border softness (diffuse, like the real media's inner border)

    def __post_init__(self) -> None:
        if not (self.gap_mm >= 0 and self.width_mm > 0 and 0 < self.darkness <= 1):
            raise ValueError("media band: gap_mm >= 0, width_mm > 0, 0 < darkness <= 1")


def _far_border(lesion: np.ndarray, extra: int) -> tuple[np.ndarray, np.ndarray]:
    """Per A-line (wrapping): the lesion's outermost sample, carried ``extra`` A-lines beyond
    its ends from the nearest lesion A-line, and a weight fading to 0 over those A-lines."""
    a, r = lesion.shape
    on = lesion.any(1)
    far = np.where(on, r - 1 - np.argmax(lesion[:, ::-1], 1), -1).astype(np.float64)
    # nearest lesion A-line and its distance, around the circle (three turns side by side)
    steps, (near,) = ndimage.distance_transform_edt(np.tile(~on, 3), return_indices=True)
    steps, near = steps[a : 2 * a], near[a : 2 * a] % a
    weight = np.clip(1.0 - steps / (extra + 1.0), 0.0, 1.0)
    return far[near], weight


def insert_media_band(
    image: np.ndarray,
    labels: np.ndarray,
    lesion: np.ndarray,
    spec: MediaSpec,
    ps: float,
) -> np.ndarray:
    """A copy of polar ``image`` ``(A, R)`` with a dark media band behind ``lesion`` (the
    lesion's own boolean mask); only background pixels darken, labels stay as they are."""
    if not lesion.any():
        return image.astype(np.float32, copy=True)
    a, r = image.shape
    extra = int(round(spec.extra_deg / 360.0 * a))
    far, weight = _far_border(lesion, extra)
    s = np.arange(r, dtype=np.float64)[None, :]
    start = far[:, None] + 1 + spec.gap_mm / ps
    stop = start + spec.width_mm / ps
    k = max(spec.edge_mm / ps, 0.5)
    band = 0.5 * (np.tanh((s - start) / k) - np.tanh((s - stop) / k))
    dark = 1.0 - spec.darkness * band * weight[:, None] * (labels == BACKGROUND)
    return np.clip(image.astype(np.float32) * dark, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class VasaSpec:
    """One vas vasorum in one frame (see the module docstring)."""

    center_deg: float
    depth_mm: float  # lumen contour to the channel's centre
    radius_mm: float
    darkness: float = 0.8  # 1 - the signal inside relative to the tissue it replaces
    edge_mm: float = 0.01  # border width: sharp, one pixel or so
    clear_mm: float = 0.1  # labels this far around the disc must all be background

    def __post_init__(self) -> None:
        if not (self.radius_mm > 0 and self.depth_mm > self.radius_mm and 0 < self.darkness <= 1):
            raise ValueError("vas vasorum: radius_mm > 0, depth_mm > radius_mm, 0 < darkness <= 1")


def insert_vasa(
    image: np.ndarray, labels: np.ndarray, g: LumenGeometry, spec: VasaSpec
) -> tuple[np.ndarray, bool]:
    """A copy of polar ``image`` ``(A, R)`` with one vas vasorum, and whether it was placed (not
    where a label other than background lies within ``clear_mm`` of it); labels unchanged."""
    a, r = image.shape
    yy, xx = polar_xy(a, r, g.ps)
    phi = math.radians(spec.center_deg)
    c = g.point(phi, float(g.rho(phi)) + spec.depth_mm)
    d = np.hypot(yy - c[0], xx - c[1]) - spec.radius_mm
    img = image.astype(np.float32, copy=True)
    near = d < spec.clear_mm
    if not near.any() or (labels[near] != BACKGROUND).any():
        return img, False
    k = max(spec.edge_mm, g.ps / 2)
    hole = 0.5 * (1.0 - np.tanh(d / k))
    img *= 1.0 - spec.darkness * hole
    return np.clip(img, 0.0, 1.0).astype(np.float32), True


@dataclass
class VasaChannel:
    """A vas vasorum over frames ``[start, stop)``: it drifts a little around the vessel and
    is widest at its middle frame."""

    start: int
    stop: int
    center_deg: float
    depth_mm: float
    radius_mm: float  # at the middle frame
    darkness: float
    drift_deg_per_frame: float = 0.0

    def at(self, frame: int) -> VasaSpec | None:
        if not self.start <= frame < self.stop:
            return None
        w = run_swell(frame, self.start, self.stop)
        centre = (self.center_deg + self.drift_deg_per_frame * (frame - self.start)) % 360.0
        radius = self.radius_mm * (0.6 + 0.4 * w)
        return VasaSpec(centre, max(self.depth_mm, radius * 1.5), radius, self.darkness)


def draw_vasa(seed: int, n_frames: int, share: float) -> list[VasaChannel]:
    """Clusters of 1-4 vasa vasorum over runs of 2-8 frames until about ``share`` of the
    ``n_frames`` frames hold one, from a random stream of their own (``[seed, 4]``): every other
    draw of a build stays as it was. Sizes, depths and darkness as the expert-labelled vasa of
    the real pullback (docs/calcium_candidates.md, twenty-seventh session)."""
    if share <= 0 or n_frames <= 0:
        return []
    rng = np.random.default_rng([seed, 4])
    covered = np.zeros(n_frames, dtype=bool)
    out: list[VasaChannel] = []
    while covered.mean() < share:
        length = min(int(rng.integers(2, 9)), n_frames)
        s = int(rng.integers(0, n_frames - length + 1))
        covered[s : s + length] = True
        centre = float(rng.uniform(0, 360))
        for _ in range(int(rng.integers(1, 5))):
            out.append(
                VasaChannel(
                    start=s,
                    stop=s + length,
                    center_deg=(centre + float(rng.uniform(-40, 40))) % 360.0,
                    depth_mm=float(rng.uniform(*VASA_DEPTH_MM)),
                    radius_mm=float(rng.uniform(*VASA_RADIUS_MM)),
                    darkness=float(rng.uniform(*VASA_DARKNESS)),
                    drift_deg_per_frame=float(rng.uniform(-3, 3)),
                )
            )
    return out
