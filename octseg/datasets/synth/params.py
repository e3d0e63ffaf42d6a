"""Parameters of one synthetic pullback, and how they are drawn from a seed.

Everything the generator needs is in :class:`PullbackParams` (JSON round trip through
:meth:`PullbackParams.to_dict` / :meth:`PullbackParams.from_dict`, written as ``params.json``).
Quantities that vary along the pullback are :class:`Smooth` series of the pullback position
``z`` in mm (a mean plus a few long-period sines), so every frame can be evaluated on its own and
everything is smooth along the pullback.

Angles in the parameters are in degrees. Catheter-centred angles (guidewire) and lumen-centroid
angles (calcium, struts) follow :mod:`octseg.io.labels`: from +x towards +y (clockwise on screen).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PRESETS: dict[str, dict[str, Any]] = {
    # close to a real system (Abbott OPTIS: 504 A-lines, ~5 um/sample, 0.2 mm frames)
    "default": {
        "n_alines": 504,
        "n_samples": 968,
        "pixel_spacing_mm": 0.0052,
        "n_frames": 270,
        "frame_spacing_mm": 0.2,
    },
    # tiny frames for tests, the demo and CPU training; coarse frame spacing keeps a 24 mm
    # pullback (room for a stent with references and two lesions) in 96 frames
    "small": {
        "n_alines": 128,
        "n_samples": 160,
        "pixel_spacing_mm": 0.03,
        "n_frames": 96,
        "frame_spacing_mm": 0.25,
    },
}


@dataclass
class Grid:
    n_alines: int = 504
    n_samples: int = 968
    pixel_spacing_mm: float = 0.0052
    n_frames: int = 270
    frame_spacing_mm: float = 0.2

    @property
    def length_mm(self) -> float:
        return self.n_frames * self.frame_spacing_mm

    @property
    def depth_mm(self) -> float:
        return self.n_samples * self.pixel_spacing_mm

    def validate(self) -> None:
        for name in ("n_alines", "n_samples", "n_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.n_alines < 32 or self.n_samples < 32:
            raise ValueError("frames need at least 32 A-lines and 32 samples")
        if not self.pixel_spacing_mm > 0 or not self.frame_spacing_mm > 0:
            raise ValueError("spacings must be positive")
        if self.depth_mm < 3.5:
            raise ValueError(
                f"the A-lines reach only {self.depth_mm:.2f} mm; the generator needs >= 3.5 mm "
                "(n_samples * pixel_spacing_mm)"
            )
        if self.length_mm < 12.0:
            raise ValueError(
                f"the pullback is only {self.length_mm:.1f} mm long; the generator needs >= 12 mm "
                "(n_frames * frame_spacing_mm)"
            )


@dataclass
class Smooth:
    """``mean + sum_k amps[k] * sin(2 pi z / periods_mm[k] + phases[k])`` of position z (mm)."""

    mean: float
    amps: list[float] = field(default_factory=list)
    periods_mm: list[float] = field(default_factory=list)
    phases: list[float] = field(default_factory=list)
    slope_per_mm: float = 0.0  # linear trend about the middle of the pullback
    z_mid_mm: float = 0.0

    def __call__(self, z: np.ndarray | float) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        out = np.full(z.shape, self.mean, dtype=np.float64)
        out = out + self.slope_per_mm * (z - self.z_mid_mm)
        for a, p, ph in zip(self.amps, self.periods_mm, self.phases):
            out = out + a * np.sin(2 * math.pi * z / p + ph)
        return out

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        mean: float,
        amp: float,
        n: int = 2,
        periods: tuple[float, float] = (8.0, 40.0),
        slope: float = 0.0,
        z_mid: float = 0.0,
    ) -> Smooth:
        """A random smooth series whose sine terms sum to at most ``amp`` in magnitude."""
        w = rng.uniform(0.3, 1.0, n)
        w = w / w.sum()
        return cls(
            mean=float(mean),
            amps=[float(amp * x) for x in w],
            periods_mm=[float(x) for x in rng.uniform(*periods, n)],
            phases=[float(x) for x in rng.uniform(0, 2 * math.pi, n)],
            slope_per_mm=float(slope),
            z_mid_mm=float(z_mid),
        )


@dataclass
class Harmonic:
    k: int
    amp: Smooth  # relative amplitude (fraction of the radius)
    phase_deg: Smooth


@dataclass
class LumenParams:
    radius_mm: Smooth  # mean radius about the lumen's own centre (before stent narrowing)
    harmonics: list[Harmonic]
    offset_mm: Smooth  # distance of the lumen centre from the catheter (clamped so it fits)
    offset_angle_deg: Smooth  # catheter-centred direction of the lumen centre
    catheter_radius_mm: float = 0.45
    catheter_margin_mm: float = 0.15  # least clearance between catheter and lumen wall


@dataclass
class GuidewireParams:
    angle_deg: Smooth  # catheter-centred direction of the guidewire centre
    position: Smooth  # 0..1: fraction of the free space between catheter and wall
    radius_mm: float = 0.18


def plateau_profile(frames: np.ndarray, start: int, end: int, plateau: float) -> np.ndarray:
    """1 in the middle ``plateau`` fraction of frames ``start..end``, falling smoothly (cosine)
    to 0 at the first/last frame."""
    f = np.asarray(frames, dtype=np.float64)
    n = end - start
    if n <= 0:
        return np.ones_like(f)
    u = (f - start) / n  # 0..1
    x = np.abs(u - 0.5) * 2  # 0 middle .. 1 ends
    ramp = np.clip((x - plateau) / max(1e-9, 1 - plateau), 0, 1)
    return 0.5 * (1 + np.cos(math.pi * ramp))


@dataclass
class LesionParams:
    """A calcium lesion about the lumen centroid of each frame (see the module docs)."""

    kind: str  # "macro" | "spotty" (as intended; the summary decides from the truth)
    start_frame: int
    end_frame: int
    center_deg: float  # centre angle about the lumen centroid at the lesion's middle
    center_drift_deg: float  # change of the centre angle from the first to the last frame
    arc_deg: float  # largest arc (in the lesion's middle)
    thickness_mm: float  # largest thickness (middle frames, middle of the arc)
    depth_mm: float  # smallest depth below the lumen contour (middle frames)
    depth_edge_mm: float  # depth at the lesion's first/last frame
    end_taper: float = 0.5  # arc and thickness at the first/last frame, as a fraction
    plateau: float = 0.4  # middle fraction of the lesion at full arc/thickness/depth
    arc_taper: float = 0.6  # thickness at the ends of the arc, as a fraction of the middle
    wobble: float = 0.12  # irregularity of the thickness along the arc (relative)
    depth_wobble_mm: float = 0.05  # irregularity of the depth along the arc (mm, >= 0)
    wobble_cycles: float = 2.0  # wobble periods over the arc
    wobble_phase: float = 0.0  # rad, at the first frame
    wobble_drift: float = 0.1  # rad per frame

    def contains(self, frames: np.ndarray) -> np.ndarray:
        f = np.asarray(frames)
        return (f >= self.start_frame) & (f <= self.end_frame)

    def profile(self, frames: np.ndarray) -> np.ndarray:
        """1 in the middle plateau, falling smoothly (cosine) to 0 at the first/last frame."""
        return plateau_profile(frames, self.start_frame, self.end_frame, self.plateau)

    def per_frame(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        f = np.asarray(frames, dtype=np.float64)
        w = self.profile(f)
        n = max(1, self.end_frame - self.start_frame)
        u = (f - self.start_frame) / n
        taper = self.end_taper + (1 - self.end_taper) * w
        return {
            "center_deg": self.center_deg + self.center_drift_deg * (u - 0.5),
            "arc_deg": self.arc_deg * taper,
            "thickness_mm": self.thickness_mm * taper,
            "depth_mm": self.depth_edge_mm + (self.depth_mm - self.depth_edge_mm) * w,
        }


@dataclass
class LipidParams:
    """A lipid core under a fibrous cap, about the lumen centroid of each frame (opt-in).

    On each ray of the arc the cap is the band ``rho_L(phi) <= rho < rho_L(phi) + cap(u)`` and
    the core the band behind it, ``core(u)`` thick (``u`` = position in the arc). The arc and
    the core swell from the lesion's ends to its middle; the cap is thinnest in the middle
    frames (``cap_um``) and thickens towards the ends (``cap_edge_um``); along the arc it is
    thinnest at ``cap_position`` and ``cap_rise`` times thicker at the arc's ends.
    """

    start_frame: int
    end_frame: int
    center_deg: float  # centre angle about the lumen centroid at the lesion's middle
    center_drift_deg: float  # change of the centre angle from the first to the last frame
    arc_deg: float  # largest arc (middle frames)
    cap_um: float  # thinnest cap (middle frames, at cap_position)
    cap_edge_um: float  # thinnest cap of the first/last frame (>= cap_um)
    cap_rise: float  # cap at the arc's ends / thinnest cap of the frame (>= 1)
    cap_position: float  # fractional arc position of the thinnest cap (0..1)
    core_mm: float  # largest radial thickness of the core (middle frames, middle of the arc)
    end_taper: float = 0.4  # arc and core at the first/last frame, as a fraction
    plateau: float = 0.3  # middle fraction of the lesion at full arc/core and thinnest cap
    arc_taper: float = 0.35  # core thickness at the ends of the arc, fraction of the middle
    backscatter: float = 0.3  # core backscatter relative to the wall (signal-poor)
    attenuation_per_mm: float = 10.0  # core attenuation (strong: dark behind the core)
    cap_backscatter: float = 2.2  # bright cap, relative to the wall
    border_mm: float = 0.035  # width (sigma) of the diffuse core border in the image

    def contains(self, frames: np.ndarray) -> np.ndarray:
        f = np.asarray(frames)
        return (f >= self.start_frame) & (f <= self.end_frame)

    def per_frame(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        f = np.asarray(frames, dtype=np.float64)
        w = plateau_profile(f, self.start_frame, self.end_frame, self.plateau)
        u = (f - self.start_frame) / max(1, self.end_frame - self.start_frame)
        taper = self.end_taper + (1 - self.end_taper) * w
        return {
            "center_deg": self.center_deg + self.center_drift_deg * (u - 0.5),
            "arc_deg": self.arc_deg * taper,
            "core_mm": self.core_mm * taper,
            "cap_um": self.cap_edge_um + (self.cap_um - self.cap_edge_um) * w,
        }


@dataclass
class MalappositionParams:
    """The lumen bulges outward beyond the stent over a sector for a run of frames."""

    start_frame: int
    end_frame: int
    angle_deg: float  # sector centre, about the lumen's own centre
    half_width_deg: float
    height_mm: float  # largest bulge (middle frames, sector centre)

    def height(self, frames: np.ndarray) -> np.ndarray:
        f = np.asarray(frames, dtype=np.float64)
        n = max(1, self.end_frame - self.start_frame)
        u = (f - self.start_frame) / n
        inside = (f >= self.start_frame - 0.5) & (f <= self.end_frame + 0.5)
        # plateau in the middle half, cosine ramps to 25 % at the first/last frame
        x = np.clip((np.abs(u - 0.5) * 2 - 0.5) / 0.5, 0, 1)
        w = 0.25 + 0.75 * 0.5 * (1 + np.cos(math.pi * x))
        return np.where(inside, self.height_mm * w, 0.0)


@dataclass
class StentParams:
    start_frame: int
    end_frame: int
    n_struts: int  # typical struts per frame (8..16; each frame varies by +-2)
    underexpansion: float  # radius reduction at the middle of the stent (fraction)
    narrow_half_width: float  # half width of the narrowing, fraction of the stent length
    rounding: float  # how much the stent rounds the lumen (harmonics scaled by 1 - rounding)
    pitch_mm: float  # strut pattern rotates by 360 deg over this length
    phase_deg: float
    strut_seed: int
    strut_length_mm: float = 0.12  # tangential length of the blooming
    strut_thickness_mm: float = 0.04  # radial thickness of the blooming
    malapposition: MalappositionParams | None = None

    def contains(self, frames: np.ndarray) -> np.ndarray:
        f = np.asarray(frames)
        return (f >= self.start_frame) & (f <= self.end_frame)

    def window(self, z: np.ndarray, fs: float, ramp_mm: float = 1.0) -> np.ndarray:
        """0 outside the stent, 1 inside, with smooth ramps ``ramp_mm`` wide at the edges."""
        z = np.asarray(z, dtype=np.float64)
        z0 = (self.start_frame - 0.5) * fs
        z1 = (self.end_frame + 0.5) * fs
        a = np.clip((z - z0) / ramp_mm + 0.5, 0, 1)
        b = np.clip((z1 - z) / ramp_mm + 0.5, 0, 1)
        return 0.5 * (1 - np.cos(math.pi * np.minimum(a, b)))

    def narrowing(self, z: np.ndarray, fs: float) -> np.ndarray:
        """Radius factor (<= 1): a cosine dip in the middle of the stented segment."""
        z = np.asarray(z, dtype=np.float64)
        z0 = self.start_frame * fs
        z1 = self.end_frame * fs
        mid, half = 0.5 * (z0 + z1), max(fs, self.narrow_half_width * (z1 - z0))
        x = np.clip(np.abs(z - mid) / half, 0, 1)
        return 1.0 - self.underexpansion * 0.5 * (1 + np.cos(math.pi * x))


@dataclass
class RenderParams:
    """Image appearance; the label-independent part of the look of a pullback."""

    seed: int
    tissue_attenuation_per_mm: float = 2.5
    calcium_attenuation_per_mm: float = 0.7
    calcium_backscatter: float = 0.03  # relative to the wall
    intima_mm: Smooth = field(default_factory=lambda: Smooth(0.25))
    media_contrast: float = 0.45  # the media is this much darker than intima/adventitia
    blood: float = 5e-5  # residual blood after flushing, relative to the wall
    speckle_shape: float = 1.4  # gamma shape of the multiplicative speckle
    texture_sigma: float = 0.45  # log-normal heterogeneity of the wall
    dynamic_range_db: float = 42.0


@dataclass
class PullbackParams:
    pullback_id: str
    seed: int
    grid: Grid
    lumen: LumenParams
    guidewire: GuidewireParams
    lesions: list[LesionParams]
    stent: StentParams | None
    render: RenderParams
    generator_version: int = 1
    lipids: list[LipidParams] = field(default_factory=list)  # opt-in (--lipid)

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not self.lipids:  # pullbacks without lipid keep their params.json byte for byte
            del d["lipids"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PullbackParams:
        def smooth(x: dict[str, Any]) -> Smooth:
            return Smooth(**x)

        lum = dict(d["lumen"])
        lumen = LumenParams(
            radius_mm=smooth(lum["radius_mm"]),
            harmonics=[
                Harmonic(k=int(h["k"]), amp=smooth(h["amp"]), phase_deg=smooth(h["phase_deg"]))
                for h in lum["harmonics"]
            ],
            offset_mm=smooth(lum["offset_mm"]),
            offset_angle_deg=smooth(lum["offset_angle_deg"]),
            catheter_radius_mm=float(lum.get("catheter_radius_mm", 0.45)),
            catheter_margin_mm=float(lum.get("catheter_margin_mm", 0.15)),
        )
        gw = dict(d["guidewire"])
        guidewire = GuidewireParams(
            angle_deg=smooth(gw["angle_deg"]),
            position=smooth(gw["position"]),
            radius_mm=float(gw.get("radius_mm", 0.18)),
        )
        stent = None
        if d.get("stent"):
            st = dict(d["stent"])
            mal = st.pop("malapposition", None)
            stent = StentParams(**st, malapposition=MalappositionParams(**mal) if mal else None)
        rp = dict(d["render"])
        rp["intima_mm"] = smooth(rp["intima_mm"])
        return cls(
            pullback_id=str(d["pullback_id"]),
            seed=int(d["seed"]),
            grid=Grid(**d["grid"]),
            lumen=lumen,
            guidewire=guidewire,
            lesions=[LesionParams(**x) for x in d.get("lesions", [])],
            stent=stent,
            render=RenderParams(**rp),
            generator_version=int(d.get("generator_version", 1)),
            lipids=[LipidParams(**x) for x in d.get("lipids", [])],
        )


# --------------------------------------------------------------------------- drawing
# The cohort plan: pullback i gets macro-lesion target i % 4 (score 4, 2, 3, 1; the spotty
# lesion scores 0), its macro lesion straddles angle 0 when i % 3 == 1 and is interrupted by the
# guidewire shadow when i % 3 == 2.
MACRO_TARGETS = ((True, True), (False, True), (True, False), (False, False))  # (arc>180, t>0.5)


def draw_base(grid: Grid, seed: int, index: int, pullback_id: str) -> PullbackParams:
    """Lumen, guidewire, stent and render parameters (lesions: :func:`draw_lesions`)."""
    rng = np.random.default_rng([int(seed), int(index), 1])
    lumen = _draw_lumen(rng, grid.length_mm)
    guidewire = _draw_guidewire(rng, lumen.offset_angle_deg)
    stent = _draw_stent(rng, grid, index)
    render = RenderParams(
        seed=int(rng.integers(0, 2**31 - 1)),
        tissue_attenuation_per_mm=float(rng.uniform(2.0, 3.0)),
        calcium_attenuation_per_mm=float(rng.uniform(0.5, 0.9)),
        calcium_backscatter=float(rng.uniform(0.02, 0.045)),
        intima_mm=Smooth.draw(rng, rng.uniform(0.18, 0.35), 0.08, 2, (6.0, 25.0)),
        media_contrast=float(rng.uniform(0.35, 0.6)),
        blood=float(rng.uniform(1e-5, 5e-5)),
    )
    return PullbackParams(
        pullback_id=pullback_id,
        seed=int(seed),
        grid=grid,
        lumen=lumen,
        guidewire=guidewire,
        lesions=[],
        stent=stent,
        render=render,
    )


def _draw_lumen(rng: np.random.Generator, length_mm: float) -> LumenParams:
    """Radius (tapering: frame 0 is distal, the radius grows with frame number), harmonics and
    the offset of the lumen centre from the catheter."""
    r0 = rng.uniform(1.4, 1.8)
    taper = rng.uniform(0.002, 0.005)  # mm of radius per mm of pullback
    radius = Smooth.draw(rng, r0, rng.uniform(0.04, 0.1), 2, (10.0, 35.0), taper, 0.5 * length_mm)
    harmonics = []
    for k, amax in ((2, 0.09), (3, 0.035), (4, 0.02), (5, 0.01), (6, 0.008), (7, 0.006)):
        amp = Smooth.draw(rng, rng.uniform(0.3, 0.7) * amax, 0.3 * amax, 2, (8.0, 30.0))
        phase = Smooth.draw(rng, rng.uniform(0, 360), rng.uniform(10, 40), 1, (15.0, 60.0))
        harmonics.append(Harmonic(k=k, amp=amp, phase_deg=phase))
    offset = Smooth.draw(rng, rng.uniform(0.25, 0.4), 0.12, 2, (8.0, 30.0))
    offset_angle = Smooth.draw(rng, rng.uniform(0, 360), rng.uniform(20, 60), 2, (15.0, 60.0))
    return LumenParams(radius, harmonics, offset, offset_angle)


def _draw_guidewire(rng: np.random.Generator, offset_angle: Smooth) -> GuidewireParams:
    """The guidewire sits towards the lumen centre side of the catheter (where there is room)."""
    gw_rel = rng.choice([-1, 1]) * rng.uniform(10, 50)
    gw_angle = Smooth(
        mean=offset_angle.mean + gw_rel,
        amps=[a * 0.7 for a in offset_angle.amps],
        periods_mm=list(offset_angle.periods_mm),
        phases=list(offset_angle.phases),
    )
    gw_pos = Smooth.draw(rng, rng.uniform(0.2, 0.5), 0.15, 1, (10.0, 30.0))
    return GuidewireParams(angle_deg=gw_angle, position=gw_pos)


def _draw_stent(rng: np.random.Generator, grid: Grid, index: int) -> StentParams:
    """The stented segment, with references outside both edges."""
    L, fs = grid.length_mm, grid.frame_spacing_mm
    s_len = float(np.clip(rng.uniform(0.36, 0.48) * L, 8.0, 38.0))
    free = L - s_len
    distal = rng.uniform(0.3, 0.55) * free
    s0 = int(round(distal / fs))
    s1 = int(round((distal + s_len) / fs)) - 1
    mal = None
    if index % 4 != 3:  # one pullback in four has no malapposition
        mal = _draw_malapposition(rng, s0, s1, s_len, fs)
    return StentParams(
        start_frame=s0,
        end_frame=s1,
        n_struts=int(rng.integers(9, 15)),
        underexpansion=float(rng.uniform(0.03, 0.2)),
        narrow_half_width=float(rng.uniform(0.3, 0.45)),
        rounding=float(rng.uniform(0.5, 0.8)),
        pitch_mm=float(rng.choice([-1, 1]) * rng.uniform(3.0, 8.0)),
        phase_deg=float(rng.uniform(0, 360)),
        strut_seed=int(rng.integers(0, 2**31 - 1)),
        strut_length_mm=float(rng.uniform(0.1, 0.15)),
        strut_thickness_mm=float(rng.uniform(0.03, 0.05)),
        malapposition=mal,
    )


def _draw_malapposition(
    rng: np.random.Generator, s0: int, s1: int, s_len: float, fs: float
) -> MalappositionParams:
    """A malapposed stretch of the stent (frames ``s0..s1``) near one of its edges."""
    m_len = rng.uniform(1.2, min(4.0, 0.25 * s_len))
    near_distal = bool(rng.integers(0, 2))
    edge = (s0 * fs + rng.uniform(0.8, 2.0)) if near_distal else None
    if edge is None:
        edge = s1 * fs - rng.uniform(0.8, 2.0) - m_len
    m0 = int(round(edge / fs))
    m1 = max(m0 + 2, int(round((edge + m_len) / fs)))
    return MalappositionParams(
        start_frame=m0,
        end_frame=min(m1, s1),
        angle_deg=float(rng.uniform(0, 360)),
        half_width_deg=float(rng.uniform(45, 70)),
        height_mm=float(rng.uniform(0.18, 0.5)),
    )


def draw_lesions(
    p: PullbackParams, index: int, rng: np.random.Generator, gw_angle_about_centroid
) -> list[LesionParams]:
    """A macro lesion inside the stent and a spotty one in a reference segment.

    ``gw_angle_about_centroid(frame, depth_mm)`` gives the direction (deg, about the lumen
    centroid) in which the guidewire shadow crosses the wall at that depth.
    """
    lesions = [_draw_macro(p, index, rng, gw_angle_about_centroid)]
    spotty = _draw_spotty(p, rng, gw_angle_about_centroid)
    if spotty is not None:
        lesions.append(spotty)
    lesions.sort(key=lambda x: x.start_frame)
    return lesions


def _draw_macro(
    p: PullbackParams, index: int, rng: np.random.Generator, gw_angle_about_centroid
) -> LesionParams:
    """The macro lesion inside the stent: arc and thickness class from :data:`MACRO_TARGETS`,
    placed about angle 0, across the guidewire shadow or facing away from it."""
    fs = p.grid.frame_spacing_mm
    st = p.stent
    assert st is not None
    s0, s1 = st.start_frame, st.end_frame
    s_len = (s1 - s0 + 1) * fs
    big_arc, thick = MACRO_TARGETS[index % 4]
    arc = rng.uniform(205, 330) if big_arc else rng.uniform(120, 160)
    t = rng.uniform(0.62, 1.3) if thick else rng.uniform(0.3, 0.4)
    m_len = rng.uniform(6.0, min(20.0, s_len - 1.0))
    m_start = s0 * fs + rng.uniform(0.3, max(0.31, s_len - m_len - 0.3))
    f0 = int(round(m_start / fs))
    f1 = f0 + max(2, int(round(m_len / fs))) - 1
    depth = rng.uniform(0.06, 0.25)
    gw = gw_angle_about_centroid((f0 + f1) // 2, depth + 0.3 * t)
    mode = index % 3
    if mode == 1:  # straddles angle 0, guidewire shadow kept outside where it fits
        center = rng.uniform(-25, 25)
    elif mode == 2:  # interrupted by the guidewire shadow, away from the arc's ends
        center = gw + rng.choice([-1, 1]) * rng.uniform(0.1, 0.25) * arc
    else:  # facing away from the guidewire
        center = gw + 180 + rng.uniform(-0.5, 0.5) * max(0.0, 300 - arc) * 0.5
    return LesionParams(
        kind="macro",
        start_frame=f0,
        end_frame=f1,
        center_deg=float(center % 360),
        center_drift_deg=float(rng.uniform(-20, 20)),
        arc_deg=float(arc),
        thickness_mm=float(t),
        depth_mm=float(depth),
        depth_edge_mm=float(depth + rng.uniform(0.0, 0.15)),
        wobble=float(rng.uniform(0.05, 0.18)),
        depth_wobble_mm=float(rng.uniform(0.0, 0.1)),
        wobble_cycles=float(rng.uniform(1.2, 3.5)),
        wobble_phase=float(rng.uniform(0, 2 * math.pi)),
        wobble_drift=float(rng.uniform(-0.15, 0.15)),
    )


def _draw_spotty(
    p: PullbackParams, rng: np.random.Generator, gw_angle_about_centroid
) -> LesionParams | None:
    """A spotty lesion in the longer reference segment, >= 2 mm from the stent and 1 mm from
    the pullback's ends; None where it does not fit."""
    g = p.grid
    fs = g.frame_spacing_mm
    s0, s1 = p.stent.start_frame, p.stent.end_frame
    s_len_sp = rng.uniform(1.0, 3.5)
    n_sp = max(2, int(round(s_len_sp / fs)))
    lo_room = (s0 * fs - 2.0 - 1.0, 1.0)  # (room, first allowed z)
    hi_room = (g.length_mm - 1.0 - (s1 + 1) * fs - 2.0, (s1 + 1) * fs + 2.0)
    room, zfirst = max(lo_room, hi_room)
    if room < n_sp * fs:
        return None
    z = zfirst + rng.uniform(0, room - n_sp * fs)
    g0 = int(round(z / fs))
    g1 = g0 + n_sp - 1
    gw_s = gw_angle_about_centroid((g0 + g1) // 2, 0.2)
    center = gw_s + rng.uniform(60, 300)
    return LesionParams(
        kind="spotty",
        start_frame=g0,
        end_frame=g1,
        center_deg=float(center % 360),
        center_drift_deg=float(rng.uniform(-8, 8)),
        arc_deg=float(rng.uniform(25, 80)),
        thickness_mm=float(rng.uniform(0.2, 0.42)),
        depth_mm=float(rng.uniform(0.06, 0.35)),
        depth_edge_mm=float(rng.uniform(0.06, 0.35)),
        end_taper=0.6,
        plateau=0.3,
        wobble=float(rng.uniform(0.0, 0.1)),
        depth_wobble_mm=float(rng.uniform(0.0, 0.05)),
        wobble_cycles=float(rng.uniform(1.0, 2.0)),
        wobble_phase=float(rng.uniform(0, 2 * math.pi)),
    )


# --------------------------------------------------------------------------- lipid (opt-in)
# Pullback i gets a thin cap (TCFA in its middle frames: cap 30-55 um over 120-240 deg) when
# i % 2 == 0 and a thick one (80-300 um) otherwise; its lipid arc straddles angle 0 when
# i % 3 == 1 and ends in the guidewire shadow when i % 3 == 2 (faces away from it otherwise).
LIPID_MARGIN_MM = 1.0  # from the stent, calcium lesions and the pullback's ends


def free_frame_runs(p: PullbackParams, margin_mm: float = LIPID_MARGIN_MM) -> list[tuple[int, int]]:
    """Runs ``(first, last)`` of frames at least ``margin_mm`` away from the stent, every
    calcium lesion and the pullback's ends: where a lipid lesion may go (no overlap with
    calcium or struts by construction)."""
    n, fs = p.grid.n_frames, p.grid.frame_spacing_mm
    m = int(math.ceil(margin_mm / fs))
    free = np.ones(n, bool)
    free[:m] = free[n - m :] = False
    spans = [(x.start_frame, x.end_frame) for x in p.lesions]
    if p.stent is not None:
        spans.append((p.stent.start_frame, p.stent.end_frame))
    for a, b in spans:
        free[max(0, a - m) : b + m + 1] = False
    edges = np.flatnonzero(np.diff(np.r_[0, free.astype(np.int8), 0]))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def draw_lipids(
    p: PullbackParams, index: int, rng: np.random.Generator, gw_angle_about_centroid
) -> list[LipidParams]:
    """One lipid lesion, 1.5-6 mm long, in the longest free run of frames
    (:func:`free_frame_runs`); none where no run is 1.5 mm long."""
    fs = p.grid.frame_spacing_mm
    runs = free_frame_runs(p)
    if not runs:
        return []
    a, b = max(runs, key=lambda r: r[1] - r[0])
    room = (b - a + 1) * fs
    if room < 1.5:
        return []
    length = rng.uniform(1.5, min(6.0, room))
    n = max(3, int(round(length / fs)))
    f0 = a + int(rng.integers(0, b - a + 2 - n))
    f1 = f0 + n - 1
    thin = index % 2 == 0
    arc = rng.uniform(120, 240) if thin else rng.uniform(50, 200)
    cap_min_um = 1500.0 * p.grid.pixel_spacing_mm  # >= 1.5 pixels: the cap survives the raster
    cap = max(rng.uniform(30, 55) if thin else rng.uniform(80, 300), cap_min_um)
    gw = gw_angle_about_centroid((f0 + f1) // 2, 0.1)
    mode = index % 3
    if mode == 1:  # straddles angle 0
        center = rng.uniform(-0.2, 0.2) * min(arc, 60.0)
    elif mode == 2:  # one end of the arc in the guidewire shadow
        center = gw + rng.choice([-1, 1]) * (arc / 2 - rng.uniform(0, 6))
    else:  # facing away from the guidewire
        center = gw + 180 + rng.uniform(-0.3, 0.3) * max(0.0, 300 - arc) * 0.5
    return [
        LipidParams(
            start_frame=f0,
            end_frame=f1,
            center_deg=float(center % 360),
            center_drift_deg=float(rng.uniform(-15, 15)),
            arc_deg=float(arc),
            cap_um=float(cap),
            cap_edge_um=float(min(500.0, cap * rng.uniform(1.6, 2.5))),
            cap_rise=float(rng.uniform(1.5, 3.0)),
            cap_position=float(rng.uniform(0.3, 0.7)),
            core_mm=float(rng.uniform(0.25, 0.6)),
            backscatter=float(rng.uniform(0.2, 0.4)),
            attenuation_per_mm=float(rng.uniform(8.0, 14.0)),
            cap_backscatter=float(rng.uniform(1.8, 2.6)),
            border_mm=float(rng.uniform(0.025, 0.05)),
        )
    ]
