"""Per-pullback summary from per-frame and per-strut tables (``summary.json``).

:func:`summarize` turns the rows of ``frames.csv`` / ``struts.csv`` (dicts keyed by
:data:`octseg.geometry.tables.FRAME_COLUMNS` / ``STRUT_COLUMNS``; ``None`` where not applicable)
into the summary dict: MLA, calcium lesions (grouping, score, kind, risk flags), the stent
(segment, MSA, references, expansion, malapposition) and lipid lesions (lipid index, minimal
cap thickness, TCFA). Definitions: ``docs/metrics.md``. The
geometry module and the synthetic generator's ground truth both use this function.

This is plain Python bookkeeping over a handful of lesions; the per-pixel work happens in
:mod:`octseg.geometry`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from octseg.geometry.tables import LESION_KEYS, LIPID_LESION_KEYS, STENT_KEYS

Row = Mapping[str, Any]


def _num(value: Any) -> float | None:
    """A finite float, or None for blanks / NaN / missing."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value) if value is not None else False


def bridged_runs(
    frames: Sequence[int], flags: Sequence[bool], max_gap: int
) -> list[tuple[int, int]]:
    """Index ranges [i, j] (into ``frames``) of runs of flagged rows, bridging up to ``max_gap``
    consecutive unflagged rows between two flagged ones."""
    hits = [i for i, f in enumerate(flags) if f]
    runs: list[tuple[int, int]] = []
    for i in hits:
        if runs and i - runs[-1][1] - 1 <= max_gap:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _weights(frames: Sequence[int], i0: int, i1: int) -> list[int]:
    """Pullback frames from each label frame i0..i1 to the next one (1 for the last)."""
    return [frames[i + 1] - frames[i] if i < i1 else 1 for i in range(i0, i1 + 1)]


def _settings(settings: Any) -> Any:
    if settings is None:
        from octseg.geometry.settings import GeometrySettings

        return GeometrySettings()
    if isinstance(settings, Mapping):
        from octseg.geometry.settings import GeometrySettings

        return GeometrySettings.from_dict(settings)
    return settings


def _sorted_rows(frames: Iterable[Row]) -> list[Row]:
    rows = list(frames)
    for r in rows:
        if _num(r.get("frame")) is None:
            raise ValueError(f"frame row without a frame number: {dict(r)!r}")
    rows.sort(key=lambda r: int(r["frame"]))
    nums = [int(r["frame"]) for r in rows]
    if len(set(nums)) != len(nums):
        raise ValueError("frame rows repeat a frame number")
    return rows


def _lesions(rows: list[Row], fs: float, s: Any) -> list[dict[str, Any]]:
    """Calcium lesions: runs of label frames with calcium, gaps of ``max_gap_frames`` bridged."""
    frames = [int(r["frame"]) for r in rows]
    area = [_num(r.get("calcium_area_mm2")) for r in rows]
    arc = [_num(r.get("calcium_arc_deg")) for r in rows]
    has = [(a is not None and a > 0) or (c is not None and c > 0) for a, c in zip(area, arc)]
    return [
        _calcium_lesion(rows, frames, area, arc, i0, i1, fs, s)
        for i0, i1 in bridged_runs(frames, has, s.max_gap_frames)
    ]


def _calcium_lesion(
    rows: list[Row], frames: list[int], area: list, arc: list, i0: int, i1: int, fs: float, s: Any
) -> dict[str, Any]:
    """The lesion of label frames ``i0..i1``: extent, maxima, volume, score, kind, risk flags."""
    sel = range(i0, i1 + 1)
    start, end = frames[i0], frames[i1]
    length = (end - start + 1) * fs
    arcs = [arc[i] for i in sel if arc[i] is not None]
    thick = [_num(rows[i].get("calcium_max_thickness_mm")) for i in sel]
    thick = [t for t in thick if t is not None]
    depth = [_num(rows[i].get("calcium_min_depth_mm")) for i in sel]
    depth = [d for d in depth if d is not None]
    w = _weights(frames, i0, i1)
    volume = sum((area[i] or 0.0) * fs * wi for i, wi in zip(sel, w))
    max_arc = max(arcs) if arcs else None
    max_thick = max(thick) if thick else None
    spotty = (max_arc or 0.0) < s.spotty_max_arc_deg and length < s.spotty_max_length_mm
    lesion = {
        "start_frame": start,
        "end_frame": end,
        "length_mm": length,
        "max_arc_deg": max_arc,
        "max_thickness_mm": max_thick,
        "min_depth_mm": min(depth) if depth else None,
        "volume_mm3": volume,
        "calcium_score": _calcium_score(max_arc, max_thick, length, s),
        "kind": "spotty" if spotty else "macro",
        "risk_flags": _risk_flags(max_arc, max_thick, length, s),
        "score_borderline": score_borderline(max_arc, max_thick, length, s),
    }
    assert list(lesion) == LESION_KEYS
    return lesion


def _calcium_score(max_arc: float | None, max_thick: float | None, length: float, s: Any) -> int:
    """Calcium score: 2 for the arc, 1 for the thickness, 1 for the length over their limits."""
    score = 0
    if max_arc is not None and max_arc > s.score_arc_deg:
        score += 2
    if max_thick is not None and max_thick > s.score_thickness_mm:
        score += 1
    if length > s.score_length_mm:
        score += 1
    return score


def score_borderline(
    max_arc: float | None, max_thick: float | None, length: float | None, s: Any
) -> list[str]:
    """The score's criteria (``arc``, ``thickness``, ``length``) whose value lies within its
    margin (``score_margin_*``; 0: never) of its cut-off: a small measurement error there
    changes the score, so a reviewer checks those first."""
    rules = (
        ("arc", max_arc, s.score_arc_deg, s.score_margin_arc_deg),
        ("thickness", max_thick, s.score_thickness_mm, s.score_margin_thickness_mm),
        ("length", length, s.score_length_mm, s.score_margin_length_mm),
    )
    # inclusive, up to float rounding (27 frames of 0.2 mm are 5.4000000000000004 mm)
    return [n for n, v, cut, m in rules if v is not None and m > 0 and abs(v - cut) <= m + 1e-9]


def _risk_flags(max_arc: float | None, max_thick: float | None, length: float, s: Any) -> list:
    flags = []
    if max_arc is not None and max_arc > s.risk_arc_deg:
        flags.append("arc_gt_270")
    if max_thick is not None and max_thick > s.risk_thickness_mm:
        flags.append("thickness_gt_1mm")
    if length > s.risk_length_mm:
        flags.append("length_gt_15mm")
    return flags


def _lipid_lesions(rows: list[Row], fs: float, s: Any) -> list[dict[str, Any]]:
    """Runs of label frames with lipid (arc > 0), gaps of ``lipid_max_gap_frames`` bridged."""
    frames = [int(r["frame"]) for r in rows]
    arc = [_num(r.get("lipid_arc_deg")) for r in rows]
    cap = [_num(r.get("cap_min_thickness_um")) for r in rows]
    out = []
    for i0, i1 in bridged_runs(
        frames, [a is not None and a > 0 for a in arc], s.lipid_max_gap_frames
    ):
        sel = [i for i in range(i0, i1 + 1) if arc[i] is not None and arc[i] > 0]
        length = (frames[i1] - frames[i0] + 1) * fs
        mean_arc = sum(arc[i] for i in sel) / len(sel)
        caps = [(cap[i], frames[i]) for i in sel if cap[i] is not None]
        min_cap, min_frame = min(caps) if caps else (None, None)
        n_tcfa = sum(_truthy(rows[i].get("tcfa")) for i in sel)
        lesion = {
            "start_frame": frames[i0],
            "end_frame": frames[i1],
            "length_mm": length,
            "max_lipid_arc_deg": max(arc[i] for i in sel),
            "mean_lipid_arc_deg": mean_arc,
            "lipid_index": mean_arc * length,
            "min_cap_thickness_um": min_cap,
            "min_cap_frame": min_frame,
            "n_tcfa_frames": n_tcfa,
            "tcfa": n_tcfa > 0,
        }
        assert list(lesion) == LIPID_LESION_KEYS
        out.append(lesion)
    return out


def in_stent(frame: Any, stent: Any) -> bool:
    """Whether ``frame`` lies in the pullback's stented segment (the summary's ``stent``, None
    when there is none; one per pullback, the longest run of frames with ``min_struts`` struts or
    more). Its malapposition counts only the segment's struts. A lone strut per frame outside it
    is most often a bright edge the model took for a strut (a calcified nodule's rim, for
    instance); a second, shorter stent's struts lie outside it too."""
    return bool(stent) and int(stent["start_frame"]) <= int(frame) <= int(stent["end_frame"])


def _stent(rows: list[Row], struts: list[Row], fs: float, s: Any) -> dict[str, Any] | None:
    """The stent (one per pullback: the longest stented segment), None without one."""
    frames = [int(r["frame"]) for r in rows]
    n_struts = [_num(r.get("n_struts")) or 0 for r in rows]
    stented = [n >= s.min_struts for n in n_struts]
    runs = bridged_runs(frames, stented, s.stent_max_gap_frames)
    if not runs:
        return None

    # one stent per pullback: the longest segment (then the one with the most struts)
    def key(run: tuple[int, int]) -> tuple[int, float]:
        return (frames[run[1]] - frames[run[0]], sum(n_struts[run[0] : run[1] + 1]))

    i0, i1 = max(runs, key=key)
    start, end = frames[i0], frames[i1]
    areas = [(_num(rows[i].get("stent_area_mm2")), frames[i]) for i in range(i0, i1 + 1)]
    areas = [(a, f) for (a, f), st in zip(areas, stented[i0 : i1 + 1]) if st and a is not None]
    msa, msa_frame = min(areas) if areas else (None, None)
    proximal, distal = _references(rows, start, end, fs, s)
    expansion, underexpanded = _expansion(msa, proximal, distal, s)
    stent = {
        "start_frame": start,
        "end_frame": end,
        "length_mm": (end - start + 1) * fs,
        "msa_mm2": msa,
        "msa_frame": msa_frame,
        "reference_proximal_area_mm2": proximal,
        "reference_distal_area_mm2": distal,
        "expansion": expansion,
        "underexpanded": underexpanded,
        **_malapposition(rows, struts, frames, (i0, i1), fs, s),
    }
    assert list(stent) == STENT_KEYS
    return stent


def _references(
    rows: list[Row], start: int, end: int, fs: float, s: Any
) -> tuple[float | None, float | None]:
    """(proximal, distal) reference lumen areas: the largest lumen area within
    ``reference_window_mm`` outside each edge of the stent."""
    lumen = [(_num(r.get("lumen_area_mm2")), int(r["frame"])) for r in rows]
    window = s.reference_window_mm
    low = [a for a, f in lumen if a is not None and f < start and (start - f) * fs <= window]
    high = [a for a, f in lumen if a is not None and f > end and (f - end) * fs <= window]
    low_ref, high_ref = (max(low) if low else None), (max(high) if high else None)
    distal, proximal = (low_ref, high_ref) if s.frame0_is_distal else (high_ref, low_ref)
    return proximal, distal


def _expansion(
    msa: float | None, proximal: float | None, distal: float | None, s: Any
) -> tuple[float | None, bool | None]:
    """MSA over the mean reference area, and whether the stent is underexpanded."""
    refs = [r for r in (proximal, distal) if r is not None and r > 0]
    expansion = msa / (sum(refs) / len(refs)) if (refs and msa is not None) else None
    if msa is None:
        return expansion, None
    underexpanded = msa < s.underexpansion_msa_mm2 or (
        expansion is not None and expansion < s.underexpansion_ratio
    )
    return expansion, underexpanded


def _malapposition(
    rows: list[Row], struts: list[Row], frames: list[int], seg: tuple[int, int], fs: float, s: Any
) -> dict[str, Any]:
    """Strut counts and malapposition (largest distance, length, volume, significance) of the
    stent segment of label frames ``seg`` (i0, i1)."""
    i0, i1 = seg
    start, end = frames[i0], frames[i1]
    seg_struts = [t for t in struts if _num(t.get("frame")) is not None]
    seg_struts = [t for t in seg_struts if start <= int(t["frame"]) <= end]
    n_total = len(seg_struts)
    mal = [_truthy(t.get("malapposed")) for t in seg_struts]
    n_mal = sum(mal)
    dists = [_num(t.get("distance_mm")) for t in seg_struts]
    dists = [d for d in dists if d is not None]
    max_dist = max(dists) if dists else None
    mal_frames = {int(t["frame"]) for t, m in zip(seg_struts, mal) if m}
    mal_length = _longest_run(frames[i0 : i1 + 1], mal_frames) * fs
    w = _weights(frames, i0, i1)
    mal_volume = sum(
        (_num(rows[i].get("malapposition_area_mm2")) or 0.0) * fs * wi
        for i, wi in zip(range(i0, i1 + 1), w)
    )
    significant = (max_dist is not None and max_dist > s.significant_malapposition_mm) or (
        mal_length > s.significant_malapposition_length_mm
    )
    return {
        "n_struts": n_total,
        "n_malapposed": n_mal,
        "malapposed_percent": 100.0 * n_mal / n_total if n_total else None,
        "max_malapposition_mm": max_dist,
        "malapposition_length_mm": mal_length,
        "malapposition_volume_mm3": mal_volume,
        "significant_malapposition": bool(significant),
    }


def _longest_run(frames: Sequence[int], marked: set[int]) -> int:
    """Pullback frames spanned by the longest run of consecutive label ``frames`` in ``marked``."""
    best = 0
    run_start = None
    for f in frames:
        if f in marked:
            run_start = f if run_start is None else run_start
            best = max(best, f - run_start + 1)
        else:
            run_start = None
    return best


def summarize(
    frames: Iterable[Row],
    struts: Iterable[Row],
    frame_spacing_mm: float,
    settings: Any = None,
) -> dict[str, Any]:
    """The ``summary.json`` dict for one pullback (see ``docs/metrics.md``).

    ``frames``: one row per label frame (any order; ``frame`` is the pullback frame number).
    ``struts``: one row per strut. ``settings``: a :class:`GeometrySettings`, a mapping of its
    fields, or None for the defaults.
    """
    fs = _num(frame_spacing_mm)
    if fs is None or fs <= 0:
        raise ValueError(f"frame_spacing_mm must be a positive number, got {frame_spacing_mm!r}")
    s = _settings(settings)
    rows = _sorted_rows(frames)
    strut_rows = list(struts)

    lumen = [(_num(r.get("lumen_area_mm2")), int(r["frame"])) for r in rows]
    lumen = [(a, f) for a, f in lumen if a is not None and a > 0]
    mla, mla_frame = min(lumen) if lumen else (None, None)
    n_open = sum(1 for r in rows if (_num(r.get("lumen_open_percent")) or 0) > 0)
    return {
        "lumen": {"mla_mm2": mla, "mla_frame": mla_frame, "n_open_frames": n_open},
        "calcium_lesions": _lesions(rows, fs, s),
        "stent": _stent(rows, strut_rows, fs, s),
        "lipid_lesions": _lipid_lesions(rows, fs, s),
    }
