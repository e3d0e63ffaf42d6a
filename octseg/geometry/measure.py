"""``measure_labels``: every per-frame, per-strut and per-pullback metric of a label file.

Frames are processed in chunks of ``chunk_frames`` on ``device``; within a chunk every step is
batched over frames (no per-pixel or per-strut Python loops). Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from octseg.core.classes import CALCIUM, PLAQUE_CLASSES
from octseg.core.errors import InputError
from octseg.geometry import calcium as ca_mod
from octseg.geometry import lumen as lu
from octseg.geometry import plaque as pl_mod
from octseg.geometry import stent as st_mod
from octseg.geometry.kernels import (
    count_along,
    eq_u8,
    farthest_corner,
    for_device,
    pieces,
    round_up,
)
from octseg.geometry.settings import MEASUREMENT_RULES, GeometrySettings
from octseg.geometry.summary import summarize
from octseg.geometry.tables import FRAME_COLUMNS, STRUT_COLUMNS, write_measurements
from octseg.geometry.transfer import device_chunks, spans
from octseg.io.labels import LabelFile

# samples per ray-casting piece and pixels per full-frame piece: bound memory independently of
# chunk_frames and keep the temporaries small enough to stay in cache
_RAY_BUDGET = 1 << 21
_PIXEL_BUDGET = 1 << 23
# (on an accelerator 16x larger: kernels.for_device)


@dataclass
class Measurements:
    frames: list[dict[str, Any]] = field(default_factory=list)
    struts: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        return write_measurements(out_dir, self.frames, self.struts, self.summary)


def _extent_px(mask: torch.Tensor, center: tuple[float, float], stride: int) -> float:
    """Largest distance (pixels) from ``center`` to a corner of the bounding box of ``mask``
    (a ``stride``-subsampled view of a chunk) over all its frames, with a margin of one stride;
    0 if empty."""
    rows = mask.any(2).any(0).nonzero()
    cols = mask.any(1).any(0).nonzero()
    if rows.numel() == 0:
        return 0.0
    r0, r1 = float(rows.min()) * stride, float(rows.max()) * stride
    c0, c1 = float(cols.min()) * stride, float(cols.max()) * stride
    dy = max(abs(r0 - center[0]), abs(r1 - center[0])) + stride
    dx = max(abs(c0 - center[1]), abs(c1 - center[1])) + stride
    return math.hypot(dy, dx) + 1.5


def _work_buffer(cache: dict, lab: torch.Tensor) -> torch.Tensor:
    """A uint8 scratch tensor of up to ``_PIXEL_BUDGET`` pixels, whole frames shaped like
    ``lab``'s, kept in ``cache`` across chunks: full-frame passes run over pieces of that many
    frames, which stay in cache and avoid fresh full-size temporaries (page faults on CPU)."""
    b, h, w = lab.shape
    n = min(b, max(1, for_device(_PIXEL_BUDGET, lab.device) // (h * w)))
    buf = cache.get("work")
    if (
        buf is None
        or buf.shape[1:] != lab.shape[1:]
        or buf.shape[0] < n
        or buf.device != lab.device
    ):
        buf = cache["work"] = torch.empty((n, h, w), dtype=lab.dtype, device=lab.device)
    return buf


_SUB = 4  # subsampling stride of the extent estimates


def _plaque_reach(lab: torch.Tensor, polar: bool, ps: float, center_px) -> float:
    """Radius (mm from the catheter) holding every fibrous-cap / lipid pixel of the chunk, with a
    margin; 0 when the chunk has none."""
    b, h, w = lab.shape
    lo, hi = min(PLAQUE_CLASSES), max(PLAQUE_CLASSES)
    assert hi - lo + 1 == len(PLAQUE_CLASSES)  # one contiguous range of class ids
    if int(lab.amax()) < lo:  # the plaque ids are the highest: one cheap pass without plaque
        return 0.0
    if polar:
        cols = ((lab >= lo) & (lab <= hi)).any(1).any(0).nonzero()
        return (float(cols.max()) + 1.5) * ps if cols.numel() else 0.0
    mask = (lab >= lo) & (lab <= hi)
    if not bool(mask.any()):
        return 0.0
    reach = _extent_px(mask[:, ::_SUB, ::_SUB], center_px, _SUB)
    full = farthest_corner(center_px, h, w)
    return (reach if reach > 0 else full) * ps


def _calcium_pixels(
    lab: torch.Tensor, polar: bool, ps: float, center_px, work: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Calcium pixel count and area per frame, and the radius (mm from the catheter) holding
    every calcium pixel of the chunk (uint8 work in ``work``, a buffer reused across chunks)."""
    b, h, w = lab.shape
    counts = []
    for i in range(0, b, work.shape[0]):
        part = lab[i : i + work.shape[0]]
        ca = eq_u8(part, CALCIUM, out=work[: part.shape[0]])
        counts.append(count_along(ca if polar else ca.reshape(ca.shape[0], -1), 1))
    if polar:
        per_col = torch.cat(counts)  # (B, R)
        j = torch.arange(w, device=lab.device, dtype=torch.float32).clamp(min=0.125)
        ca_area = (per_col.float() * j).sum(1) * (ps * ps * lu.TWO_PI / h)
        cols = per_col.any(0).nonzero()
        ca_reach = (float(cols.max()) + 1.5) * ps if cols.numel() else 0.0
        return per_col.sum(1), ca_area, ca_reach
    ca_count = torch.cat(counts)
    ca_area = ca_count.float() * (ps * ps)
    ca_reach = _extent_px(lab[:, ::_SUB, ::_SUB] == CALCIUM, center_px, _SUB) * ps
    if ca_reach == 0 and bool(ca_count.any()):
        ca_reach = farthest_corner(center_px, h, w) * ps  # too small for the subsampled estimate
    return ca_count, ca_area, ca_reach


@dataclass
class _Lumen:
    """The catheter-ray lumen contour of each frame of a chunk, its area and centroid."""

    radii: torch.Tensor
    theta: torch.Tensor
    area: torch.Tensor
    cy: torch.Tensor
    cx: torch.Tensor
    has_lumen: torch.Tensor
    open_percent: torch.Tensor  # share of catheter rays whose lumen reaches the image's edge

    def profile(self, query: torch.Tensor, oy=None, ox=None) -> torch.Tensor:
        """``rho_L`` at ``query`` angles about (oy, ox) (default the centroid); NaN without a
        lumen."""
        oy = self.cy if oy is None else oy
        ox = self.cx if ox is None else ox
        out = lu.centroid_profile(self.radii, self.theta, oy, ox, query)
        return torch.where(self.has_lumen[:, None], out, torch.full_like(out, float("nan")))


def _lumen(lab: torch.Tensor, space: str, ps: float, center_px, s, cache: dict) -> _Lumen:
    """Lumen contour from catheter rays (:func:`octseg.geometry.lumen.catheter_contour`)."""
    max_r = None
    if space != "polar":  # rays only as far as the lumen reaches
        full = farthest_corner(center_px, *lab.shape[1:])
        max_r = _extent_px((lab[:, ::_SUB, ::_SUB] | 2) == 3, center_px, _SUB)
        max_r = full if max_r == 0 else min(max_r, full)
    budget = for_device(_RAY_BUDGET, lab.device)
    radii, theta, is_open = lu.catheter_contour(lab, space, ps, center_px, s, cache, max_r, budget)
    area, cy, cx = lu.polygon_area_centroid(radii, theta)
    has_lumen = area > 0
    cy = torch.where(has_lumen, cy, torch.zeros_like(cy))
    cx = torch.where(has_lumen, cx, torch.zeros_like(cx))
    return _Lumen(radii, theta, area, cy, cx, has_lumen, is_open.float().mean(1) * 100.0)


def _ray_metrics(
    lab, space, ps, center_px, n, cache, lum: _Lumen, phi, reach: float, fns
) -> dict[str, torch.Tensor]:
    """Calcium / plaque metrics (``fns``) along ``n`` rays from the lumen centroid (its nearest
    grid point), sampled as far as ``reach`` mm."""
    b, h, w = lab.shape
    # ``reach`` is from the catheter; rays start at the centroid, up to ``off`` pixels from it
    off = float(torch.sqrt(lum.cy * lum.cy + lum.cx * lum.cx).max()) / ps
    n_s = round_up(reach / ps + off + 2, 32)
    half = round_up(n_s + off + 2, 64)
    key = ("grid", half, n_s)
    if key not in cache:
        cache[key] = ca_mod.RayGrid(space, (h, w), ps, center_px, half, n, n_s, lab.device)
    grid = cache[key]
    oy, ox, my, mx = grid.origin(lum.cy, lum.cx)
    rho_o = lum.profile(phi, my, mx)
    cal: dict[str, list[torch.Tensor]] = {}
    for p in pieces(b, n * n_s, for_device(_RAY_BUDGET, lab.device)):
        vals = grid.sample(lab[p], oy[p], ox[p])
        shadow = ca_mod.shadow_rays(vals)  # guidewire and struts: shared by calcium and plaque
        for fn in fns:
            for k, v in fn(vals, ps, rho_o[p], shadow).items():
                cal.setdefault(k, []).append(v)
        del vals
    return {k: torch.cat(v) for k, v in cal.items()}


def _wall_metrics(lab, space, ps, center_px, s, cache, lum: _Lumen, phi, ca) -> dict:
    """Calcium and plaque columns of each frame (NaN where a frame has none), with TCFA and the
    calcium area; ``ca`` is :func:`_calcium_pixels`' result."""
    ca_count, ca_area, ca_reach = ca
    any_ca = bool(ca_count.any())
    pl_reach = _plaque_reach(lab, space == "polar", ps, center_px)
    any_pl = pl_reach > 0
    out: dict[str, torch.Tensor] = {}
    if any_ca or any_pl:
        reach = max(ca_reach, pl_reach, float(lum.radii.max()) + 2 * ps)
        fns = [ca_mod.calcium_metrics] * any_ca + [pl_mod.plaque_metrics] * any_pl
        out = _ray_metrics(lab, space, ps, center_px, s.n_rays, cache, lum, phi, reach, fns)
    nan = float("nan")
    empty = torch.full((lab.shape[0],), nan, device=lab.device)
    keys = (
        "calcium_arc_deg",
        "calcium_max_thickness_mm",
        "calcium_max_thickness_angle_deg",
        "calcium_min_depth_mm",
    )
    for k in keys + pl_mod.PLAQUE_KEYS:
        out.setdefault(k, empty)
    t = pl_mod.tcfa(
        out["cap_min_thickness_um"], out["lipid_arc_deg"], s.tcfa_cap_um, s.tcfa_arc_deg
    )
    out["tcfa"] = torch.where(torch.isfinite(out["lipid_arc_deg"]), t.float(), empty)
    out["calcium_area_mm2"] = torch.where(ca_count > 0, ca_area, nan)
    return out


def _lumen_columns(lum: _Lumen, rho_l: torch.Tensor) -> dict[str, torch.Tensor]:
    """Lumen area, diameters, eccentricity and centroid of each frame (NaN without a lumen)."""
    dmean, dmin, dmax = lu.diameters(rho_l)
    has, nan_b = lum.has_lumen, torch.full_like(lum.area, float("nan"))
    return dict(
        lumen_area_mm2=torch.where(has, lum.area, nan_b),
        lumen_mean_diameter_mm=torch.where(has, dmean, nan_b),
        lumen_min_diameter_mm=torch.where(has, dmin, nan_b),
        lumen_max_diameter_mm=torch.where(has, dmax, nan_b),
        lumen_eccentricity=torch.where(has, (dmax - dmin) / dmax.clamp(min=1e-12), nan_b),
        lumen_centroid_x_mm=torch.where(has, lum.cx, nan_b),
        lumen_centroid_y_mm=torch.where(has, lum.cy, nan_b),
        lumen_open_percent=torch.where(has, lum.open_percent, nan_b),
    )


@torch.no_grad()
def measure_chunk(
    lab: torch.Tensor,
    space: str,
    ps: float,
    center_px: tuple[float, float] | None,
    settings: GeometrySettings,
    cache: dict | None = None,
) -> dict[str, torch.Tensor]:
    """All per-frame and per-strut tensors of one chunk of label maps ``(B, H, W)`` uint8.

    ``cache`` (a dict kept across the chunks of one pullback) holds the ray lookup tables.
    Steps: calcium pixels, the lumen contour from catheter rays, calcium and plaque along rays
    from the lumen centroid, struts and stent.
    """
    s = settings
    cache = {} if cache is None else cache
    work = _work_buffer(cache, lab)
    ca = _calcium_pixels(lab, space == "polar", ps, center_px, work)
    lum = _lumen(lab, space, ps, center_px, s, cache)
    phi = torch.arange(s.n_rays, device=lab.device, dtype=torch.float32) * (lu.TWO_PI / s.n_rays)
    rho_l = lum.profile(phi)
    out = _wall_metrics(lab, space, ps, center_px, s, cache, lum, phi, ca)
    sframe, syx = st_mod.strut_points(lab, space, ps, center_px, work=work)
    stent = st_mod.stent_metrics(
        sframe,
        syx,
        lab.shape[0],
        lum.cy,
        lum.cx,
        lum.profile,
        rho_l,
        s.strut_threshold_mm,
        s.min_struts,
        s.contour_samples_per_segment,
    )
    out.update(_lumen_columns(lum, rho_l))
    out.update(strut_x_mm=syx[:, 1], strut_y_mm=syx[:, 0])
    out.update(stent)
    return out


def _f(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


def _rows(
    res: dict[str, torch.Tensor], frame_numbers: np.ndarray, fs: float
) -> tuple[list[dict], list[dict]]:
    cpu = {k: v.detach().cpu().tolist() for k, v in res.items()}
    frames = []
    for i, fnum in enumerate(frame_numbers.tolist()):
        n_struts = int(cpu["n_struts"][i])
        row = {
            "frame": int(fnum),
            "position_mm": fnum * fs,
            "n_struts": n_struts,
            "n_malapposed": int(cpu["n_malapposed"][i]),
        }
        for key in FRAME_COLUMNS:
            if key not in row:
                row[key] = _f(cpu[key][i])
        row["tcfa"] = None if row["tcfa"] is None else bool(row["tcfa"])
        if row["lumen_area_mm2"] is None and n_struts:
            row["n_malapposed"] = None  # distances need a lumen contour
        frames.append(row)
    struts = []
    order = sorted(
        range(len(cpu["strut_frame"])),
        key=lambda k: (cpu["strut_frame"][k], cpu["strut_angle_deg"][k]),
    )
    for k in order:
        dist = _f(cpu["strut_distance_mm"][k])
        angle = _f(cpu["strut_angle_deg"][k])
        struts.append(
            {
                "frame": int(frame_numbers[cpu["strut_frame"][k]]),
                "angle_deg": angle % 360.0 if angle is not None else None,
                "x_mm": cpu["strut_x_mm"][k],
                "y_mm": cpu["strut_y_mm"][k],
                "distance_mm": dist,
                "malapposed": bool(cpu["strut_malapposed"][k]) if dist is not None else None,
            }
        )
    return frames, struts


def measure_labels(
    label_file: LabelFile,
    settings: GeometrySettings | None = None,
    device: str | torch.device = "cpu",
    chunk_frames: int = 64,
    progress: bool = False,
) -> Measurements:
    """Measure every label frame of ``label_file``; see ``docs/metrics.md``.

    CPU threads are the caller's choice (``torch.set_num_threads``). The work is memory-bound
    and runs at a few ms per 1024x1024 frame on one core; extra intra-op threads help little on
    an idle machine and can be many times slower on a busy one (every op waits for all threads),
    so one thread per process is a good default (``octseg measure --threads``). With several
    threads on a shared machine, ``OMP_WAIT_POLICY=PASSIVE`` (set before starting Python) stops
    idle OpenMP threads from spinning against the working ones.
    """
    if not isinstance(label_file, LabelFile):
        raise InputError(None, f"measure_labels needs a LabelFile, got {type(label_file).__name__}")
    label_file.validate()
    if chunk_frames < 1:
        raise InputError(None, f"chunk_frames must be >= 1, got {chunk_frames}")
    s = settings if settings is not None else GeometrySettings()
    dev = torch.device(device)
    lf = label_file
    ps, fs = lf.pixel_spacing_mm, lf.frame_spacing_mm
    center = lf.center if lf.space == "cartesian" else None
    frame_numbers = lf.frames
    cache: dict = {}
    rows: list[dict] = []
    struts: list[dict] = []
    # on a GPU the next chunk travels meanwhile; closed at once on an error (its thread and
    # pinned buffers freed)
    with closing(device_chunks(lf.labels, chunk_frames, dev)) as chunks:
        if progress:
            from tqdm import tqdm

            n = len(spans(lf.n_frames, chunk_frames))
            chunks = tqdm(chunks, desc="measure", unit="chunk", total=n)
        for start, stop, lab in chunks:
            res = measure_chunk(lab, lf.space, ps, center, s, cache)
            fr, sr = _rows(res, frame_numbers[start:stop], fs)
            rows += fr
            struts += sr
    summary = summarize(rows, struts, fs, s)
    summary["measurement_rules"] = MEASUREMENT_RULES  # which definitions made these numbers
    return Measurements(rows, struts, summary)


def measure_frames(
    labels: np.ndarray,
    *,
    space: str,
    pixel_spacing_mm: float,
    frame_spacing_mm: float,
    catheter_center: tuple[float, float] | None = None,
    frame_index: np.ndarray | None = None,
    **kwargs: Any,
) -> Measurements:
    """Convenience wrapper: measure a label array (validated like a label file)."""
    lf = LabelFile(
        labels=np.asarray(labels),
        space=space,
        pixel_spacing_mm=pixel_spacing_mm,
        frame_spacing_mm=frame_spacing_mm,
        catheter_center=catheter_center,
        frame_index=frame_index,
    )
    return measure_labels(lf, **kwargs)


__all__ = ["Measurements", "measure_labels", "measure_frames", "measure_chunk", "STRUT_COLUMNS"]
