"""Pair automated with manual items: frames, lesions and struts. Unmatched items are kept
(as rows with one side empty) and counted, never dropped silently.

- Frames: by frame number; a manual row that gives only ``position_mm`` is paired with the
  automated frame nearest to ``position_mm / frame_spacing_mm``, within ``frame_tolerance``
  frames (default 0.5: the nearest frame, no further).
- Lesions: intervals ``[start_frame, end_frame]`` along the pullback (manual ``start_mm`` /
  ``end_mm`` converted with the frame spacing); pairs chosen greedily by largest overlap
  (intersection over union along the pullback), one to one, overlap >= ``min_overlap`` frames.
- Struts: within the same frame, one-to-one by minimum total distance (Hungarian assignment,
  ``scipy.optimize.linear_sum_assignment``), a pair counting only when the points lie within
  ``tolerance_mm``. Distance is Euclidean in ``x_mm``/``y_mm`` when both sides give them,
  otherwise the arc length ``r * |delta angle|`` at the lumen radius ``r`` of that frame
  (half the automated mean lumen diameter), or, where no radius is known, angle alone within
  ``angle_tolerance_deg``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from octseg.core.errors import MissingSpacingError


def frame_spacing(auto: Any, manual: Any, override: float | None = None) -> float | None:
    """Frame spacing (mm) for a pullback: the setting, else the automated side, else manual."""
    if override:
        return float(override)
    for pb in (auto, manual):
        if pb is not None and pb.frame_spacing_mm:
            return float(pb.frame_spacing_mm)
    return None


def _need_spacing(spacing: float | None, pid: str, what: str) -> float:
    if not spacing:
        raise MissingSpacingError(
            None,
            f"pullback {pid!r}: {what} are given in mm but the frame spacing is unknown "
            "(give frame_spacing_mm / --frame-spacing-mm, or automated results with position_mm)",
        )
    return spacing


# ----------------------------------------------------------------------------- frames
def match_frames(
    auto_rows: Sequence[dict[str, Any]],
    manual_rows: Sequence[dict[str, Any]],
    *,
    spacing: float | None,
    pid: str = "",
    frame_tolerance: float = 0.5,
) -> list[dict[str, Any]]:
    """Pairs ``{"frame", "auto": row | None, "manual": row | None}``, sorted by frame.

    Manual rows that give only ``position_mm`` are placed at ``position_mm / spacing``.
    """
    by_frame = {int(r["frame"]): r for r in auto_rows if r.get("frame") is not None}
    auto_frames = np.array(sorted(by_frame), dtype=float)
    used: set[int] = set()
    pairs: list[dict[str, Any]] = []
    for m in manual_rows:
        pos, hit = _place_manual_frame(m, by_frame, auto_frames, spacing, pid, frame_tolerance)
        if hit is not None and hit not in used:
            used.add(hit)
            pairs.append({"frame": hit, "auto": by_frame[hit], "manual": m})
        else:  # no automated frame, or a second manual row on it: unmatched
            pairs.append({"frame": int(round(pos)), "auto": None, "manual": m})
    for f, r in by_frame.items():
        if f not in used:
            pairs.append({"frame": f, "auto": r, "manual": None})
    pairs.sort(key=lambda p: (p["frame"], p["auto"] is None))
    return pairs


def _place_manual_frame(
    m: dict[str, Any],
    by_frame: dict[int, dict[str, Any]],
    auto_frames: np.ndarray,
    spacing: float | None,
    pid: str,
    frame_tolerance: float,
) -> tuple[float, int | None]:
    """Position (frames) of a manual frame row and the automated frame it falls on, if any: its
    own frame number, else the automated frame nearest ``position_mm / spacing`` within
    ``frame_tolerance``."""
    if m.get("frame") is not None:
        f = int(m["frame"])
        return float(f), (f if f in by_frame else None)
    pos = float(m["position_mm"]) / _need_spacing(spacing, pid, "manual frames")
    return pos, _nearest_frame(auto_frames, pos, frame_tolerance)


def _nearest_frame(auto_frames: np.ndarray, pos: float, frame_tolerance: float) -> int | None:
    if not auto_frames.size:
        return None
    j = int(np.argmin(np.abs(auto_frames - pos)))
    if abs(auto_frames[j] - pos) <= frame_tolerance + 1e-9:
        return int(auto_frames[j])
    return None


# ----------------------------------------------------------------------------- lesions
def lesion_interval(
    row: dict[str, Any], spacing: float | None, pid: str = ""
) -> tuple[float, float]:
    """``(start_frame, end_frame)`` of a lesion row, from frames or from mm."""
    if row.get("start_frame") is not None and row.get("end_frame") is not None:
        return float(row["start_frame"]), float(row["end_frame"])
    sp = _need_spacing(spacing, pid, "lesion positions")
    return float(row["start_mm"]) / sp, float(row["end_mm"]) / sp


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """Overlap (frames, inclusive ends) and IoU along the pullback."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0, 0.0
    union = max(a[1], b[1]) - min(a[0], b[0]) + 1
    return inter, inter / union


def match_lesions(
    auto_rows: Sequence[dict[str, Any]],
    manual_rows: Sequence[dict[str, Any]],
    *,
    spacing: float | None,
    pid: str = "",
    min_overlap: float = 1.0,
) -> list[dict[str, Any]]:
    """Pairs ``{"auto", "manual", "overlap_frames", "iou"}`` (one side None when unmatched)."""
    ai = [lesion_interval(r, spacing, pid) for r in auto_rows]
    mi = [lesion_interval(r, spacing, pid) for r in manual_rows]
    chosen = _greedy_lesion_pairs(ai, mi, min_overlap)
    pairs = [
        {"auto": auto_rows[i], "manual": manual_rows[j], "overlap_frames": ov, "iou": iou}
        for iou, ov, i, j in chosen
    ]
    ua = {i for _, _, i, _ in chosen}
    um = {j for _, _, _, j in chosen}
    pairs += [
        {"auto": r, "manual": None, "overlap_frames": 0.0, "iou": 0.0}
        for i, r in enumerate(auto_rows)
        if i not in ua
    ]
    pairs += [
        {"auto": None, "manual": r, "overlap_frames": 0.0, "iou": 0.0}
        for j, r in enumerate(manual_rows)
        if j not in um
    ]

    def start(p: dict[str, Any]) -> float:
        r = p["auto"] if p["auto"] is not None else p["manual"]
        return lesion_interval(r, spacing, pid)[0]

    pairs.sort(key=start)
    return pairs


def _greedy_lesion_pairs(
    ai: list[tuple[float, float]], mi: list[tuple[float, float]], min_overlap: float
) -> list[tuple[float, float, int, int]]:
    """``(iou, overlap, i, j)`` of the matched intervals ``ai[i]``, ``mi[j]``: every pair that
    overlaps by at least ``min_overlap`` frames, best IoU first (then longest overlap), each
    interval used once."""
    cand = []
    for i, a in enumerate(ai):
        for j, m in enumerate(mi):
            ov, iou = _overlap(a, m)
            if ov >= min_overlap and ov > 0:
                cand.append((iou, ov, i, j))
    cand.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
    ua: set[int] = set()
    um: set[int] = set()
    chosen = []
    for iou, ov, i, j in cand:
        if i in ua or j in um:
            continue
        ua.add(i)
        um.add(j)
        chosen.append((iou, ov, i, j))
    return chosen


# ----------------------------------------------------------------------------- struts
def _has_xy(r: dict[str, Any]) -> bool:
    return r.get("x_mm") is not None and r.get("y_mm") is not None


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(a[:, None] - b[None, :]) % 360.0
    return np.minimum(d, 360.0 - d)


def match_struts(
    auto_rows: Sequence[dict[str, Any]],
    manual_rows: Sequence[dict[str, Any]],
    *,
    tolerance_mm: float = 0.1,
    angle_tolerance_deg: float = 5.0,
    lumen_radius_mm: dict[int, float] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Pairs ``{"frame", "auto", "manual", "distance_mm" | "angle_diff_deg"}`` and counts
    ``{"tp", "fp", "fn", "by_xy", "by_arc", "by_angle"}``."""
    radius = lumen_radius_mm or {}
    by_frame_a, by_frame_m = _by_frame(auto_rows), _by_frame(manual_rows)
    pairs: list[dict[str, Any]] = []
    counts = {"tp": 0, "fp": 0, "fn": 0, "by_xy": 0, "by_arc": 0, "by_angle": 0}
    for f in sorted(set(by_frame_a) | set(by_frame_m)):
        pairs += _frame_strut_pairs(
            f,
            by_frame_a.get(f, []),
            by_frame_m.get(f, []),
            radius.get(f),
            (tolerance_mm, angle_tolerance_deg),
            counts,
        )
    return pairs, counts


def _by_frame(rows: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(int(r["frame"]), []).append(r)
    return out


def _frame_strut_pairs(
    f: int,
    A: list[dict[str, Any]],
    M: list[dict[str, Any]],
    radius: float | None,
    tolerances: tuple[float, float],
    counts: dict[str, int],
) -> list[dict[str, Any]]:
    """Pairs of one frame's struts: the matched ones, then each side's unmatched ones; adds them
    to ``counts``. ``tolerances``: (mm, degrees)."""
    pairs: list[dict[str, Any]] = []
    matched: list[tuple[int, int]] = []
    if A and M:
        cost, limit, mode = _strut_cost(A, M, radius, *tolerances)
        matched = _assign(cost, limit)
        measure = "angle_diff_deg" if mode == "by_angle" else "distance_mm"
        for i, j in matched:
            pairs.append(
                {
                    "frame": f,
                    "auto": A[i],
                    "manual": M[j],
                    "match": mode,
                    measure: float(cost[i, j]),
                }
            )
        counts[mode] += len(matched)
    alone_a = _unmatched(A, {i for i, _ in matched})
    alone_m = _unmatched(M, {j for _, j in matched})
    pairs += [{"frame": f, "auto": r, "manual": None, "match": None} for r in alone_a]
    pairs += [{"frame": f, "auto": None, "manual": r, "match": None} for r in alone_m]
    counts["tp"] += len(matched)
    counts["fp"] += len(alone_a)
    counts["fn"] += len(alone_m)
    return pairs


def _unmatched(rows: Sequence[dict[str, Any]], matched: set[int]) -> list[dict[str, Any]]:
    return [r for i, r in enumerate(rows) if i not in matched]


def _strut_cost(
    A: Sequence[dict[str, Any]],
    M: Sequence[dict[str, Any]],
    radius: float | None,
    tolerance_mm: float,
    angle_tolerance_deg: float,
) -> tuple[np.ndarray, float, str]:
    """Cost matrix of one frame's struts, its limit and the kind of match: distance in mm
    (``by_xy``), else the arc on the lumen (``by_arc``, when the lumen radius is known), else
    the angle in degrees (``by_angle``)."""
    if all(_has_xy(r) for r in A) and all(_has_xy(r) for r in M):
        pa = np.array([[r["x_mm"], r["y_mm"]] for r in A], dtype=float)
        pm = np.array([[r["x_mm"], r["y_mm"]] for r in M], dtype=float)
        return np.linalg.norm(pa[:, None, :] - pm[None, :, :], axis=-1), tolerance_mm, "by_xy"
    aa = np.array([_angle(r) for r in A], dtype=float)
    am = np.array([_angle(r) for r in M], dtype=float)
    dang = _angle_diff(aa, am)
    if radius is not None and math.isfinite(radius) and radius > 0:
        return np.deg2rad(dang) * radius, tolerance_mm, "by_arc"
    return dang, angle_tolerance_deg, "by_angle"


def _assign(cost: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """Hungarian assignment (``scipy.optimize.linear_sum_assignment``) of the pairs within
    ``limit``; pairs beyond it cost more than any pair within."""
    from scipy.optimize import linear_sum_assignment

    big = np.where(cost <= limit, cost, limit * 10 + cost.max() + 1.0)
    ia, im = linear_sum_assignment(big)
    return [(int(i), int(j)) for i, j in zip(ia, im) if cost[i, j] <= limit + 1e-12]


def _angle(r: dict[str, Any]) -> float:
    if r.get("angle_deg") is not None:
        return float(r["angle_deg"]) % 360.0
    # x/y are about the catheter centre, angles about the lumen centroid; without the angle
    # the catheter-centred angle is the best available stand-in
    return math.degrees(math.atan2(float(r["y_mm"]), float(r["x_mm"]))) % 360.0
