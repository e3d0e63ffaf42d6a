"""Anatomical post-processing of predicted label maps, batched in torch (polar or Cartesian).

Applied where predictions become labels (``infer.py``, ``postprocess.enabled: true`` by
default), before anything is measured or written, so ``labels.npz``, the DICOM-SEG, the overlays
and ``frames.csv`` all carry the same labels. Every rule works on the catheter rays of the lumen
contour (``octseg.geometry.lumen``: polar A-lines, or ``n_rays`` rays through a Cartesian frame)
and on the contour radius along each ray, ``r_L``: with ``lumen_contour: smooth`` (default) the
smoothest path through the filled-lumen exit and the lumen ends beyond it
(:mod:`octseg.geometry.lumen_path`: crosses chains of blood labelled as tissue), with
``first_wall`` the filled-lumen exit of docs/metrics.md; on guidewire rays the filled-lumen
exit; interpolated across guidewire and strut rays where lumen is removed:

* **Lumen** = one region containing the catheter, holes filled, nothing beyond the wall:
  inside ``r_L`` every pixel that is not a strut or the guidewire becomes lumen (specks, blood,
  calcium or plaque labelled inside the lumen); lumen beyond ``r_L`` (a ring outside the wall,
  islands in the tissue, a false lumen behind an attached flap) becomes background.
* **Calcium** only outside the lumen (above) and at most ``calcium_max_depth_mm`` beyond
  ``r_L`` (OCT sees 1.5-2 mm into tissue); deeper calcium pixels become background.
  With ``calcium_frame_vote`` = k > 1 (odd; default 1: off) a tissue or calcium pixel is
  then calcium where more than half of the k frames around it have calcium there
  (:mod:`octseg.model.frame_vote`: a median filter along the pullback). With
  ``calcium_outer_median`` = k > 1 (odd; default 1: off) the outer calcium border on each
  catheter ray where all k frames around a frame have calcium becomes the median of theirs
  (:mod:`octseg.model.outer_median`: the arc and the inner border stay).
  8-connected calcium components (polar: A-lines periodic) smaller than
  ``calcium_min_area_mm2`` (after the rules above; default 0: off, measured in
  docs/metrics.md) become background: specks that score no overlap and add arc and lesions
  to the clinical tables. With ``calcium_track_frames`` = k > 0 (default 0: off) a small
  component is put back after the minimum-length rule below when the calcium both rules keep
  lies within 3° of its rays at most k frames away, chained (:mod:`octseg.model.track`: a
  lesion's tapered or field-cut end). The calcium of a lesion shorter than
  ``calcium_min_length_mm`` becomes background (default 0: off): lesions as the geometry finds
  them (runs of frames with calcium, gaps of ``max_gap_frames`` bridged) and their length
  (frames spanned x frame spacing), docs/metrics.md. A deposit seen on one frame of a 0.2 mm
  pullback is a speck of noise more often than calcium (docs/calcium_candidates.md,
  twenty-second session).
  ``calcium_extend_prob`` (default 0: off) is a setting of this group
  but works earlier, where the class probabilities are: the predictor grows calcium lesions
  along the A-lines on the net grid (:mod:`octseg.model.extend`); ``enabled: false`` turns it
  off with the rest.
* **Struts** only in a band around the lumen border: from ``strut_inner_mm`` inside ``r_L``
  (malapposed struts) to ``strut_outer_mm`` beyond it (struts under neointima); strut pixels
  nearer the catheter become lumen, deeper ones background.
* **Guidewire sector** consistent along the pullback: a ray is in the sector of a frame when
  the majority of the ``guidewire_frames`` frames around it (a running median of the per-ray
  indicator; at the ends of the pullback over the frames there are) have class 4 on it.
  Guidewire pixels on rays more than ``guidewire_margin_deg`` away from that sector and from the
  guidewire of both neighbouring frames (it drifts) become lumen (inside ``r_L``) or
  background. A frame that lacks the guidewire (on fewer than half of
  its sector's rays) gets class 4 from ``r_L`` outwards (tissue pixels only) on the guidewire
  rays of its neighbouring frames that lie within a ray of the sector.

Cartesian pixels are tested against the two rays around their angle, conservatively: a pixel is
*inside* when it lies half a pixel within the smaller of the two radii, *beyond* when it lies a
pixel past the larger one; pixels in between keep their label.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from octseg.core.classes import BACKGROUND, CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.core.errors import InputError
from octseg.geometry import lumen as lu
from octseg.geometry import lumen_path as lp
from octseg.geometry.components import components_from_flat, label_with_areas
from octseg.geometry.kernels import farthest_corner, for_device
from octseg.geometry.settings import GeometrySettings
from octseg.geometry.summary import bridged_runs
from octseg.model import outer_median as om
from octseg.model.extend import is_extend_prob
from octseg.model.frame_vote import vote_calcium
from octseg.model.track import calcium_frames, restore_tracked, split_small


@dataclass
class PostprocessSettings:
    enabled: bool = True
    calcium_max_depth_mm: float = 2.5  # calcium deeper than this beyond the lumen contour: removed
    calcium_min_area_mm2: float = 0.0  # calcium components smaller than this: removed (0: off)
    # ... unless kept calcium lies on one of their rays at most this many frames away (chained;
    # 0: off; octseg.model.track)
    calcium_track_frames: int = 0
    # calcium by a majority of this many frames around each pixel (odd; 1: off;
    # octseg.model.frame_vote), before the minimum area and length
    calcium_frame_vote: int = 1
    # the outer calcium border on each catheter ray: the median of this many frames around it
    # where all have calcium on the ray (odd; 1: off; octseg.model.outer_median)
    calcium_outer_median: int = 1
    # calcium of lesions shorter than this (frames spanned x frame spacing): removed (0: off)
    calcium_min_length_mm: float = 0.0
    # calcium lesions extended along the A-lines into tissue samples of at least this calcium
    # probability (0: off); applied on the net grid by the predictor (octseg.model.extend)
    calcium_extend_prob: float = 0.0
    lumen_contour: str = "smooth"  # "smooth": smoothest path through the lumen ends; "first_wall"
    strut_inner_mm: float = 1.0  # struts allowed this far inside the lumen contour ...
    strut_outer_mm: float = 1.0  # ... and this far beyond it
    guidewire_frames: int = 5  # running-median window of the guidewire sector (odd; 1: off)
    guidewire_margin_deg: float = 3.0  # drift of the guidewire between frames tolerated
    n_rays: int = 720  # rays through Cartesian frames (polar: the A-lines)
    chunk_frames: int = 8  # frames per step on CPU (full-size temporaries; 16x on a GPU)

    @classmethod
    def from_value(cls, value: Any) -> PostprocessSettings:
        """From the ``postprocess`` config value: true / false or a mapping of these fields."""
        if isinstance(value, PostprocessSettings):
            return value
        if isinstance(value, bool) or value is None:
            return cls(enabled=bool(value))
        if not isinstance(value, Mapping):
            raise InputError(None, f"postprocess must be true, false or a mapping, got {value!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise InputError(None, f"unknown postprocess setting(s): {', '.join(unknown)}")
        out = cls(**dict(value))
        out.validate()
        return out

    def validate(self) -> None:
        for name in (
            "calcium_max_depth_mm",
            "calcium_min_area_mm2",
            "calcium_min_length_mm",
            "strut_inner_mm",
            "strut_outer_mm",
            "guidewire_margin_deg",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise InputError(None, f"postprocess.{name} must be a number >= 0, got {v!r}")
        for name in ("guidewire_frames", "calcium_frame_vote", "calcium_outer_median"):
            w = getattr(self, name)
            if isinstance(w, bool) or not isinstance(w, int) or w < 1 or w % 2 == 0:
                raise InputError(None, f"postprocess.{name} must be odd >= 1, got {w!r}")
        if self.lumen_contour not in ("smooth", "first_wall"):
            raise InputError(
                None,
                f"postprocess.lumen_contour must be smooth or first_wall, got {self.lumen_contour!r}",
            )
        k = self.calcium_track_frames
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(
                None, f"postprocess.calcium_track_frames must be an integer >= 0, got {k!r}"
            )
        if not isinstance(self.enabled, bool):
            raise InputError(None, "postprocess.enabled must be true or false")
        p = self.calcium_extend_prob
        if not is_extend_prob(p):
            raise InputError(None, f"postprocess.calcium_extend_prob must be in [0, 1), got {p!r}")


class _Rays:
    """Ray samples of one pullback geometry and, per pixel (flattened), its ray and radius."""

    def __init__(self, shape, space, ps, center, n_rays, device):
        h, w = shape
        self.polar = space == "polar"
        dev = torch.device(device)
        if self.polar:
            self.n, self.step_mm = h, ps
            self.index = torch.arange(h, device=dev).repeat_interleave(w)
            self.r = torch.arange(w, device=dev, dtype=torch.float32).repeat(h)
            # sample j: j·dr·dθ mm², as the calcium area of octseg.geometry.measure
            j = torch.arange(w, device=dev, dtype=torch.float32).clamp(min=0.125)
            self.col_area = j * (ps * ps * lu.TWO_PI / h)
            self.tol_in, self.tol_out = 0.0, 0.0  # exact: A-line samples are the rays
            return
        self.n = n_rays
        full = farthest_corner(center, h, w)
        self.table = lu.CatheterRays((h, w), center, n_rays, full + 2, dev)
        self.step_mm = self.table.step * ps
        i = torch.arange(h, device=dev, dtype=torch.float32)[:, None] - center[0]
        j = torch.arange(w, device=dev, dtype=torch.float32)[None, :] - center[1]
        ang = torch.remainder(torch.atan2(i, j), lu.TWO_PI) * (n_rays / lu.TWO_PI)
        self.index = (torch.floor(ang).long() % n_rays).reshape(-1)  # the ray before the pixel
        self.r = (torch.sqrt(i * i + j * j) / self.table.step).reshape(-1)  # in ray samples
        self.tol_in, self.tol_out = 1.5, 1.5  # samples (half pixels) of sampling slack
        self.col_area = torch.full((w,), ps * ps, device=dev)

    def sample(self, lab: torch.Tensor) -> torch.Tensor:
        return lab if self.polar else self.table.sample(lab)

    def lo(self, v: torch.Tensor) -> torch.Tensor:
        """Per ray ``(B, N)``: the smaller value of the ray and the next (the two rays around
        a Cartesian pixel); polar: the value itself."""
        return v if self.polar else torch.minimum(v, torch.roll(v, -1, 1))

    def hi(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.polar else torch.maximum(v, torch.roll(v, -1, 1))

    def at_pixels(self, v: torch.Tensor) -> torch.Tensor:
        """Per-ray values ``(B, N)`` at every pixel ``(B, H*W)`` (one shared index table)."""
        return torch.gather(v, 1, self.index.expand(v.shape[0], -1))


def _ray_exits(vals: torch.Tensor, cath: int, smooth: bool, shadow: int) -> dict[str, torch.Tensor]:
    """Per ray of ray samples ``(B, N, S)``: the filled-lumen exit (samples), the rays to
    interpolate (guidewire, strut) and those that meet the guidewire; per frame whether it has
    any lumen; with ``smooth`` the contour candidates of :mod:`octseg.geometry.lumen_path`."""
    k, masked, kept = lu._first_exit(vals, cath, True, True, shadow)
    kf = k.to(torch.float32)
    out = {
        "fill": kf,
        "masked": masked,
        "gw": (vals == GUIDEWIRE).any(-1),
        "has": (vals == LUMEN).flatten(1).any(1),
    }
    if smooth:
        out["cand"], out["valid"] = lp.candidates(kept, kf)
    return out


def _contours(parts: list[dict[str, torch.Tensor]], smooth: bool) -> tuple[torch.Tensor, ...]:
    """The chunks of :func:`_ray_exits` joined: per ray the contour radius that fills the
    lumen (first exit, or the smoothest path off the guidewire rays), the radius beyond which
    lumen is removed (that one interpolated across guidewire and strut rays, at least itself),
    the guidewire rays, and per frame whether it has lumen. The smoothest path runs once over
    all frames."""
    cat = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
    fill, gw = cat["fill"], cat["gw"]
    if smooth:
        fill = torch.where(gw, fill, lp.smoothest_path(cat["cand"], cat["valid"], gw))
    keep = torch.maximum(fill, lu.fill_masked_periodic(fill, cat["masked"]))
    return fill, keep, gw, cat["has"]


def _running_majority(g: torch.Tensor, window: int) -> torch.Tensor:
    """Per frame and ray of ``g`` (F, N): true when more than half of the frames within
    ``window // 2`` of it (fewer at the ends of the pullback) are true."""
    if window <= 1:
        return g
    h = window // 2
    f = g.shape[0]
    c = torch.cat([torch.zeros_like(g[:1], dtype=torch.int32), torch.cumsum(g.int(), 0)])
    i = torch.arange(f, device=g.device)
    lo, hi = (i - h).clamp(min=0), (i + h + 1).clamp(max=f)
    return (c[hi] - c[lo]) * 2 > (hi - lo)[:, None]


def _grow(g: torch.Tensor, k: int) -> torch.Tensor:
    """Periodic dilation of ``g`` (F, N) by ``k`` rays."""
    out = g.clone()
    for d in range(1, k + 1):
        out |= torch.roll(g, d, 1) | torch.roll(g, -d, 1)
    return out


def _missing_sector(g: torch.Tensor, sector: torch.Tensor, margin: int) -> torch.Tensor:
    """Rays (F, N) to give the guidewire in frames that lack it: fewer than half of their
    ``sector`` rays (the running majority) have class 4. Those frames get the guidewire rays of
    the nearest frame on each side (at the ends: the two nearest), within ``margin`` rays of
    the sector (the guidewire drifts between frames; a neighbour's spurious blob is not
    copied)."""
    if g.shape[0] < 2:
        return torch.zeros_like(g)
    lacking = (g & sector).sum(1) * 2 < sector.sum(1)
    rays = _neighbours(g) & _grow(sector, margin) & ~g
    return rays & lacking[:, None]


def _neighbours(g: torch.Tensor) -> torch.Tensor:
    """Per frame of ``g`` (F, N): the union of the nearest frame before and after (at the ends
    the two nearest frames)."""
    f = g.shape[0]
    i = torch.arange(f, device=g.device)
    prev = torch.where(i > 0, i - 1, min(2, f - 1))
    nxt = torch.where(i < f - 1, i + 1, max(f - 3, 0))
    return g[prev] | g[nxt]


def _apply(lab, rays, k_fill, k_keep, has, s, gw_add, gw_off, guide):
    """Edit one chunk of labels ``(B, H, W)`` in place (see the module docstring); frames
    without lumen (``has`` false) are left as they are. The lumen rules run over every pixel;
    the calcium, strut and guidewire rules only over the pixels of those classes."""
    b = lab.shape[0]
    flat = lab.view(b, -1)
    r = rays.r
    edge, near = rays.hi(k_keep), rays.lo(k_keep)
    lumlike = (flat | 2) == 3  # lumen or strut
    tissue = ~lumlike & (flat != GUIDEWIRE)
    inside = r < rays.at_pixels(rays.lo(k_fill) - rays.tol_in)
    out = torch.where(inside & tissue, LUMEN, flat)
    beyond = r > rays.at_pixels(edge + rays.tol_out)
    out = torch.where(beyond & (flat == LUMEN), BACKGROUND, out)
    # sparse rules: calcium, struts, guidewire pixels
    sparse = (flat == CALCIUM) | (flat == STRUT)
    if guide:
        sparse |= flat == GUIDEWIRE
    f, p = sparse.nonzero(as_tuple=True)
    ray, rp, cls = rays.index[p], r[p], flat[f, p]
    e, nr = edge[f, ray], near[f, ray]
    depth = (rp - e) * rays.step_mm
    new = cls.clone()
    new[(cls == CALCIUM) & (depth > s.calcium_max_depth_mm)] = BACKGROUND
    new[(cls == STRUT) & ((nr - rp) * rays.step_mm > s.strut_inner_mm)] = LUMEN
    new[(cls == STRUT) & (depth > s.strut_outer_mm)] = BACKGROUND
    if guide:
        off = (cls == GUIDEWIRE) & rays.lo(gw_off.to(torch.uint8))[f, ray].bool()
        new[off & (rp < nr)] = LUMEN
        new[off & (rp >= nr)] = BACKGROUND
    chg = new != cls
    out[f[chg], p[chg]] = new[chg]
    if guide and bool(gw_add.any()):  # frames whose sector lacks the guidewire
        fr = gw_add.any(1).nonzero().squeeze(1)
        add = rays.at_pixels(rays.lo(gw_add[fr].to(torch.uint8))).bool()
        sub = out[fr]
        ok = add & (r >= rays.at_pixels(edge[fr])) & ~((sub | 2) == 3)
        out[fr] = torch.where(ok, GUIDEWIRE, sub)
    flat.copy_(torch.where(has[:, None], out, flat))


def _drop_small_calcium(lab: torch.Tensor, rays: _Rays, has: torch.Tensor, min_mm2: float):
    """Calcium components of ``lab`` ``(B, H, W)`` (8-connected, polar rows periodic) whose
    area is under ``min_mm2`` become background, in frames with lumen (``has``); in place.
    On CPU the components come from ``scipy.ndimage.label`` frame by frame, elsewhere from the
    batched :func:`octseg.geometry.components.components_from_flat` (slow on CPU for long
    arcs of calcium: min-label propagation)."""
    ca = (lab == CALCIUM) & has[:, None, None]
    if not bool(ca.any()):
        return
    lab[_small(ca, rays, min_mm2)] = BACKGROUND


def _short_and_tracked(
    labels: np.ndarray, rays: _Rays, has: torch.Tensor, s: PostprocessSettings, fs: Any, gap: int
) -> None:
    """The minimum lesion length on ``labels`` (in place, CPU), and with
    ``calcium_track_frames`` the tracking around it (:mod:`octseg.model.track`): the small
    components taken out before it, the tracked ones put back after it."""
    pieces: list = []
    if s.calcium_min_area_mm2 > 0 and s.calcium_track_frames > 0:
        index, has_np = rays.index.cpu().numpy(), has.cpu().numpy()
        area = rays.col_area.cpu().numpy()
        pieces = split_small(labels, index, area, rays.polar, has_np, s.calcium_min_area_mm2)
    if s.calcium_min_length_mm > 0:
        drop_short_calcium(labels, fs, s.calcium_min_length_mm, gap)
    if pieces:  # after the minimum length: specks extend the lesions it keeps, never rescue one
        restore_tracked(labels, pieces, index, rays.n, has_np, s.calcium_track_frames, gap)


def large_components(ca: torch.Tensor, spacing_mm: float, min_mm2: float) -> torch.Tensor:
    """``ca`` ``(B, A, R)`` (polar: A-lines periodic, sample ``j`` at ``j * spacing_mm``)
    without its 8-connected components under ``min_mm2``: what ``calcium_min_area_mm2`` keeps."""
    if min_mm2 <= 0 or not bool(ca.any()):
        return ca
    rays = _Rays(tuple(ca.shape[1:]), "polar", spacing_mm, None, ca.shape[1], ca.device)
    return ca & ~_small(ca, rays, min_mm2)


def _small(ca: torch.Tensor, rays: _Rays, min_mm2: float) -> torch.Tensor:
    """Pixels of the components of ``ca`` ``(B, H, W)`` smaller than ``min_mm2``: on CPU by
    :func:`_small_scipy`, elsewhere by the batched :func:`_small_torch`."""
    if ca.device.type == "cpu":
        return _small_scipy(ca.numpy(), rays, min_mm2)
    return _small_torch(ca, rays, min_mm2)


def _small_torch(ca: torch.Tensor, rays: _Rays, min_mm2: float) -> torch.Tensor:
    """Pixels of the components of ``ca`` ``(B, H, W)`` smaller than ``min_mm2``."""
    flat = ca.reshape(-1).nonzero().squeeze(1)
    _, _, col, comp, n = components_from_flat(flat, tuple(ca.shape), rays.polar)
    area = torch.zeros(n, device=ca.device).index_add_(0, comp, rays.col_area[col])
    small = torch.zeros_like(ca)
    small.view(-1)[flat[area[comp] < min_mm2]] = True
    return small


def _small_scipy(ca: np.ndarray, rays: _Rays, min_mm2: float) -> torch.Tensor:
    """:func:`_small_torch` frame by frame with
    :func:`octseg.geometry.components.label_with_areas` (on the columns that hold calcium)."""
    out = np.zeros_like(ca)
    col_area = rays.col_area.cpu().numpy()
    for f in np.flatnonzero(ca.any((1, 2))):
        lab, area, c0 = label_with_areas(ca[f], col_area, rays.polar)
        out[f][:, c0 : c0 + lab.shape[1]] = np.concatenate([[False], area < min_mm2])[lab]
    return torch.from_numpy(out)


@torch.no_grad()
def postprocess_labels(
    labels: np.ndarray,
    space: str,
    pixel_spacing_mm: float,
    catheter_center: tuple[float, float] | None = None,
    settings: PostprocessSettings | Mapping | bool | None = None,
    catheter_radius_mm: float = 0.45,
    device: str | torch.device = "cpu",
    strut_shadow_mm: float = GeometrySettings.strut_shadow_mm,
    frame_spacing_mm: float | None = None,
    max_gap_frames: int = GeometrySettings.max_gap_frames,
) -> np.ndarray:
    """Post-process a pullback's predicted labels ``(F, H, W)`` uint8 **in place** (and return
    them). ``catheter_radius_mm``, ``strut_shadow_mm``, ``max_gap_frames``: as the geometry
    settings of the same names; ``frame_spacing_mm``: needed by ``calcium_min_length_mm``."""
    s = PostprocessSettings.from_value(True if settings is None else settings)
    device = "cpu" if device in (None, "", "auto") else device
    if not s.enabled or labels.shape[0] == 0:
        return labels
    f, h, w = labels.shape
    rays = _Rays((h, w), space, pixel_spacing_mm, catheter_center, s.n_rays, device)
    cath = lu.samples_within(catheter_radius_mm, rays.step_mm)
    shadow = lu.samples_within(strut_shadow_mm, rays.step_mm)
    smooth = s.lumen_contour == "smooth"
    step = for_device(s.chunk_frames, device)
    parts = []
    for a in range(0, f, step):
        lab = torch.from_numpy(labels[a : a + step]).to(device)
        parts.append(_ray_exits(rays.sample(lab), cath, smooth, shadow))
    kf_all, kk_all, g, has_all = _contours(parts, smooth)
    guide = s.guidewire_frames > 1 and f > 1
    sector = _running_majority(g, s.guidewire_frames)
    margin = int(math.ceil(s.guidewire_margin_deg / 360 * rays.n))
    gw_off = ~_grow(sector | _neighbours(g), margin) if f > 1 else ~g
    gw_add = _missing_sector(g, sector, margin)
    for sl, lab in _chunks(labels, step, device):
        _apply(lab, rays, kf_all[sl], kk_all[sl], has_all[sl], s, gw_add[sl], gw_off[sl], guide)
    if s.calcium_frame_vote > 1:
        vote_calcium(labels, s.calcium_frame_vote, has_all.cpu().numpy())
    if s.calcium_outer_median > 1:
        _outer_median(labels, rays, has_all, s.calcium_outer_median, step, device)
    if s.calcium_min_area_mm2 > 0 and not s.calcium_track_frames:
        for sl, lab in _chunks(labels, step, device):
            _drop_small_calcium(lab, rays, has_all[sl], s.calcium_min_area_mm2)
    _short_and_tracked(labels, rays, has_all, s, frame_spacing_mm, max_gap_frames)
    return labels


def _outer_median(
    labels: np.ndarray, rays: _Rays, has: torch.Tensor, window: int, step: int, device: Any
) -> None:
    """``calcium_outer_median`` on ``labels`` (in place; :mod:`octseg.model.outer_median`):
    every frame's calcium extent per ray, the medians of the outer borders along the pullback,
    then applied. Frames without lumen keep theirs and are no frame's neighbour: their calcium,
    unchecked by the lumen rules, leaves a window not full."""
    parts = [
        om.calcium_extent(lab, rays.index, rays.r, rays.n)
        for _, lab in _chunks(labels, step, device, write=False)
    ]
    inner, outer = (torch.cat(p) for p in zip(*parts))
    counted = torch.where(has[:, None], outer, -1.0)
    new = torch.where(has[:, None], om.median_borders(counted, window), outer)
    for sl, lab in _chunks(labels, step, device):
        om.apply_borders(lab, inner[sl], outer[sl], new[sl], rays.index, rays.r)


def _chunks(
    labels: np.ndarray, step: int, device: Any, write: bool = True
) -> Iterator[tuple[slice, torch.Tensor]]:
    """``step`` frames of ``labels`` at a time, as a tensor on ``device`` to edit in place: on
    the CPU the array's own memory, elsewhere a copy written back after each step (unless
    ``write`` is false)."""
    for a in range(0, len(labels), step):
        sl = slice(a, min(len(labels), a + step))
        lab = torch.from_numpy(labels[sl]).to(device)
        yield sl, lab
        if write and lab.device.type != "cpu":
            labels[sl] = lab.cpu().numpy()


def drop_short_calcium(
    labels: np.ndarray, frame_spacing_mm: Any, min_mm: float, max_gap_frames: int = 2
) -> np.ndarray:
    """``labels`` ``(F, H, W)`` (in place) without the calcium of lesions shorter than ``min_mm``:
    lesions as the geometry finds them (runs of frames with calcium, gaps of up to
    ``max_gap_frames`` frames bridged; :func:`octseg.geometry.summary.bridged_runs`), length
    = frames spanned x ``frame_spacing_mm``, so the frame that ends a lesion after a short gap
    stays with it."""
    try:
        fs = math.nan if isinstance(frame_spacing_mm, bool) else float(frame_spacing_mm)
    except (TypeError, ValueError):
        fs = math.nan
    if not (math.isfinite(fs) and fs > 0):
        raise InputError(
            None,
            f"postprocess.calcium_min_length_mm needs the frame spacing (mm), got "
            f"{frame_spacing_mm!r}: give frame_spacing_mm= or set the rule to 0",
        )
    if len(labels) == 0:
        return labels
    has = calcium_frames(labels)
    for i0, i1 in bridged_runs(range(len(has)), has.tolist(), max_gap_frames):
        if (i1 - i0 + 1) * fs < min_mm - 1e-9:  # 2 x 0.2 mm reaches 0.4 mm
            for f in range(i0, i1 + 1):
                labels[f][labels[f] == CALCIUM] = BACKGROUND
    return labels
