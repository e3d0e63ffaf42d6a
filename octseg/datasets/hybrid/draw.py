"""What a hybrid pullback gets: its calcium lesions, distractors (lipid, side branches) and
stent, drawn from seeded random streams, and the :class:`LesionMix` shares by which a *training*
build draws hard lesions more often (each share from a random stream of its own, so every other
draw of the build stays that of a build without it).

A :class:`CalciumLesion` spans frames ``[start, stop)``; its arc and thickness swell from the
ends to the middle and its direction drifts slowly, so neighbouring frames agree and the lesion
has a length. A :class:`Stent` spans ``[start, stop)`` with ``n_struts`` struts per frame on a
slowly twisting helix of directions about the lumen centroid; struts sit ``apposed_mm`` from the
lumen contour, except inside an optional malapposition window (an arc over a run of frames) where
they stand off by up to ``malapposition_mm``. :mod:`octseg.datasets.hybrid.cohort` inserts them
into real frames; ranges and their reasons: docs/real_data.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from octseg.core.polar import wrap_pi
from octseg.datasets.hybrid.bins import border_points
from octseg.datasets.hybrid.distractors import BranchSpec, LipidSpec, MediaSpec
from octseg.datasets.hybrid.insert import (
    CalciumSpec,
    LumenGeometry,
    StrutSpec,
    lumen_geometry,
    run_swell,
)

#: rad per frame the irregular outline's harmonics move along a lesion (0.2 mm frames: a full
#: turn over ~8 mm), so neighbouring frames, the network's 2.5D context, show nearly the same shape
SHAPE_PHASE_PER_FRAME = 0.15


def drifted_centre(les: CalciumLesion | LipidLesion, frame: int) -> float:
    """A lesion's direction (degrees) at ``frame``: its start direction moved by its drift."""
    return (les.center_deg + les.drift_deg_per_frame * (frame - les.start)) % 360


@dataclass
class CalciumLesion:
    start: int
    stop: int  # exclusive
    center_deg: float
    arc_deg: float  # at the middle of the lesion
    depth_mm: float
    thickness_mm: float  # at the middle of the lesion
    drift_deg_per_frame: float = 0.0
    contrast: float = 0.35
    kind: str = "superficial"  # superficial | deep | nodule (docs/real_data.md, section 2)
    end_power: float = 4.0
    irregularity: float = 0.0
    shape_seed: int = 0
    bulge_mm: float = 0.0  # at the middle of the lesion (nodules)
    heterogeneity: float = 0.25
    texture_scale: float = 1.0
    edge_px: float = 1.0
    rim: float = 0.0
    media: MediaSpec | None = None  # a dark media band behind the lesion (a training distractor)
    # may run past the imaged field's edge (only its front must lie inside; the field cuts the
    # rest, as a real image cuts tissue): lesions at a far wall (make_past_field)
    past_field: bool = False
    # centre moved to the wall farthest from the catheter at the lesion's middle frame
    # (make_far_wall)
    far_wall: bool = False

    def at(self, frame: int) -> CalciumSpec | None:
        if not self.start <= frame < self.stop:
            return None
        w = run_swell(frame, self.start, self.stop) ** 0.5
        return CalciumSpec(
            center_deg=drifted_centre(self, frame),
            arc_deg=self.arc_deg * (0.45 + 0.55 * w),
            depth_mm=self.depth_mm,
            thickness_mm=self.thickness_mm * (0.5 + 0.5 * w),
            contrast=self.contrast,
            end_power=self.end_power,
            irregularity=self.irregularity,
            shape_seed=self.shape_seed,  # one outline per lesion, changing slowly:
            shape_phase=SHAPE_PHASE_PER_FRAME * (frame - self.start),
            bulge_mm=self.bulge_mm * w,
            heterogeneity=self.heterogeneity,
            texture_scale=self.texture_scale,
            edge_px=self.edge_px,
            rim=self.rim,
        )


@dataclass
class LipidLesion:
    """A lipid core under a fibrous cap over frames ``[start, stop)`` (a distractor: not
    calcium); arc and core swell to the middle, the cap is thinnest at the middle frame."""

    start: int
    stop: int
    center_deg: float
    arc_deg: float
    cap_min_um: float  # at the middle frame
    cap_max_um: float
    core_thickness_mm: float
    cap_min_offset: float = 0.0  # thinnest cap's direction, -1..1 of the usable half arc
    drift_deg_per_frame: float = 0.0
    cap_boost: float = 0.4
    diffuse_mm: float = 0.08
    attenuation_mm: float = 0.15
    floor: float = 0.08

    def at(self, frame: int) -> LipidSpec | None:
        if not self.start <= frame < self.stop:
            return None
        w = run_swell(frame, self.start, self.stop) ** 0.5
        arc = self.arc_deg * (0.5 + 0.5 * w)
        cap_min = self.cap_min_um + (self.cap_max_um - self.cap_min_um) * 0.5 * (1 - w)
        centre = drifted_centre(self, frame)
        return lipid_spec(self, centre, arc, cap_min, self.core_thickness_mm * (0.5 + 0.5 * w))


def lipid_spec(les: LipidLesion, centre: float, arc: float, cap_min: float, core: float):
    usable = max(arc / 2 - 4.0 - 2.5, 0.0)
    return LipidSpec(
        center_deg=centre,
        arc_deg=arc,
        cap_min_um=cap_min,
        cap_max_um=max(les.cap_max_um, cap_min),
        core_thickness_mm=core,
        cap_min_deg=(centre + les.cap_min_offset * usable) % 360,
        cap_boost=les.cap_boost,
        diffuse_mm=les.diffuse_mm,
        attenuation_mm=les.attenuation_mm,
        floor=les.floor,
    )


@dataclass
class SideBranch:
    """A side branch over frames ``[start, stop)``: it opens, widens and closes again."""

    start: int
    stop: int
    center_deg: float
    radius_mm: float  # at the middle frame
    offset: float = 0.6
    rim: float = 0.35

    def at(self, frame: int) -> BranchSpec | None:
        if not self.start <= frame < self.stop:
            return None
        w = run_swell(frame, self.start, self.stop)
        return BranchSpec(self.center_deg, self.radius_mm * (0.4 + 0.6 * w), self.offset, self.rim)


@dataclass
class Stent:
    start: int
    stop: int
    n_struts: int = 9
    phase_deg: float = 0.0
    twist_deg_per_frame: float = 7.0
    apposed_mm: float = 0.0  # distance of apposed struts (negative: embedded)
    mal_center_deg: float | None = None  # malapposition window (None: none)
    mal_arc_deg: float = 90.0
    mal_start: int = 0
    mal_stop: int = 0
    malapposition_mm: float = 0.3
    strut_width_mm: float = 0.16  # blooming width (tangential)
    blooming_mm: float = 0.06  # blooming thickness (radial)

    def struts(self, frame: int, rng: np.random.Generator) -> list[StrutSpec]:
        if not self.start <= frame < self.stop:
            return []
        base = self.phase_deg + self.twist_deg_per_frame * (frame - self.start)
        out = []
        for k in range(self.n_struts):
            ang = (base + 360.0 * k / self.n_struts + rng.uniform(-6, 6)) % 360
            dist = self.apposed_mm + rng.uniform(-0.01, 0.01)
            if self.mal_center_deg is not None and self.mal_start <= frame < self.mal_stop:
                off = abs(float(wrap_pi(math.radians(self.mal_center_deg - ang))))
                half = math.radians(self.mal_arc_deg) / 2
                if off < half:
                    wf = run_swell(frame, self.mal_start, self.mal_stop)
                    dist = self.malapposition_mm * math.cos(off / half * math.pi / 2) * wf + dist
            out.append(
                StrutSpec(
                    angle_deg=ang,
                    distance_mm=dist,
                    width_mm=self.strut_width_mm * rng.uniform(0.85, 1.15),
                    thickness_mm=self.blooming_mm,
                )
            )
        return out


CALCIUM_KINDS = {"superficial": 0.55, "deep": 0.25, "nodule": 0.2}
CONTRAST = (0.15, 0.65)  # calcium level / tissue level in front: nearly black .. barely darker
FAINT_CONTRAST = (0.5, 0.7)  # the faint lesions a training build can draw more often
THIN_THICKNESS_MM = (0.15, 0.3)  # the thin crescents a training build can draw more often
THICK_THICKNESS_MM = (0.9, 1.5)  # thick plates beyond the default draw's 0.9 mm (thick_share)


@dataclass(frozen=True)
class LesionMix:
    """Shares of hard calcium lesions a *training* build draws more often than the default draw:
    ``faint_share`` of lesions faint (:data:`FAINT_CONTRAST`), ``thin_share`` of the superficial
    and deep ones thin (:data:`THIN_THICKNESS_MM` at the lesion's middle), ``media_share`` of
    them with a dark media band behind (:func:`add_media`: its own random stream, the labels stay
    those of the build without bands), ``deep_share`` of the superficial ones moved deep
    (:func:`make_deep`: its own random stream too, every lesion keeps its frames and arc),
    ``nodule_share`` of the superficial ones left made nodules (:func:`make_nodules`: its own
    stream, every lesion keeps its frames, centre and look; a nodule's arc is its own), and
    ``vasa_share`` of the frames with vasa vasorum (:func:`draw_vasa`: tissue, image only, a
    stream of their own), and ``stent_share`` of the pullbacks with a stent over one of their
    calcium lesions (:func:`place_stent`: a stream of its own; the default draw puts no stent in
    about one pullback in five and places the others without regard to calcium), and
    ``malapposition_share`` of the stents with a malapposition window drawn anew
    (:func:`malappose`: a stream of its own), and ``past_field_share`` of the lesions (not
    nodules) allowed to run past the imaged field's edge (:func:`make_past_field`: a stream of
    its own; the default builds keep every lesion inside the field, so little calcium lies at a
    far wall), and ``far_wall_share`` of the lesions (not nodules) centred on the wall farthest
    from the catheter (:func:`make_far_wall`: a stream of its own; the default draw centres
    lesions uniformly in angle), and ``far_wall_nodule_share`` of the nodules centred there too
    (a stream of its own again, so the other lesions stay where ``far_wall_share`` put them),
    and ``thick_share`` of the lesions (any kind, after the deep and nodule shares) drawn thick
    (:func:`make_thick`: :data:`THICK_THICKNESS_MM` at the middle, a stream of its own).
    The faint and thin shares cost one more random
    draw per lesion only when they are > 0, so default builds keep their draws."""

    faint_share: float = 0.0
    thin_share: float = 0.0
    media_share: float = 0.0
    deep_share: float = 0.0
    nodule_share: float = 0.0
    vasa_share: float = 0.0
    stent_share: float = 0.0
    malapposition_share: float = 0.0
    past_field_share: float = 0.0
    far_wall_share: float = 0.0
    far_wall_nodule_share: float = 0.0
    thick_share: float = 0.0

    def __post_init__(self) -> None:
        for name in (f.name for f in fields(self)):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")


DEFAULT_MIX = LesionMix()


def draw_contrast(rng: np.random.Generator, faint_share: float = 0.0) -> float:
    """A lesion's contrast: uniform over :data:`CONTRAST`; with ``faint_share`` > 0, that share
    of lesions from :data:`FAINT_CONTRAST` instead (one more draw, so the default builds keep
    their draws)."""
    if faint_share > 0 and rng.uniform() < faint_share:
        return float(rng.uniform(*FAINT_CONTRAST))
    return float(rng.uniform(*CONTRAST))


def draw_calcium(
    rng: np.random.Generator, start: int, stop: int, mix: LesionMix = DEFAULT_MIX
) -> CalciumLesion:
    """One calcium lesion of a random kind, shape and look (ranges: docs/real_data.md; ``mix``:
    :class:`LesionMix`)."""
    kinds = list(CALCIUM_KINDS)
    kind = str(rng.choice(kinds, p=list(CALCIUM_KINDS.values())))
    les = CalciumLesion(
        start=start,
        stop=stop,
        center_deg=float(rng.uniform(0, 360)),
        arc_deg=float(rng.uniform(40, 240)),
        depth_mm=float(rng.uniform(0.03, 0.35)),
        thickness_mm=float(rng.uniform(0.2, 0.9)),
        drift_deg_per_frame=float(rng.uniform(-2, 2)),
        contrast=draw_contrast(rng, mix.faint_share),
        kind=kind,
        end_power=float(rng.choice([2.0, 4.0, 8.0])),
        irregularity=float(rng.choice([0.0, rng.uniform(0.1, 0.5)])),
        shape_seed=int(rng.integers(0, 2**31)),
        heterogeneity=float(rng.uniform(0.1, 0.6)),
        texture_scale=float(rng.uniform(0.5, 2.0)),
        edge_px=float(rng.uniform(1.0, 2.0)),
    )
    if kind == "deep":
        deepen(les, rng)
    elif kind == "nodule":
        nodulise(les, rng)
    if kind != "nodule" and mix.thin_share > 0 and rng.uniform() < mix.thin_share:
        les.thickness_mm = float(rng.uniform(*THIN_THICKNESS_MM))
    return les


def deepen(les: CalciumLesion, rng: np.random.Generator) -> None:
    """Make ``les`` a deep lesion: under thick intima, 0.4-0.9 mm below the lumen, 0.2-0.6 mm
    thick."""
    les.kind = "deep"
    les.depth_mm = float(rng.uniform(0.4, 0.9))
    les.thickness_mm = float(rng.uniform(0.2, 0.6))


def nodulise(les: CalciumLesion, rng: np.random.Generator) -> None:
    """Make ``les`` a calcified nodule bulging into the lumen: at the lumen border, 30-100 deg
    of arc, 0.15-0.45 mm of bulge, 0.3-0.7 mm thick, a bright surface (rim 0.3-1.0)."""
    les.kind = "nodule"
    les.depth_mm = 0.0
    les.arc_deg = float(rng.uniform(30, 100))
    les.bulge_mm = float(rng.uniform(0.15, 0.45))
    les.thickness_mm = float(rng.uniform(0.3, 0.7))
    les.rim = float(rng.uniform(0.3, 1.0))
    les.end_power = 2.0


def make_nodules(lesions: list[CalciumLesion], seed: int, share: float) -> None:
    """Make ``share`` of the superficial ``lesions`` nodules (:func:`nodulise`), from a random
    stream of their own, as :func:`make_deep` moves them deep: every lesion keeps its frames,
    centre, contrast and texture, and every other draw of the build stays that of a build
    without the share; its shape (arc, bulge, thickness, rim) is drawn again as a nodule's.
    Applied after :func:`make_deep`, to the superficial lesions it left."""
    _remake_superficial(lesions, share, np.random.default_rng([seed, 3]), nodulise)


def make_deep(lesions: list[CalciumLesion], seed: int, share: float) -> None:
    """Move ``share`` of the superficial ``lesions`` deep (:func:`deepen`), from a random stream
    of their own: every lesion keeps its frames, arc and look, and every other draw of the build
    stays that of a build without the share (so the two builds differ in lesion depth only). A
    moved lesion's thickness is drawn again for its new kind (a thickness the ``thin_share``
    draw gave it is replaced)."""
    _remake_superficial(lesions, share, np.random.default_rng([seed, 2]), deepen)


def thicken(les: CalciumLesion, rng: np.random.Generator) -> None:
    """Make ``les`` a thick plate: :data:`THICK_THICKNESS_MM` at its middle (kind, depth, arc
    and look kept)."""
    les.thickness_mm = float(rng.uniform(*THICK_THICKNESS_MM))


def make_thick(lesions: list[CalciumLesion], seed: int, share: float) -> None:
    """Draw ``share`` of the ``lesions`` (any kind) thick (:func:`thicken`), from a random stream
    of their own: every other draw of the build's plan (``params.json``) stays that of a build
    without the share (a thick lesion trimmed away at the field's edge skips its inserts'
    draws, so the frames' later draws, textures and struts, can differ). The default draw caps
    a lesion's middle at 0.9 mm (deep 0.6, nodules 0.7), so thicker calcium is seen in training
    only at an irregular border's bumps. Applied after :func:`make_deep` and
    :func:`make_nodules`; a thin lesion (``thin_share``) it picks is made thick."""
    _remake(lesions, share, np.random.default_rng([seed, 10]), thicken, kinds=None)


def make_past_field(lesions: list[CalciumLesion], seed: int, share: float) -> None:
    """Let ``share`` of the ``lesions`` (not nodules) run past the imaged field's edge
    (``past_field``), chosen from a random stream of their own: every lesion keeps every draw,
    and every other draw of the build stays that of a build without the share. Such a lesion
    is placed wherever its front fits inside the field, so far walls get calcium cut by the
    field's edge, as in real images of large or eccentric vessels."""
    if share <= 0:
        return
    rng = np.random.default_rng([seed, 7])
    for les in lesions:
        if rng.uniform() < share and les.kind != "nodule":
            les.past_field = True


FAR_WALL_JITTER_DEG = 15.0  # a far-wall lesion's centre: the farthest wall +- this


def make_far_wall(
    lesions: list[CalciumLesion],
    seed: int,
    share: float,
    labels: np.ndarray,
    ps: float,
    nodule_share: float = 0.0,
) -> None:
    """Centre ``share`` of the ``lesions`` (not nodules) on the wall farthest from the catheter
    (``far_wall``), chosen from a random stream of their own: at the lesion's middle frame of
    the real ``labels`` ``(F, A, R)``, the direction about the lumen centroid whose lumen border
    lies farthest from the catheter, +- :data:`FAR_WALL_JITTER_DEG`; the drift is kept, so the
    lesion passes that wall at its middle. Every other draw stays that of a build without the
    share. Eccentric catheters put much calcium there (2.4-3.2 mm from the catheter: 32% of the
    held-out truth's calcium, 20% of a default training build's). A fine-tune on such a build
    was not better on the held-out hybrids (docs/calcium_candidates.md, thirty-second session).
    ``nodule_share`` of the nodules are centred there the same way, from a stream of their own
    (``[seed, 9]``): a calcified nodule reaching 2.8-3.2 mm from the catheter is read as a
    sliver where the same nodule near the catheter is read whole (forty-fifth session)."""
    for stream, p, nodules in ((8, share, False), (9, nodule_share, True)):
        if p <= 0:
            continue
        rng = np.random.default_rng([seed, stream])
        for les in lesions:
            chosen, jitter = rng.uniform() < p, rng.uniform(-1, 1) * FAR_WALL_JITTER_DEG
            if chosen and (les.kind == "nodule") == nodules:  # this pass's kind only
                _centre_on_far_wall(les, jitter, labels, ps)


def _centre_on_far_wall(les: CalciumLesion, jitter: float, labels: np.ndarray, ps: float) -> None:
    """Centre ``les`` on the farthest wall of its middle frame (+ ``jitter`` degrees)."""
    mid = (les.start + les.stop - 1) // 2
    try:
        far = farthest_wall_deg(lumen_geometry(labels[mid], ps))
    except ValueError:  # no lumen in that frame: the lesion keeps its centre
        return
    les.center_deg = (far + jitter - les.drift_deg_per_frame * (mid - les.start)) % 360
    les.far_wall = True


def farthest_wall_deg(g: LumenGeometry) -> float:
    """The direction (degrees about the centroid, half-degree bins) whose lumen border point
    lies farthest from the catheter."""
    return (int(np.argmax(np.hypot(*border_points(g).T))) + 0.5) / 2


def _remake_superficial(
    lesions: list[CalciumLesion],
    share: float,
    rng: np.random.Generator,
    remake: Callable[[CalciumLesion, np.random.Generator], None],
) -> None:
    """:func:`_remake` of the superficial lesions only."""
    _remake(lesions, share, rng, remake, kinds=("superficial",))


def _remake(
    lesions: list[CalciumLesion],
    share: float,
    rng: np.random.Generator,
    remake: Callable[[CalciumLesion, np.random.Generator], None],
    kinds: tuple[str, ...] | None,
) -> None:
    """``remake(lesion, rng)`` for each lesion of ``kinds`` (None: any) that a draw from ``rng``
    puts in ``share`` (a draw per such lesion only; nothing drawn when ``share`` is 0)."""
    if share <= 0:
        return
    for les in lesions:
        if (kinds is None or les.kind in kinds) and rng.uniform() < share:
            remake(les, rng)


def add_media(lesions: list[CalciumLesion], seed: int, share: float) -> None:
    """Give ``share`` of the superficial and deep ``lesions`` a media band (:func:`draw_media`),
    from a random stream of their own: the lesions, labels and every other draw of the build
    stay those of a build without bands."""
    if share <= 0:
        return
    rng = np.random.default_rng([seed, 1])
    for les in lesions:
        if les.kind != "nodule" and rng.uniform() < share:
            les.media = draw_media(rng)


def draw_media(rng: np.random.Generator) -> MediaSpec:
    """A media band behind a lesion, as on the real frames: 0.02-0.06 mm of bright tissue
    between, then a *diffuse* inner border (0.03-0.08 mm, where calcium's are sharp) into a band
    0.1-0.3 mm wide, dark as calcium (signal x 0.15-0.5), only behind the lesion (the first
    draw, sharp-edged and running 10-40 degrees past the lesion's ends, was more calcium-like:
    docs/calcium_candidates.md, nineteenth session)."""
    gap = float(rng.uniform(0.02, 0.06))
    edge = float(rng.uniform(0.03, 0.08))
    return MediaSpec(
        gap_mm=gap + edge,  # the band's half-dark point: the gap stays bright
        width_mm=float(rng.uniform(0.1, 0.3)),
        darkness=float(rng.uniform(0.5, 0.85)),
        extra_deg=0.0,
        edge_mm=edge,
    )


def draw_lesions(
    rng: np.random.Generator,
    n_frames: int,
    max_lesions: int | None = None,
    mix: LesionMix = DEFAULT_MIX,
) -> list[CalciumLesion]:
    """Random calcium lesions over ``n_frames`` frames: 1..``max_lesions`` (default: one per
    40 frames, at least 2) runs of frames, each with one lesion and, half of the time, one or
    two more over part of the run (several lesions per frame; their arcs are kept apart when
    inserted). Runs keep 3 frames apart. ``mix``: :class:`LesionMix`."""
    out: list[CalciumLesion] = []
    taken = np.zeros(n_frames, dtype=bool)
    max_lesions = max_lesions or max(2, n_frames // 40)
    for _ in range(int(rng.integers(1, max_lesions + 1))):
        length = min(int(rng.integers(min(6, n_frames), max(min(30, n_frames), 7))), n_frames)
        s = _free_run(rng, taken, length, gap=3)
        if s is None:
            continue
        taken[s : s + length] = True
        out.append(draw_calcium(rng, s, s + length, mix))
        if rng.uniform() < 0.5:
            for _k in range(int(rng.integers(1, 3))):
                sub = int(rng.integers(max(length // 3, 1), length + 1))
                s2 = s + int(rng.integers(0, length - sub + 1))
                out.append(draw_calcium(rng, s2, s2 + sub, mix))
    return out


def _free_run(rng, taken: np.ndarray, length: int, gap: int = 2) -> int | None:
    """Start of a run of ``length`` frames at least ``gap`` frames from every taken frame."""
    n = taken.size
    for _try in range(20):
        s = int(rng.integers(0, max(n - length, 0) + 1))
        if not taken[max(s - gap, 0) : s + length + gap].any():
            return s
    return None


def _free_run_shrinking(rng, taken: np.ndarray, length: int, min_length: int = 3):
    """(start, length) of a free run of ``length`` frames, halving it down to ``min_length``
    where none is free (distractors fit between calcium runs); None if none fits."""
    while length >= min_length:
        s = _free_run(rng, taken, length)
        if s is not None:
            return s, length
        length //= 2
    return None


def draw_distractors(
    rng: np.random.Generator, n_frames: int, lesions: list[CalciumLesion]
) -> tuple[list[LipidLesion], list[SideBranch]]:
    """Lipid lesions (1-2) and side branches (1-2) in frames without calcium (2 frames apart),
    so that the model sees them as the only signal-poor regions of a frame."""
    taken = np.zeros(n_frames, dtype=bool)
    for les in lesions:
        taken[les.start : les.stop] = True
    lipids: list[LipidLesion] = []
    for _ in range(int(rng.integers(1, 3))):
        run = _free_run_shrinking(rng, taken, min(int(rng.integers(5, 26)), n_frames))
        if run is None:
            continue
        s, length = run
        taken[s : s + length] = True
        cap_min = float(rng.choice([rng.uniform(30, 65), rng.uniform(65, 250)]))
        lipids.append(
            LipidLesion(
                start=s,
                stop=s + length,
                center_deg=float(rng.uniform(0, 360)),
                arc_deg=float(rng.uniform(60, 220)),
                cap_min_um=cap_min,
                cap_max_um=cap_min + float(rng.uniform(20, 200)),
                core_thickness_mm=float(rng.uniform(0.3, 0.9)),
                cap_min_offset=float(rng.uniform(-1, 1)),
                drift_deg_per_frame=float(rng.uniform(-2, 2)),
                cap_boost=float(rng.uniform(0.15, 0.6)),
                diffuse_mm=float(rng.uniform(0.05, 0.15)),
                attenuation_mm=float(rng.uniform(0.08, 0.25)),
                floor=float(rng.uniform(0.03, 0.15)),
            )
        )
    branches: list[SideBranch] = []
    for _ in range(int(rng.integers(1, 3))):
        run = _free_run_shrinking(rng, taken, min(int(rng.integers(3, 9)), n_frames))
        if run is None:
            continue
        s, length = run
        taken[s : s + length] = True
        branches.append(
            SideBranch(
                start=s,
                stop=s + length,
                center_deg=float(rng.uniform(0, 360)),
                radius_mm=float(rng.uniform(0.4, 1.1)),
                offset=float(rng.uniform(0.3, 0.8)),
                rim=float(rng.uniform(0.1, 0.5)),
            )
        )
    return lipids, branches


def draw_stent(rng: np.random.Generator, n_frames: int) -> Stent | None:
    if n_frames < 6 or rng.uniform() < 0.2:
        return None
    length = int(rng.integers(max(5, n_frames // 4), max(n_frames * 2 // 3, 6)))
    s = int(rng.integers(0, n_frames - length + 1))
    st = Stent(
        start=s,
        stop=s + length,
        n_struts=int(rng.integers(7, 12)),
        phase_deg=float(rng.uniform(0, 360)),
        twist_deg_per_frame=float(rng.uniform(3, 12)),
        apposed_mm=float(rng.uniform(-0.03, 0.02)),
    )
    return draw_malapposition(rng, st) if rng.uniform() < 0.7 else st


def draw_malapposition(rng: np.random.Generator, st: Stent) -> Stent:
    """``st`` with a malapposition window drawn from ``rng``: 3 frames to half the stent's
    length, an arc of 60-160 degrees, struts standing off by up to 0.15-0.6 mm at its middle."""
    length = st.stop - st.start
    ml = int(rng.integers(3, max(4, length // 2)))
    ms = int(rng.integers(st.start, st.start + length - ml + 1))
    return replace(
        st,
        mal_center_deg=float(rng.uniform(0, 360)),
        mal_arc_deg=float(rng.uniform(60, 160)),
        mal_start=ms,
        mal_stop=ms + ml,
        malapposition_mm=float(rng.uniform(0.15, 0.6)),
    )


def malappose(stent: Stent | None, seed: int, share: float) -> Stent | None:
    """With probability ``share`` (a random stream of its own, ``[seed, 6]``), ``stent`` with a
    malapposition window drawn anew by :func:`draw_malapposition` (in place of the draw's, if it
    had one). The default draw gives about 7 stents in 10 a window whose struts mostly stand
    off by less than the 0.09 mm threshold at its tapered ends, so a build of three pullbacks
    can hold almost no malapposed strut. Lesions, distractors and the stent's frames stay as
    drawn; the struts in the window stand off, and the random jitter of later frames' inserts
    changes with them."""
    rng = _chosen_stream(seed, 6, share) if stent is not None else None
    return stent if rng is None else draw_malapposition(rng, stent)


def _chosen_stream(seed: int, stream: int, share: float) -> np.random.Generator | None:
    """The random stream ``[seed, stream]`` if its first draw falls within ``share`` (the
    pullback is chosen), else None; nothing drawn when ``share`` is 0."""
    if share <= 0:
        return None
    rng = np.random.default_rng([seed, stream])
    return rng if rng.uniform() < share else None


def place_stent(
    stent: Stent | None, lesions: list[CalciumLesion], seed: int, n_frames: int, share: float
) -> Stent | None:
    """With probability ``share`` (a random stream of its own, ``[seed, 5]``), a stent over the
    middle frame of one of ``lesions``: the drawn ``stent`` moved there with its length, struts
    and malapposition window, or, if the draw gave none, one drawn by :func:`draw_stent` from
    that stream. Stents are implanted over lesions; the default draw ignores them, so a model
    trained on it rarely sees calcium behind struts and their shadows. Lesions and distractors
    stay as drawn, their labels and truth too; the struts follow the stent, and the random
    jitter of later frames' inserts changes with them."""
    rng = _chosen_stream(seed, 5, share) if lesions and n_frames >= 6 else None
    if rng is None:
        return stent
    while stent is None:
        stent = draw_stent(rng, n_frames)
    les = lesions[int(rng.integers(len(lesions)))]
    mid, length = (les.start + les.stop - 1) // 2, stent.stop - stent.start
    start = int(rng.integers(max(0, mid - length + 1), min(mid, n_frames - length) + 1))
    shift = start - stent.start
    moved = replace(stent, start=start, stop=stent.stop + shift)
    if stent.mal_center_deg is None:
        return moved
    return replace(moved, mal_start=stent.mal_start + shift, mal_stop=stent.mal_stop + shift)
