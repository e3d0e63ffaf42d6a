"""Overlay images of chosen frames, as a cardiologist reads them: the Cartesian cross-section with
the lumen contour (cyan), calcium (orange, outlined and tinted), the stent contour (green spline
through the struts), struts as dots (white when apposed, red and ringed when malapposed), a 1 mm
scale bar and the frame's key numbers.

Polar inputs are scan-converted for display (octseg.core.polar); struts are drawn from the measured
strut table (``x_mm``/``y_mm`` from the catheter centre), so the picture shows exactly what was
measured. Default frames: the MLA frame, the frame of maximal calcium arc, the MSA frame, the
frame of maximal malapposition within the stented segment and the frame of the thinnest fibrous
cap (lipid tinted yellow, cap outlined magenta, the thinnest cap marked). On a frame outside the
stented segment (:func:`octseg.geometry.summary.in_stent`) struts are drawn hollow grey, with no
stent contour and no malapposition count: they are not a stent's.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from octseg.core import atomic
from octseg.core.classes import CALCIUM, FIBROUS_CAP, LIPID, LUMEN, STRUT
from octseg.core.polar import polar_to_cartesian
from octseg.geometry.summary import _num, in_stent

LUMEN_COLOR = "#00e5ff"
CALCIUM_COLOR = "#ff9f1c"
STENT_COLOR = "#39ff14"
MALAPPOSED_COLOR = "#ff2d55"
APPOSED_COLOR = "#ffffff"
OUTSIDE_COLOR = "#9a9a9a"  # struts outside the stented segment: not a stent's
LIPID_COLOR = "#ffe14d"
CAP_COLOR = "#ff4dff"
PNG_LEVEL = 3  # zlib level of the PNGs: on OCT images ~2.5x faster than 6, and no larger


def choose_frames(
    frames: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], requested: Any = "auto"
) -> list[tuple[int, str]]:
    """(frame, reason) pairs to draw; ``requested`` is "auto" or a list of frame numbers."""
    available = [int(r["frame"]) for r in frames]
    if requested not in (None, "auto"):
        return [(int(f), "requested") for f in requested if int(f) in available]
    picks: list[tuple[int, str]] = []
    lumen = summary.get("lumen") or {}
    _add_pick(picks, lumen.get("mla_frame"), "MLA")
    _add_pick(picks, _argmax(frames, "calcium_arc_deg"), "max calcium arc")
    stent = summary.get("stent") or {}
    _add_pick(picks, stent.get("msa_frame"), "MSA")
    stented = [r for r in frames if in_stent(r["frame"], summary.get("stent"))]
    mal = _argmax(stented, "max_malapposition_mm", require="n_malapposed")
    _add_pick(picks, mal, "max malapposition")
    _add_pick(picks, *_thinnest_cap(summary))
    if not picks and available:
        _add_pick(picks, available[len(available) // 2], "middle frame")
    return picks


def _thinnest_cap(summary: Mapping[str, Any]) -> tuple[int | None, str]:
    """The frame of the thinnest fibrous cap over all lipid lesions (None: no cap measured)."""
    caps = [
        les for les in summary.get("lipid_lesions") or [] if les.get("min_cap_frame") is not None
    ]
    if not caps:
        return None, ""
    thin = min(caps, key=lambda les: les["min_cap_thickness_um"])
    return thin["min_cap_frame"], "thinnest cap" + (" (TCFA)" if thin.get("tcfa") else "")


def _add_pick(picks: list[tuple[int, str]], frame: Any, reason: str) -> None:
    """Append (frame, reason), or add ``reason`` to the frame's entry; None: nothing."""
    if frame is None:
        return
    frame = int(frame)
    for i, (f, r) in enumerate(picks):
        if f == frame:
            picks[i] = (f, f"{r}, {reason}")
            return
    picks.append((frame, reason))


def _argmax(
    frames: Sequence[Mapping[str, Any]], col: str, require: str | None = None
) -> int | None:
    """The first frame with the largest ``col`` (among frames whose ``require`` is > 0)."""
    best, best_v = None, -math.inf
    for r in frames:
        v = _num(r.get(col))
        if v is None or (require and not (_num(r.get(require)) or 0) > 0):
            continue
        if v > best_v:
            best, best_v = int(r["frame"]), v
    return best


def to_display(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    space: str,
    pixel_spacing_mm: float,
    catheter_center: tuple[float, float] | None,
    size: int = 512,
) -> tuple[np.ndarray, np.ndarray, float, tuple[float, float]]:
    """Cartesian (image, labels, mm per pixel, centre (cy, cx)) for one frame."""
    if space == "cartesian":
        h, w = labels.shape
        c = catheter_center or ((h - 1) / 2.0, (w - 1) / 2.0)
        return image, labels, float(pixel_spacing_mm), (float(c[0]), float(c[1]))
    radius_mm = labels.shape[1] * pixel_spacing_mm
    cart_ps = radius_mm / (size / 2.0)
    c = ((size - 1) / 2.0, (size - 1) / 2.0)
    kw = dict(out_size=(size, size), polar_spacing_mm=pixel_spacing_mm, cart_spacing_mm=cart_ps)
    img = polar_to_cartesian(torch.from_numpy(np.ascontiguousarray(image))[None], **kw)[0]
    lab = polar_to_cartesian(
        torch.from_numpy(np.ascontiguousarray(labels))[None], mode="nearest", **kw
    )[0]
    return img.numpy(), lab.numpy(), cart_ps, c


def _stent_spline(
    pts_yx: np.ndarray, center_yx: np.ndarray, samples: int = 32
) -> np.ndarray | None:
    from octseg.core.contour import stent_contour

    if len(pts_yx) < 3:
        return None
    p = torch.as_tensor(pts_yx, dtype=torch.float64)[None]
    v = torch.ones(1, len(pts_yx), dtype=torch.bool)
    curve, mask, _ = stent_contour(
        p, v, torch.as_tensor(center_yx, dtype=torch.float64)[None], samples
    )
    c = curve[0][mask[0]].numpy()
    return np.vstack([c, c[:1]])


def render_overlay(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    space: str,
    pixel_spacing_mm: float,
    frame_spacing_mm: float,
    catheter_center: tuple[float, float] | None = None,
    frame: int,
    reason: str = "",
    frame_row: Mapping[str, Any] | None = None,
    struts: Sequence[Mapping[str, Any]] = (),
    size: int = 512,
    min_struts: int = 3,
    stented: bool = True,
) -> bytes:
    """PNG bytes of one annotated Cartesian frame; ``stented``: whether the frame lies in the
    pullback's stented segment (otherwise its struts are drawn as not a stent's)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    img, lab, ps, (cy, cx) = to_display(
        image,
        labels,
        space=space,
        pixel_spacing_mm=pixel_spacing_mm,
        catheter_center=catheter_center,
        size=size,
    )
    h, w = lab.shape
    row = frame_row or {}
    dpi = 100
    fig = Figure(figsize=(6.0, 6.6), dpi=dpi, facecolor="black")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.09, 1.0, 0.84))
    ax.set_facecolor("black")
    ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="bilinear")
    _draw_lumen_calcium(ax, lab)
    _draw_thickness(ax, lab, ps, (cy, cx), row)
    plaque = _draw_plaque(ax, lab, ps, (cy, cx), row)
    if struts:
        _draw_struts(ax, struts, row, ps, (cy, cx), min_struts if stented else None)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")
    # 1 mm scale bar, bottom right
    bar = 1.0 / ps
    x1, y1 = w - 0.06 * w, h - 0.05 * h
    ax.plot([x1 - bar, x1], [y1, y1], color="white", lw=3, solid_capstyle="butt")
    ax.text(
        x1 - bar / 2, y1 - 0.015 * h, "1 mm", color="white", ha="center", va="bottom", fontsize=10
    )
    # header and key numbers
    title = f"Frame {frame}  ·  {frame * frame_spacing_mm:.1f} mm"
    fig.text(0.02, 0.965, title, color="white", fontsize=13, weight="bold", va="center")
    if reason:
        fig.text(0.98, 0.965, reason, color="#ffd166", fontsize=11, ha="right", va="center")
    numbers = "   ".join(_key_numbers(row, stented))
    fig.text(0.02, 0.925, numbers, color="#dddddd", fontsize=10, va="center")
    _legend(fig, plaque, outside=bool(struts) and not stented)
    buf = io.BytesIO()
    fig.savefig(
        buf, format="png", dpi=dpi, facecolor="black", pil_kwargs={"compress_level": PNG_LEVEL}
    )
    return buf.getvalue()


def _draw_lumen_calcium(ax: Any, lab: np.ndarray) -> None:
    """Lumen border (struts count as lumen) and calcium, tinted and outlined."""
    h, w = lab.shape
    lumen = np.isin(lab, (LUMEN, STRUT)).astype(np.float32)
    calcium = (lab == CALCIUM).astype(np.float32)
    if lumen.any():
        ax.contour(lumen, levels=[0.5], colors=[LUMEN_COLOR], linewidths=1.6)
    if calcium.any():
        tint = np.zeros((h, w, 4), dtype=np.float32)
        tint[calcium > 0] = (1.0, 0.62, 0.11, 0.35)
        ax.imshow(tint, interpolation="nearest")
        ax.contour(calcium, levels=[0.5], colors=[CALCIUM_COLOR], linewidths=1.4)


def _draw_struts(
    ax: Any,
    struts: Sequence[Mapping[str, Any]],
    row: Mapping[str, Any],
    ps: float,
    c: tuple[float, float],
    min_struts: int | None,
) -> None:
    """Struts from the measurement table (offsets in mm from the catheter centre ``c``),
    malapposed ones larger, and the stent contour through them about the lumen centroid;
    ``min_struts`` None: a frame outside the stented segment, struts hollow grey alone."""
    cy, cx = c
    ys = np.array([float(s["y_mm"]) for s in struts]) / ps + cy
    xs = np.array([float(s["x_mm"]) for s in struts]) / ps + cx
    if min_struts is None:
        ax.scatter(xs, ys, s=30, facecolors="none", edgecolors=OUTSIDE_COLOR, lw=1.2, zorder=5)
        return
    mal = np.array([bool(int(s.get("malapposed") or 0)) for s in struts])
    lc_y, lc_x = _num(row.get("lumen_centroid_y_mm")), _num(row.get("lumen_centroid_x_mm"))
    centre = np.array([cy + (lc_y or 0.0) / ps, cx + (lc_x or 0.0) / ps])
    if len(xs) >= min_struts:
        spline = _stent_spline(np.stack([ys, xs], axis=1), centre)
        if spline is not None:
            ax.plot(spline[:, 1], spline[:, 0], color=STENT_COLOR, lw=1.4, ls="--")
    ax.scatter(
        xs[~mal], ys[~mal], s=14, c=APPOSED_COLOR, edgecolors="black", linewidths=0.5, zorder=5
    )
    if mal.any():
        ax.scatter(
            xs[mal], ys[mal], s=46, c=MALAPPOSED_COLOR, edgecolors="white", linewidths=1.0, zorder=6
        )


def _key_numbers(row: Mapping[str, Any], stented: bool = True) -> list[str]:
    """The frame's key numbers for the header line (stent and malapposition only on a frame of
    the stented segment)."""
    parts = []
    la = _num(row.get("lumen_area_mm2"))
    if la is not None:
        parts.append(f"Lumen {la:.2f} mm²")
    arc = _num(row.get("calcium_arc_deg"))
    if arc:
        thick = _num(row.get("calcium_max_thickness_mm"))
        parts.append(f"Ca arc {arc:.0f}°" + (f", {thick:.2f} mm thick" if thick else ""))
    if not stented:
        n = _num(row.get("n_struts"))
        return parts + ([f"{int(n)} strut(s) outside the stent"] if n else []) + _plaque_text(row)
    sa = _num(row.get("stent_area_mm2"))
    if sa:
        parts.append(f"Stent {sa:.2f} mm²")
    nm = _num(row.get("n_malapposed"))
    mm = _num(row.get("max_malapposition_mm"))
    if nm and mm is not None:
        parts.append(f"Malapposed {int(nm)} (max {mm:.2f} mm)")
    return parts + _plaque_text(row)


def _legend(fig: Any, plaque: bool, outside: bool = False) -> None:
    """The legend under the frame; ``outside``: a frame outside the stented segment, whose
    struts are drawn hollow grey (no stent contour, no malapposed struts)."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=LUMEN_COLOR, lw=2, label="lumen"),
        Line2D([], [], color=CALCIUM_COLOR, lw=2, label="calcium"),
        Line2D([], [], color="white", lw=1.6, marker="o", ms=3, label="max thickness"),
    ]
    if outside:
        handles.append(
            Line2D(
                [], [], marker="o", ls="", mfc="none", mec=OUTSIDE_COLOR, label="outside the stent"
            )
        )
    else:
        handles += [
            Line2D([], [], color=STENT_COLOR, lw=2, ls="--", label="stent"),
            Line2D(
                [], [], marker="o", ls="", color=APPOSED_COLOR, mec="black", label="strut"
            ),
            Line2D(
                [], [], marker="o", ls="", color=MALAPPOSED_COLOR, mec="white", ms=8,
                label="malapposed strut",
            ),
        ]  # fmt: skip
    if plaque:
        handles.append(Line2D([], [], color=LIPID_COLOR, lw=4, label="lipid"))
        handles.append(Line2D([], [], color=CAP_COLOR, lw=2, label="fibrous cap"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=4,
        frameon=False,
        fontsize=9,
        labelcolor="white",
        bbox_to_anchor=(0.5, 0.0),
        handletextpad=0.3,
        columnspacing=1.0,
    )


def _plaque_text(row: Mapping[str, Any]) -> list[str]:
    arc, cap = _num(row.get("lipid_arc_deg")), _num(row.get("cap_min_thickness_um"))
    out = [f"Lipid arc {arc:.0f}°"] if arc else []
    if cap is not None:
        out.append(f"min cap {cap:.0f} µm" + (" · TCFA" if _num(row.get("tcfa")) else ""))
    return out


def _draw_plaque(ax: Any, lab: np.ndarray, ps: float, c: tuple[float, float], row: Any) -> bool:
    """Lipid tinted, fibrous cap outlined, and a marker on the thinnest cap's ray where the
    lipid core starts (ray from the lumen centroid at ``cap_min_angle_deg``)."""
    lipid, cap = lab == LIPID, lab == FIBROUS_CAP
    if not (lipid.any() or cap.any()):
        return False
    tint = np.zeros((*lab.shape, 4), dtype=np.float32)
    tint[lipid] = (1.0, 0.88, 0.3, 0.35)
    ax.imshow(tint, interpolation="nearest")
    if cap.any():
        ax.contour(cap.astype(np.float32), levels=[0.5], colors=[CAP_COLOR], linewidths=1.2)
    hits = ray_hits(lipid, ps, c, row, "cap_min_angle_deg")
    if hits is not None:
        (y0, x0), (ys, xs) = hits
        ax.plot([x0, xs[0]], [y0, ys[0]], color=CAP_COLOR, lw=0.8, ls=":")
        ax.scatter([xs[0]], [ys[0]], s=60, marker="x", c=CAP_COLOR, zorder=7)
    return True


def ray_hits(
    mask: np.ndarray, ps: float, c: tuple[float, float], row: Mapping[str, Any], angle_key: str
) -> tuple[tuple[float, float], tuple[np.ndarray, np.ndarray]] | None:
    """The lumen centroid (y, x) pixel and the pixels of ``mask`` on the ray from it at the
    frame row's ``angle_key`` (degrees, as the geometry measures it), nearest first; None
    without an angle or a hit."""
    ang = _num(row.get(angle_key))
    if ang is None:
        return None
    y0 = c[0] + (_num(row.get("lumen_centroid_y_mm")) or 0.0) / ps
    x0 = c[1] + (_num(row.get("lumen_centroid_x_mm")) or 0.0) / ps
    t = np.arange(0, max(mask.shape), 0.5)
    ys = np.rint(y0 + t * math.sin(math.radians(ang))).astype(int)
    xs = np.rint(x0 + t * math.cos(math.radians(ang))).astype(int)
    ok = (ys >= 0) & (ys < mask.shape[0]) & (xs >= 0) & (xs < mask.shape[1])
    ys, xs = ys[ok], xs[ok]
    hit = mask[ys, xs]
    return ((y0, x0), (ys[hit], xs[hit])) if hit.any() else None


def longest_stretch(ys: np.ndarray, xs: np.ndarray) -> tuple[list[int], list[int]]:
    """First and last pixel (ys, xs) of the longest gap-free stretch of a ray's hit pixels,
    nearest first (a ray through two calcium patches, or a hole, has several)."""
    step = np.maximum(np.abs(np.diff(ys)), np.abs(np.diff(xs)))  # > 1 pixel: a gap
    k = max(np.split(np.arange(len(ys)), np.flatnonzero(step > 1) + 1), key=len)
    return [int(ys[k[0]]), int(ys[k[-1]])], [int(xs[k[0]]), int(xs[k[-1]])]


def thickness_caliper(
    lab: np.ndarray, ps: float, c: tuple[float, float], row: Mapping[str, Any]
) -> tuple[list[int], list[int]] | None:
    """End pixels (ys, xs) of the caliper across the calcium of a Cartesian label frame on the
    ray where the row's maximum calcium thickness is measured (``calcium_max_thickness_angle_deg``
    from the lumen centroid; ``c``: the catheter pixel); None without one."""
    hits = ray_hits(lab == CALCIUM, ps, c, row, "calcium_max_thickness_angle_deg")
    return None if hits is None else longest_stretch(*hits[1])


def _draw_thickness(ax: Any, lab: np.ndarray, ps: float, c: tuple[float, float], row: Any) -> None:
    """The caliper (:func:`thickness_caliper`): where the thickness in the header comes from."""
    ends = thickness_caliper(lab, ps, c, row)
    if ends is None:
        return
    ends_y, ends_x = ends
    ax.plot(ends_x, ends_y, color="white", lw=1.6, solid_capstyle="butt")
    ax.scatter(ends_x, ends_y, s=14, c="white", marker="o", zorder=7)


def overlay_jobs(
    pullback: Any,
    labels: np.ndarray,
    frames: Sequence[Mapping[str, Any]],
    struts: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    *,
    requested: Any = "auto",
    min_struts: int = 3,
) -> list[dict[str, Any]]:
    """Everything :func:`render_overlay` needs for each chosen frame, as plain picklable values
    (one image and one label frame each), so that rendering can run in another process."""
    by_frame = {int(r["frame"]): r for r in frames}
    jobs = []
    for frame, reason in choose_frames(frames, summary, requested):
        jobs.append(
            {
                "image": np.asarray(pullback.read(frame, frame + 1)[0]),
                "labels": np.ascontiguousarray(labels[frame]),
                "space": pullback.space,
                "pixel_spacing_mm": pullback.pixel_spacing_mm,
                "frame_spacing_mm": pullback.frame_spacing_mm,
                "catheter_center": pullback.catheter_center,
                "frame": frame,
                "reason": reason,
                "frame_row": by_frame.get(frame),
                "struts": [s for s in struts if int(s["frame"]) == frame],
                "min_struts": min_struts,
                "stented": in_stent(frame, summary.get("stent")),
            }
        )
    return jobs


def write_overlay_jobs(
    out_dir: Path, jobs: Sequence[Mapping[str, Any]], size: int = 512
) -> list[dict[str, Any]]:
    """Render and write ``overlays/frame_NNNN.png`` for each job; returns [{frame, reason, path}]."""
    written = []
    for job in jobs:
        kw = dict(job)
        png = render_overlay(kw.pop("image"), kw.pop("labels"), size=size, **kw)
        path = Path(out_dir) / "overlays" / f"frame_{job['frame']:04d}.png"
        atomic.write_bytes(path, png)
        written.append({"frame": job["frame"], "reason": job["reason"], "path": path})
    return written
