"""The evaluation job: read both sides, match, compute every statistic, write every output.

:func:`evaluate` is what ``evaluate.py`` (Hydra) and ``octseg evaluate`` (argparse) call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError
from octseg.evaluate import angles, by_pullback, matching, segmentation, stats
from octseg.evaluate.inputs import (
    FRAME_FLAGS,
    FRAME_MEASURES,
    LESION_MEASURES,
    RISK_FLAGS,
    PullbackData,
    load_auto,
    load_manual,
    model_classes,
    refresh_stale_tables,
    with_progress,
)
from octseg.evaluate.settings import EvaluationSettings
from octseg.geometry.summary import score_borderline

#: per-pullback continuous measures: (name, path into summary.json)
PULLBACK_MEASURES: dict[str, tuple[str, str]] = {
    "mla_mm2": ("lumen", "mla_mm2"),
    "msa_mm2": ("stent", "msa_mm2"),
    "expansion": ("stent", "expansion"),
    "stent_length_mm": ("stent", "length_mm"),
    "malapposed_percent": ("stent", "malapposed_percent"),
    "max_malapposition_mm": ("stent", "max_malapposition_mm"),
    "malapposition_length_mm": ("stent", "malapposition_length_mm"),
    "malapposition_volume_mm3": ("stent", "malapposition_volume_mm3"),
}
PULLBACK_FLAGS: dict[str, tuple[str, str]] = {
    "underexpanded": ("stent", "underexpanded"),
    "significant_malapposition": ("stent", "significant_malapposition"),
}
UNITS = {
    "mm2": "mm²",
    "mm3": "mm³",
    "mm": "mm",
    "um": "µm",
    "deg": "°",
    "percent": "%",
}


def unit_of(name: str) -> str:
    for suffix, unit in UNITS.items():
        if name.endswith("_" + suffix):
            return unit
    return ""


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: the metrics dict and the row tables written as CSV."""

    metrics: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers
def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None if v is None else float(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flags(row: dict[str, Any], g: Any) -> dict[str, bool | None]:
    """Risk flags of a lesion row: from its ``risk_flags`` list, else from its values."""
    if isinstance(row.get("risk_flags"), list):
        return {f: f in row["risk_flags"] for f in RISK_FLAGS}
    rules = {
        "arc_gt_270": ("max_arc_deg", g.risk_arc_deg),
        "thickness_gt_1mm": ("max_thickness_mm", g.risk_thickness_mm),
        "length_gt_15mm": ("length_mm", g.risk_length_mm),
    }
    out: dict[str, bool | None] = {}
    for flag, (col, thr) in rules.items():
        v = _num(row.get(col))
        out[flag] = None if v is None else v > thr
    return out


def _borderline(row: dict[str, Any] | None, g: Any) -> str | None:
    """The automated lesion's ``score_borderline`` (criteria near the score's cut-offs) as
    ``arc;thickness`` text: from its list, else from its values (outputs written before it)."""
    if row is None:
        return None
    near = row.get("score_borderline")
    if not isinstance(near, list):
        vals = [_num(row.get(c)) for c in ("max_arc_deg", "max_thickness_mm", "length_mm")]
        near = score_borderline(*vals, g)
    return ";".join(map(str, near))


def _get(summary: dict[str, Any] | None, path: tuple[str, str]) -> Any:
    if not summary:
        return None
    part = summary.get(path[0])
    if not isinstance(part, dict):
        return None
    return part.get(path[1])


# ----------------------------------------------------------------------------- the job
@dataclass
class _Rows:
    """What pairing the pullbacks collects: the row tables and the counts beside them."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    lesions: list[dict[str, Any]] = field(default_factory=list)
    struts: list[dict[str, Any]] = field(default_factory=list)
    segmentation: list[dict[str, Any]] = field(default_factory=list)
    pullbacks: list[dict[str, Any]] = field(default_factory=list)
    frame_count: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("manual", "auto", "matched", "manual_unmatched", "auto_unmatched"), 0
        )
    )
    strut_counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("tp", "fp", "fn", "by_xy", "by_arc", "by_angle"), 0)
    )
    have: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("frames", "lesions", "struts", "labels"), 0)
    )
    #: automated struts in frames the manual reader did not analyse
    strut_outside: int = 0
    #: pullbacks whose manual frames carry a yes/no flag (TCFA)
    flag_pids: set[str] = field(default_factory=set)


@dataclass
class _Sides:
    """Both sides read, and which pullback ids are on both, one or the other."""

    auto: dict[str, PullbackData]
    manual: dict[str, PullbackData]
    common: list[str]
    auto_only: list[str]
    manual_only: list[str]


def evaluate(
    auto: str | Path,
    manual: str | Path,
    out: str | Path | None,
    settings: EvaluationSettings | dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Evaluation:
    """Compare automated results with manual measurements; write outputs to ``out`` (if given).

    ``extra``: additional top-level entries for ``metrics.json`` (e.g. the self-check's noise).
    """
    s = (
        settings
        if isinstance(settings, EvaluationSettings)
        else EvaluationSettings.from_dict(settings)
    )
    s.validate()
    s = _scored_classes(auto, s)
    warnings_: list[str] = []
    sides = read_sides(auto, manual, s, warnings_)
    rows = pair_pullbacks(sides, s)
    metrics = {
        **_header(auto, manual, s, sides, rows, warnings_),
        **(extra or {}),
        **statistics(rows, s),
    }
    metrics["verdict"] = verdict_rows(metrics)
    result = Evaluation(metrics=metrics, tables=_tables(rows))
    if out is not None:
        from octseg.report import evaluation as report

        result.paths = report.write_outputs(Path(out), result, plots=s.plots)
    return result


def _scored_classes(auto: str | Path, s: EvaluationSettings) -> EvaluationSettings:
    """With the default class list, the plaque classes are scored only when the model that
    wrote ``auto`` predicts them (its ``manifest.json``): a lumen/calcium/stent model is not
    scored on the lipid a reference labels."""
    from octseg.core.classes import PLAQUE_CLASSES

    model = model_classes(auto)
    if s.classes != segmentation.DEFAULT_CLASSES or model is None:
        return s
    keep = tuple(c for c in s.classes if c not in PLAQUE_CLASSES or c in model)
    return dataclasses.replace(s, classes=keep)


def read_sides(
    auto: str | Path, manual: str | Path, s: EvaluationSettings, warnings_: list[str]
) -> _Sides:
    """Read the automated and the manual side; an error when no pullback id is on both."""
    geometry = s.geometry_settings()
    auto_pbs = load_auto(
        auto,
        source=s.auto_source,
        geometry=geometry,
        device=s.device,
        progress=s.progress,
    )
    manual_pbs = load_manual(
        manual,
        use_tables=s.manual_tables,
        warnings=warnings_,
        geometry=geometry,
        device=s.device,
        progress=s.progress,
    )
    for side, pbs in (("automated", auto_pbs), ("manual", manual_pbs)):
        refresh_stale_tables(pbs, side, warnings_, geometry, s.device, s.progress)
    sides = _Sides(
        auto_pbs,
        manual_pbs,
        common=sorted(set(auto_pbs) & set(manual_pbs)),
        auto_only=sorted(set(auto_pbs) - set(manual_pbs)),
        manual_only=sorted(set(manual_pbs) - set(auto_pbs)),
    )
    if not sides.common:
        raise InputError(
            manual,
            f"no pullback id is on both sides (automated: {', '.join(sorted(auto_pbs)) or '-'}; "
            f"manual: {', '.join(sorted(manual_pbs)) or '-'})",
        )
    if sides.manual_only:
        warnings_.append(
            f"{len(sides.manual_only)} pullback(s) have manual measurements but no automated "
            "results: " + ", ".join(sides.manual_only)
        )
    return sides


def pair_pullbacks(sides: _Sides, s: EvaluationSettings) -> _Rows:
    """Pair frames, lesions, struts, label maps and summaries of every common pullback."""
    rows = _Rows()
    g = s.geometry_settings()
    for pid in with_progress(sides.common, "evaluating", s.progress):
        _pair_pullback(pid, sides.auto[pid], sides.manual[pid], s, g, rows)
    rows.segmentation = segmentation.drop_unlabelled_optional(rows.segmentation)
    _count_unmatched_frames(rows)
    return rows


def _on_both_sides(a: PullbackData, m: PullbackData, what: str) -> bool:
    """Whether both sides of a pullback give ``what`` (frames, lesions, struts, labels...)."""
    return getattr(a, what) is not None and getattr(m, what) is not None


def _pair_pullback(
    pid: str, a: PullbackData, m: PullbackData, s: EvaluationSettings, g: Any, rows: _Rows
) -> None:
    """Every level of one pullback that both sides give; frames first (strut pairing reads
    which frames the manual reader analysed from the frame rows)."""
    spacing = matching.frame_spacing(a, m, s.frame_spacing_mm)
    if _on_both_sides(a, m, "frames"):
        pair_frames(pid, a, m, spacing, s, rows)
    if _on_both_sides(a, m, "lesions"):
        _pair_lesions(pid, a, m, spacing, s, g, rows)
    if _on_both_sides(a, m, "struts"):
        pair_struts(pid, a, m, s, rows)
    if s.segmentation and _on_both_sides(a, m, "labels"):
        _pair_labels(pid, a, m, s, rows)
    if _on_both_sides(a, m, "summary"):
        rows.pullbacks.append(_pullback_row(pid, a, m))


def _pair_lesions(
    pid: str,
    a: PullbackData,
    m: PullbackData,
    spacing: float | None,
    s: EvaluationSettings,
    g: Any,
    rows: _Rows,
) -> None:
    """Lesion rows of one pullback (matched by frame overlap, automated only, manual only)."""
    rows.have["lesions"] += 1
    for p in matching.match_lesions(
        a.lesions,
        m.lesions,
        spacing=spacing,
        pid=pid,
        min_overlap=s.lesion_min_overlap_frames,
    ):
        rows.lesions.append(_lesion_row(pid, p, spacing, g))


def _pair_labels(
    pid: str, a: PullbackData, m: PullbackData, s: EvaluationSettings, rows: _Rows
) -> None:
    """Per-frame overlap rows of the label maps of one pullback."""
    rows.have["labels"] += 1
    rows.segmentation.extend(
        segmentation.compare_labels(
            pid, a.labels, m.labels, s.classes, auto_path=a.source.get("labels")
        )
    )


def _count_unmatched_frames(rows: _Rows) -> None:
    rows.frame_count["manual_unmatched"] = sum(r["match"] == "manual_only" for r in rows.frames)
    rows.frame_count["auto_unmatched"] = sum(r["match"] == "auto_only" for r in rows.frames)


def _match_status(ar: dict[str, Any] | None, mr: dict[str, Any] | None) -> str:
    """``matched`` when both sides give the item, else the side that alone gives it."""
    if ar and mr:
        return "matched"
    return "auto_only" if ar else "manual_only"


def _raw(r: dict[str, Any] | None, c: str) -> Any:
    return r.get(c) if r else None


def _numeric(r: dict[str, Any] | None, c: str) -> float | None:
    return _num(r.get(c)) if r else None


def _side_by_side(
    ar: dict[str, Any] | None,
    mr: dict[str, Any] | None,
    columns: Any,
    read: Callable[[dict[str, Any] | None, str], Any] = _raw,
) -> dict[str, Any]:
    """``auto_<c>`` then ``manual_<c>`` for each column, in that order (the CSV column order);
    ``None`` for a side without the item."""
    row: dict[str, Any] = {}
    for c in columns:
        row[f"auto_{c}"] = read(ar, c)
        row[f"manual_{c}"] = read(mr, c)
    return row


def pair_frames(
    pid: str,
    a: PullbackData,
    m: PullbackData,
    spacing: float | None,
    s: EvaluationSettings,
    rows: _Rows,
) -> None:
    """Frame rows of one pullback (matched, automated only, manual only) and their counts."""
    rows.have["frames"] += 1
    pairs = matching.match_frames(
        a.frames, m.frames, spacing=spacing, pid=pid, frame_tolerance=s.frame_tolerance
    )
    rows.frames.extend(_frame_row(pid, p) for p in pairs)
    if _gives_frame_flags(m.frames):
        rows.flag_pids.add(pid)
    _count_frames(rows.frame_count, pairs)


def _frame_row(pid: str, p: dict[str, Any]) -> dict[str, Any]:
    """One row of ``frames_matched.csv`` from a frame pair of :func:`matching.match_frames`."""
    ar, mr = p["auto"], p["manual"]
    row: dict[str, Any] = {"pullback_id": pid, "frame": p["frame"], "match": _match_status(ar, mr)}
    if mr is not None:
        row["manual_position_mm"] = mr.get("position_mm")
        row["manual_line"] = mr.get("_line")
    row.update(_side_by_side(ar, mr, FRAME_MEASURES + FRAME_FLAGS + list(angles.WHERE_ANGLES)))
    angles.add_differences(row, _num)
    return row


def _gives_frame_flags(frames: list[dict[str, Any]]) -> bool:
    """Whether any manual frame gives a yes/no flag (TCFA)."""
    return any(r.get(c) is not None for r in frames for c in FRAME_FLAGS)


def _count_frames(count: dict[str, int], pairs: list[dict[str, Any]]) -> None:
    """Add the manual, automated and matched frames of one pullback's pairs."""
    count["manual"] += sum(p["manual"] is not None for p in pairs)
    count["auto"] += sum(p["auto"] is not None for p in pairs)
    count["matched"] += sum(p["auto"] is not None and p["manual"] is not None for p in pairs)


def pair_struts(
    pid: str, a: PullbackData, m: PullbackData, s: EvaluationSettings, rows: _Rows
) -> None:
    """Strut rows of one pullback, over the frames the manual reader analysed: frames of
    ``manual_frames.csv`` (matched to automated frames) and frames with a manual strut."""
    rows.have["struts"] += 1
    read = _frames_read(pid, m, rows.frames)
    auto_struts = [r for r in a.struts if int(r["frame"]) in read]
    rows.strut_outside += len(a.struts) - len(auto_struts)
    pairs, counts = matching.match_struts(
        auto_struts,
        m.struts,
        tolerance_mm=s.strut_tolerance_mm,
        angle_tolerance_deg=s.strut_angle_tolerance_deg,
        lumen_radius_mm=_lumen_radius(a.frames),
    )
    for k in rows.strut_counts:
        rows.strut_counts[k] += counts[k]
    rows.struts.extend(_strut_row(pid, p) for p in pairs)


def _lumen_radius(frames: list[dict[str, Any]] | None) -> dict[int, float]:
    """Half the automated mean lumen diameter (mm) of each frame that gives one."""
    return {
        int(r["frame"]): float(r["lumen_mean_diameter_mm"]) / 2
        for r in (frames or [])
        if r.get("frame") is not None and _num(r.get("lumen_mean_diameter_mm"))
    }


def _frames_read(pid: str, m: PullbackData, frame_rows: list[dict[str, Any]]) -> set[int]:
    """Frames the manual reader analysed: frames with a manual strut and the frame rows of the
    pullback that have a manual side."""
    read = {int(r["frame"]) for r in m.struts}
    read |= {
        fr["frame"] for fr in frame_rows if fr["pullback_id"] == pid and fr["match"] != "auto_only"
    }
    return read


def _strut_row(pid: str, p: dict[str, Any]) -> dict[str, Any]:
    """One row of ``struts_matched.csv`` from a strut pair of :func:`matching.match_struts`."""
    ar, mr = p["auto"], p["manual"]
    row = {
        "pullback_id": pid,
        "frame": p["frame"],
        "match": p["match"] or ("auto_only" if ar else "manual_only"),
        "pair_distance_mm": p.get("distance_mm"),
        "pair_angle_diff_deg": p.get("angle_diff_deg"),
    }
    row.update(_side_by_side(ar, mr, ("angle_deg", "x_mm", "y_mm", "distance_mm", "malapposed")))
    return row


def _pullback_row(pid: str, a: PullbackData, m: PullbackData) -> dict[str, Any]:
    row = {"pullback_id": pid}
    for name, path in {**PULLBACK_MEASURES, **PULLBACK_FLAGS}.items():
        row[f"auto_{name}"] = _get(a.summary, path)
        row[f"manual_{name}"] = _get(m.summary, path)
    return row


def _header(
    auto: str | Path,
    manual: str | Path,
    s: EvaluationSettings,
    sides: _Sides,
    rows: _Rows,
    warnings_: list[str],
) -> dict[str, Any]:
    """The first entries of ``metrics.json``: inputs, settings, methods, pullbacks, warnings."""
    return {
        "inputs": {"auto": str(auto), "manual": str(manual)},
        "settings": _settings_dict(s),
        "methods": dict(stats.METHODS),
        "icc_form": stats.ICC_FORM,
        "pullbacks": {
            "evaluated": sides.common,
            "auto_only": sides.auto_only,
            "manual_only": sides.manual_only,
            "with_frames": rows.have["frames"],
            "with_lesions": rows.have["lesions"],
            "with_struts": rows.have["struts"],
            "with_label_maps": rows.have["labels"],
        },
        "warnings": warnings_,
    }


def statistics(rows: _Rows, s: EvaluationSettings) -> dict[str, Any]:
    """The statistics blocks of ``metrics.json``: frames always; lesions, struts, pullback and
    segmentation where that level was compared."""
    kw = {"n_resamples": s.n_bootstrap, "seed": s.seed}
    out: dict[str, Any] = {
        "frames": {
            "matching": rows.frame_count,
            "measures": _continuous_block(rows.frames, FRAME_MEASURES, kw, only_matched=True),
            "bias_by_pullback": _frame_bias_by_pullback(rows.frames),
            "categories": _frame_flags(rows.frames, rows.flag_pids),
        }
    }
    where = angles.where_block(rows.frames, s.where_within_deg)
    if where:
        out["frames"]["where"] = where
    if rows.have["lesions"]:
        out["lesions"] = _lesion_block(rows.lesions, kw)
    if rows.have["struts"]:
        out["struts"] = _strut_block(rows, s.strut_tolerance_mm, kw)
    if rows.pullbacks:
        out["pullback"] = _pullback_block(rows.pullbacks, kw)
    if rows.segmentation:
        out["segmentation"] = {
            "classes": segmentation.summarize_overlap(rows.segmentation, s.classes),
            "space": "cartesian (polar maps scan-converted at their depth spacing)",
            "hd_percentile": 95,
        }
    return out


def _tables(rows: _Rows) -> dict[str, list[dict[str, Any]]]:
    """The row tables written as CSV files."""
    return {
        "frames_matched": rows.frames,
        "lesions_cohort": rows.lesions,
        "struts_matched": rows.struts,
        "segmentation_frames": [
            {k: v for k, v in r.items() if k != "scored"} | {"scored": int(r["scored"])}
            for r in rows.segmentation
        ],
        "pullbacks": rows.pullbacks,
    }


def _strut_block(rows: _Rows, tolerance_mm: float, kw: dict[str, Any]) -> dict[str, Any]:
    """Strut detection, malapposition agreement of matched struts and their distances."""
    matched = [r for r in rows.struts if r["match"] in ("by_xy", "by_arc", "by_angle")]
    pairs_m = [
        r
        for r in matched
        if r["auto_malapposed"] is not None and r["manual_malapposed"] is not None
    ]
    c = rows.strut_counts
    return {
        "tolerance_mm": tolerance_mm,
        "detection": {
            **stats.detection(c["tp"], c["fp"], c["fn"]),
            "matched_by": {k: c[k] for k in ("by_xy", "by_arc", "by_angle")},
            "auto_struts_in_unread_frames": rows.strut_outside,
        },
        "malapposition": stats.binary_classification(
            [bool(r["auto_malapposed"]) for r in pairs_m],
            [bool(r["manual_malapposed"]) for r in pairs_m],
        ),
        "malapposed_struts": malapposed_struts(rows.struts),
        "measures": _continuous_block(matched, ["distance_mm"], kw),
    }


def malapposed_struts(struts: list[dict[str, Any]]) -> dict[str, Any]:
    """Every manual malapposed strut, detected or not (``malapposition`` above counts matched
    pairs only, so an undetected malapposed strut never lowers its sensitivity): how many the
    automated reading found malapposed, missed as apposed, or did not detect at all; and how many
    of its malapposed calls fall on a manual malapposed strut (PPV). The sensitivity also gets a
    95% CI over pullbacks (``ci_pullbacks``, :func:`~octseg.evaluate.stats.cluster_proportion_ci`:
    struts of one stent are not independent; where every pullback has the same share, e.g. all
    found, at the number of struts; none with fewer than 2 pullbacks)."""
    manual = [r for r in struts if r["manual_malapposed"]]
    hit = [r["match"] != "manual_only" and bool(r["auto_malapposed"]) for r in manual]
    found = sum(hit)
    undetected = sum(1 for r in manual if r["match"] == "manual_only")
    calls = [r for r in struts if r["auto_malapposed"]]
    sensitivity = stats.proportion(found, len(manual))
    pids = [r["pullback_id"] for r in manual]
    sensitivity["n_pullbacks"] = len(set(pids))
    sensitivity["ci_pullbacks"] = stats.cluster_proportion_ci([float(h) for h in hit], pids)
    return {
        "n_manual": len(manual),
        "found": found,
        "missed_as_apposed": len(manual) - found - undetected,
        "undetected": undetected,
        "sensitivity": sensitivity,
        "n_auto": len(calls),
        "auto_without_manual_strut": sum(1 for r in calls if r["match"] == "auto_only"),
        "ppv": stats.proportion(found, len(calls)),
    }


def _pullback_block(rows: list[dict[str, Any]], kw: dict[str, Any]) -> dict[str, Any]:
    """Agreement of the per-pullback summary values and yes/no flags."""
    cats = {}
    for name in PULLBACK_FLAGS:
        rs = [r for r in rows if r[f"auto_{name}"] is not None and r[f"manual_{name}"] is not None]
        cats[name] = stats.binary_classification(
            [bool(r[f"auto_{name}"]) for r in rs], [bool(r[f"manual_{name}"]) for r in rs]
        )
    return {"measures": _continuous_block(rows, list(PULLBACK_MEASURES), kw), "categories": cats}


def _settings_dict(s: EvaluationSettings) -> dict[str, Any]:
    d = dataclasses.asdict(s)
    d["classes"] = list(s.classes)
    return d


def _lesion_row(pid: str, p: dict[str, Any], spacing: float | None, g: Any) -> dict[str, Any]:
    """One row of ``lesions_cohort.csv``: the interval of each side, its measures and flags."""
    ar, mr = p["auto"], p["manual"]
    status = _match_status(ar, mr)
    row: dict[str, Any] = {
        "pullback_id": pid,
        "match": status,
        "overlap_iou": p["iou"] if status == "matched" else None,
    }
    for side, r in (("auto", ar), ("manual", mr)):
        row.update(_lesion_interval(side, r, spacing, pid))
    row.update(_side_by_side(ar, mr, LESION_MEASURES, read=_numeric))
    row.update(_side_by_side(ar, mr, ("calcium_score", "kind")))
    row.update(_side_by_side(_flags(ar, g) if ar else {}, _flags(mr, g) if mr else {}, RISK_FLAGS))
    row["auto_score_borderline"] = _borderline(ar, g)
    if mr is not None and mr.get("_line") is not None:
        row["manual_line"] = mr["_line"]
    return row


def _lesion_interval(
    side: str, r: dict[str, Any] | None, spacing: float | None, pid: str
) -> dict[str, Any]:
    """Start and end of one side's lesion in frames and mm (as given, else converted)."""
    keys = [f"{side}_{c}" for c in ("start_frame", "end_frame", "start_mm", "end_mm")]
    if r is None:
        return dict.fromkeys(keys)
    sf, ef = matching.lesion_interval(r, spacing, pid)
    start, end = r.get("start_frame", None), r.get("end_frame", None)
    if start is None:
        start, end = round(sf, 2), round(ef, 2)
    return dict(
        zip(
            keys,
            (
                start,
                end,
                r.get("start_mm") or (sf * spacing if spacing else None),
                r.get("end_mm") or (ef * spacing if spacing else None),
            ),
            strict=True,
        )
    )


def _continuous_block(
    rows: list[dict[str, Any]], measures: list[str], kw: dict[str, Any], only_matched: bool = False
) -> dict[str, Any]:
    """Agreement of each measure that the manual side gives in ``rows`` (with ``only_matched``,
    over matched rows only, and counting the automated values without a manual one)."""
    if only_matched:
        rows = [r for r in rows if r.get("match") == "matched"]
    out: dict[str, Any] = {}
    for c in measures:
        a, m, n_manual_only, n_auto_only, pids = _paired_values(rows, c)
        if not a and not n_manual_only:
            continue  # measured by nobody on the manual side: nothing to report
        res = stats.continuous_agreement(a, m, clusters=pids, **kw)
        res["unit"] = unit_of(c)
        res["n_manual_without_auto"] = n_manual_only
        if only_matched:
            res["n_auto_without_manual"] = n_auto_only
        out[c] = res
    return out


def _frame_bias_by_pullback(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each frame measure's bias per pullback over matched frames (:mod:`.by_pullback`)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("match") == "matched":
            groups.setdefault(str(r["pullback_id"]), []).append(r)
    diffs = {}
    for c in FRAME_MEASURES:
        pairs = {pid: _paired_values(rs, c)[:2] for pid, rs in groups.items()}
        diffs[c] = {
            pid: [x - y for x, y in zip(a, m, strict=True)] for pid, (a, m) in pairs.items()
        }
    return by_pullback.summarize(diffs)


def _paired_values(
    rows: list[dict[str, Any]], c: str
) -> tuple[list[float], list[float], int, int, list[str]]:
    """Automated and manual values of ``c`` in the rows that give both, how many rows give only
    the manual value, only the automated one, and the pullback of each pair."""
    a: list[float] = []
    m: list[float] = []
    pids: list[str] = []
    n_manual_only = n_auto_only = 0
    for r in rows:
        va, vm = _num(r.get(f"auto_{c}")), _num(r.get(f"manual_{c}"))
        if va is not None and vm is not None:
            a.append(va)
            m.append(vm)
            pids.append(str(r.get("pullback_id")))
        elif vm is not None:
            n_manual_only += 1
        elif va is not None:
            n_auto_only += 1
    return a, m, n_manual_only, n_auto_only, pids


def _frame_flags(rows: list[dict[str, Any]], pids: set[str]) -> dict[str, Any]:
    """Per-frame yes/no agreement (TCFA) over matched frames of pullbacks whose manual frames
    give the flag; a blank flag (a frame without lipid) counts as "no"."""
    rs = [r for r in rows if r["match"] == "matched" and r["pullback_id"] in pids]
    out = {}
    for f in FRAME_FLAGS:
        a = [bool(_num(r[f"auto_{f}"]) or 0) for r in rs]
        m = [bool(_num(r[f"manual_{f}"]) or 0) for r in rs]
        out[f] = stats.binary_classification(a, m)
    return out if rs else {}


def _lesion_block(rows: list[dict[str, Any]], kw: dict[str, Any]) -> dict[str, Any]:
    """Lesion detection, measures, calcium score, kind and risk flags of matched lesions."""
    tp = sum(r["match"] == "matched" for r in rows)
    fp = sum(r["match"] == "auto_only" for r in rows)
    fn = sum(r["match"] == "manual_only" for r in rows)
    matched = [r for r in rows if r["match"] == "matched"]
    kinds = _both(matched, "kind")
    kind = stats.kappa(
        [a for a, _ in kinds], [b for _, b in kinds], labels=["spotty", "macro"], weights=None
    )
    flags = {}
    for f in RISK_FLAGS:
        pr = _both(matched, f)
        flags[f] = stats.binary_classification([a for a, _ in pr], [b for _, b in pr])
    return {
        "detection": stats.detection(tp, fp, fn),
        "measures": _continuous_block(matched, LESION_MEASURES, kw),
        "calcium_score": _calcium_score_block(matched),
        "kind": kind,
        "risk_flags": flags,
    }


def _both(rows: list[dict[str, Any]], name: str) -> list[tuple[Any, Any]]:
    """``(auto, manual)`` values of ``name`` in the rows where both sides give it."""
    return [
        (r[f"auto_{name}"], r[f"manual_{name}"])
        for r in rows
        if r[f"auto_{name}"] is not None and r[f"manual_{name}"] is not None
    ]


def _calcium_score_block(matched: list[dict[str, Any]]) -> dict[str, Any]:
    """Agreement of the calcium score (0-4) of matched lesions."""
    sc = [(int(a), int(m)) for a, m in _both(matched, "calcium_score")]
    score: dict[str, Any] = {
        "n": len(sc),
        "exact_agreement": _exact(sc),
        "within_one_point": (sum(abs(a - b) <= 1 for a, b in sc) / len(sc)) if sc else None,
        "mean_difference": (sum(a - b for a, b in sc) / len(sc)) if sc else None,
    }
    for w in ("linear", "quadratic"):
        score[f"kappa_{w}"] = stats.kappa(
            [a for a, _ in sc], [b for _, b in sc], labels=[0, 1, 2, 3, 4], weights=w
        )
    score["by_auto_borderline"] = _score_by_borderline(matched)
    return score


def _score_by_borderline(matched: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact score agreement where the automated lesion lies near a cut-off (any criterion in
    its ``score_borderline``) and where it does not."""
    out = {}
    for part, near in (("near_cut_off", True), ("clear", False)):
        rows = [r for r in matched if bool(r.get("auto_score_borderline")) == near]
        sc = [(int(a), int(m)) for a, m in _both(rows, "calcium_score")]
        out[part] = {"n": len(sc), "exact_agreement": _exact(sc)}
    return out


def _exact(sc: list[tuple[int, int]]) -> float | None:
    """The share of ``(auto, manual)`` scores that agree exactly (None without any)."""
    return sum(a == m for a, m in sc) / len(sc) if sc else None


def verdict_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The short table of the report: one row per continuous measurement with data."""
    rows = []
    blocks = [
        ("frame", metrics.get("frames", {}).get("measures", {})),
        ("lesion", metrics.get("lesions", {}).get("measures", {})),
        ("strut", metrics.get("struts", {}).get("measures", {})),
        ("pullback", metrics.get("pullback", {}).get("measures", {})),
    ]
    for level, block in blocks:
        for name, r in block.items():
            if not r.get("n"):
                continue
            infl = r.get("icc_most_influential") or {}
            rows.append(
                {
                    "level": level,
                    "measurement": name,
                    "unit": r.get("unit", ""),
                    "n": r["n"],
                    "bias": r.get("bias"),
                    "loa_lower": r.get("loa_lower"),
                    "loa_upper": r.get("loa_upper"),
                    "icc": r.get("icc"),
                    "icc_ci": r.get("icc_ci"),
                    "icc_ci_pullbacks": r.get("icc_ci_pullbacks"),
                    "most_influential_pullback": infl.get("pullback"),
                    "icc_without_it": infl.get("icc_without"),
                    "mae": r.get("mae"),
                    "pearson_r": r.get("pearson_r"),
                    "proportional_slope": r.get("proportional_slope"),
                    "proportional_slope_ci_pullbacks": r.get("proportional_slope_ci_pullbacks"),
                    "notes": "; ".join(r.get("notes") or []),
                }
            )
    return rows
