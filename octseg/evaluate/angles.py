"""Where a frame's measurement is taken: the automated against the manual angle.

Two frame columns give a place, not an amount: ``calcium_max_thickness_angle_deg`` (the ray
of the frame's maximum calcium thickness) and ``cap_min_angle_deg`` (the thinnest fibrous
cap), both about the lumen centroid (docs/metrics.md). Equal thicknesses read at different
places agree by coincidence; this block says how often the places agree.

Over matched frames where both sides give the angle: the circular difference (auto - manual,
in (-180, 180]), its median and 90th percentile in absolute value, and the share within
``within_deg`` with a Wilson 95% CI and one over pullbacks (:func:`stats.cluster_proportion_ci`:
neighbouring frames of a pullback are not independent). On a lesion of even thickness any ray
of the plateau is a fair answer, so a large difference there means little; on a peaked lesion
it means the automated reading comes from another part of the lesion (or another lesion).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from octseg.evaluate import stats
from octseg.report.where import diff_column

#: frame columns that give where a measurement is taken (degrees about the lumen centroid)
WHERE_ANGLES = ("calcium_max_thickness_angle_deg", "cap_min_angle_deg")


def circular_difference(auto: Any, manual: Any) -> np.ndarray:
    """``auto - manual`` in degrees, wrapped into (-180, 180]."""
    d = np.remainder(np.asarray(auto, float) - np.asarray(manual, float), 360.0)
    return np.where(d > 180.0, d - 360.0, d)


def add_differences(row: dict[str, Any], num: Any) -> None:
    """Add to a ``frames_matched`` row, per angle column both sides give, the circular
    difference automated - manual (degrees, in (-180, 180]). ``num``: the reader of a table
    cell (None for a blank)."""
    for c in WHERE_ANGLES:
        va, vm = num(row.get(f"auto_{c}")), num(row.get(f"manual_{c}"))
        if va is not None and vm is not None:
            row[diff_column(c)] = float(circular_difference(va, vm))


def where_agreement(diffs: list[float], pids: list[str], within_deg: float) -> dict[str, Any]:
    """Agreement of one angle column from its signed differences and each one's pullback
    (non-finite differences dropped)."""
    diff = np.abs(np.asarray(diffs, dtype=float).reshape(-1))
    keep = np.isfinite(diff)
    diff, pids = diff[keep], [p for p, k in zip(pids, keep, strict=True) if k]
    if not diff.size:
        return {"n": 0, "within_deg": within_deg}
    hits = (diff <= within_deg).astype(float)
    share = stats.proportion(int(hits.sum()), hits.size)
    share["ci_pullbacks"] = stats.cluster_proportion_ci(hits, pids)
    return {
        "n": int(diff.size),
        "n_pullbacks": len(set(pids)),
        "median_abs_deg": float(np.median(diff)),
        "p90_abs_deg": float(np.percentile(diff, 90)),
        "within_deg": within_deg,
        "share_within": share,
    }


def where_block(rows: list[dict[str, Any]], within_deg: float) -> dict[str, dict[str, Any]]:
    """Per angle column with a difference on some matched frame (:func:`add_differences`):
    :func:`where_agreement`."""
    out = {}
    for c in WHERE_ANGLES:
        pairs = [
            (r[diff_column(c)], str(r["pullback_id"]))
            for r in rows
            if r.get("match") == "matched" and r.get(diff_column(c)) is not None
        ]
        if pairs:
            diffs, pids = zip(*pairs, strict=True)
            out[c] = where_agreement(list(diffs), list(pids), within_deg)
    return out
