"""Report pieces on where a frame's measurement is taken (``metrics.json``'s ``frames.where``,
:mod:`octseg.evaluate.angles`): the summary line, the report table and the plot."""

from __future__ import annotations

import html
import io
import math
from pathlib import Path
from typing import Any

from octseg.core import atomic
from octseg.report.cells import ci, fixed, prop, share_cis

#: how the report names the angle columns of octseg.evaluate.angles
WHERE_TITLES = {
    "calcium_max_thickness_angle_deg": "thickest calcium",
    "cap_min_angle_deg": "thinnest cap",
}


def diff_column(column: str) -> str:
    """The ``frames_matched.csv`` column of the signed difference of angle ``column``."""
    return f"where_diff_{column}"


#: the amount measured at each place: the plot's x axis
WHERE_AMOUNTS = {
    "calcium_max_thickness_angle_deg": ("calcium_max_thickness_mm", "mm"),
    "cap_min_angle_deg": ("cap_min_thickness_um", "µm"),
}


def where_line(column: str, w: dict[str, Any]) -> str:
    """One line on where a measurement is taken (``metrics.json``'s ``frames.where``)."""
    sh = w["share_within"]
    return (
        f"where, {WHERE_TITLES.get(column, column)}: n={w['n']} frames, |auto - manual| median "
        f"{fixed(w['median_abs_deg'], 1)}°, 90th percentile {fixed(w['p90_abs_deg'], 1)}°; "
        f"within {w['within_deg']:g}°: {fixed(sh['value'], 2)} ({share_cis(sh)})"
    )


def html_where(metrics: dict[str, Any]) -> list[str]:
    """Where the thickest calcium / thinnest cap is measured, automated against manual."""
    where = metrics.get("frames", {}).get("where", {})
    if not where:
        return []
    h = [
        "<h2>Where it is measured (matched frames)</h2><table><tr><th>place</th><th>n</th>"
        "<th>median |auto - manual|</th><th>90th percentile</th><th>share within [95% CI]</th>"
        "<th>over pullbacks</th></tr>"
    ]
    for c, w in where.items():
        sh = w["share_within"]
        h.append(
            f"<tr><td class=l>{html.escape(WHERE_TITLES.get(c, c))}</td><td>{w['n']}</td>"
            f"<td>{fixed(w['median_abs_deg'], 1)}°</td><td>{fixed(w['p90_abs_deg'], 1)}°</td>"
            f"<td>{w['within_deg']:g}°: {prop(sh)}</td><td>{ci(sh.get('ci_pullbacks'), 2) or '–'}</td></tr>"
        )
    h.append(
        "</table><p class=note>Angles about the lumen centroid. On a lesion of even thickness any "
        "ray of the plateau is a fair answer; on a peaked lesion a large difference means the "
        "automated maximum comes from another part of the lesion.</p>"
    )
    return h


def plot_where(diff: Any, amount: Any, column: str, w: dict[str, Any]) -> bytes:
    """PNG bytes: the histogram of the signed differences (auto - manual, degrees) with the
    ``within_deg`` band, beside the absolute difference against the manual amount measured
    there (a miss on a thick lesion matters more than one on a thin lesion); ``w``: the
    column's ``frames.where`` block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    within_deg, share = w["within_deg"], w["share_within"]["value"]
    d = np.asarray(diff, dtype=float)
    x = np.asarray(amount, dtype=float)
    name, unit = WHERE_AMOUNTS.get(column, ("manual amount", ""))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.6), dpi=90)
    ax1.hist(d, bins=np.arange(-180, 185, 5), color="#1f77b4")
    ax1.axvspan(-within_deg, within_deg, color="#2ca02c", alpha=0.15, lw=0)
    ax1.set_xlim(-180, 180)
    ax1.set_xticks(range(-180, 181, 60))
    ax1.set_xlabel("automated - manual angle (°)")
    ax1.set_ylabel("frames")
    ax1.set_title(f"n = {d.size}; {share:.0%} within ±{within_deg:g}° (shaded)", fontsize=10)
    ax2.scatter(x, np.abs(d), s=14, alpha=0.6, color="#1f77b4", edgecolor="none")
    ax2.axhline(within_deg, color="#2ca02c", lw=1, ls="--")
    ax2.set_ylim(0, 182)
    ax2.set_xlabel(f"manual {name} ({unit})")
    ax2.set_ylabel("|automated - manual| (°)")
    ax2.set_title("by the amount measured there", fontsize=10)
    fig.suptitle(f"where: {WHERE_TITLES.get(column, column)}", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_where_plots(
    out: Path, frames: list[dict[str, Any]], metrics: dict[str, Any]
) -> list[dict[str, str]]:
    """``plots/where_<column>.png`` per column of ``frames.where`` (from the signed differences
    of ``frames_matched``: ``where_diff_<column>``); the report's plot entries."""
    files = []
    for column, w in metrics.get("frames", {}).get("where", {}).items():
        key, (amount, _) = diff_column(column), WHERE_AMOUNTS.get(column, ("", ""))
        rows = [r for r in frames if r.get("match") == "matched" and r.get(key) is not None]
        if not rows:
            continue
        x = [_number(r.get(f"manual_{amount}")) for r in rows]
        rel = f"plots/where_{column}.png"
        png = plot_where([r[key] for r in rows], x, column, w)
        atomic.write_bytes(out / rel, png)
        caption = "automated - manual angle, and its size against the manual amount there"
        files.append({"level": "frame", "measurement": column, "path": rel, "caption": caption})
    return files


def _number(v: Any) -> float:
    """A table cell as a float; NaN for a blank or non-number (not plotted)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
