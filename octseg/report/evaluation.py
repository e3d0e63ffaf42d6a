"""Outputs of the evaluation: ``metrics.json``, CSV tables, plots (PNG) and ``report.html``.

Layout of the output folder::

    metrics.json                 everything, strict JSON (no NaN: undefined values are null)
    verdict.csv                  measurement, n, bias, limits of agreement, ICC, MAE, r, proportional bias
    lesions_cohort.csv           one row per lesion (matched or not), auto and manual side by side
    frames_matched.csv           one row per frame (matched, auto only, manual only)
    struts_matched.csv           one row per strut (pairs and unmatched)
    segmentation_frames.csv      per frame and class: Dice, IoU, HD95 (when label maps are given)
    pullbacks.csv                per-pullback summary values (MLA, MSA, expansion, ...)
    plots/<level>_<measure>.png  scatter (with identity line) + Bland-Altman plot
    report.html                  one page: verdict table, detection and category agreement,
                                 overlap metrics, plots (relative links to plots/)

Every file is written atomically (:mod:`octseg.core.atomic`).
"""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path
from typing import Any

from octseg import __version__
from octseg.core import atomic
from octseg.geometry.tables import clean_json
from octseg.report.cells import ci as _ci
from octseg.report.cells import fixed as _fixed
from octseg.report.cells import fmt as _fmt
from octseg.report.cells import prop as _prop
from octseg.report.cells import share_cis
from octseg.report.where import html_where, where_line, write_where_plots

LEVEL_TITLES = {
    "frame": "per frame",
    "lesion": "per lesion",
    "strut": "per strut",
    "pullback": "per pullback",
}


# ----------------------------------------------------------------------------- CSV
def write_table(path: Path, rows: list[dict[str, Any]], drop_empty_pairs: bool = True) -> None:
    """Rows as CSV (union of keys as columns). ``auto_X``/``manual_X`` column pairs that are
    blank in every row (a measure neither side gave) are left out."""
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    if drop_empty_pairs:
        empty = {c for c in cols if all(r.get(c) is None for r in rows)}
        drop = set()
        for c in cols:
            if c.startswith("auto_"):
                twin = "manual_" + c[5:]
                if c in empty and (twin in empty or twin not in cols):
                    drop |= {c, twin}
            elif c.startswith("manual_") and c in empty and ("auto_" + c[7:]) not in cols:
                drop.add(c)
        cols = [c for c in cols if c not in drop]
    with atomic.atomic_open(path, "w") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in cols])


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ";".join(_cell(x) for x in v)
    return str(v)


# ----------------------------------------------------------------------------- plots
def _pairs(rows: list[dict[str, Any]], name: str, matched_only: bool) -> tuple[list, list]:
    a, m = [], []
    for r in rows:
        if matched_only and r.get("match") not in ("matched", "by_xy", "by_arc", "by_angle"):
            continue
        va, vm = r.get(f"auto_{name}"), r.get(f"manual_{name}")
        if isinstance(va, (int, float)) and isinstance(vm, (int, float)):
            if not isinstance(va, bool) and math.isfinite(va) and math.isfinite(vm):
                a.append(float(va))
                m.append(float(vm))
    return a, m


def plot_measure(
    auto: list[float], manual: list[float], title: str, unit: str, st: dict[str, Any]
) -> bytes:
    """PNG bytes: scatter (auto vs manual, identity line, the proportional-bias fit) beside a
    Bland-Altman plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    a = np.asarray(auto, dtype=float)
    m = np.asarray(manual, dtype=float)
    u = f" ({unit})" if unit else ""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.6), dpi=90)
    lo = float(min(a.min(), m.min()))
    hi = float(max(a.max(), m.max()))
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
    ax1.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1, ls="--", label="y = x")
    ax1.scatter(m, a, s=14, alpha=0.7, color="#1f77b4", edgecolor="none")
    ax1.set_xlim(lo - pad, hi + pad)
    ax1.set_ylim(lo - pad, hi + pad)
    ax1.set_xlabel(f"manual{u}")
    ax1.set_ylabel(f"automated{u}")
    ann = [f"n = {len(a)}"]
    if st.get("icc") is not None:
        ann.append(f"ICC(A,1) = {st['icc']:.3f}")
    if st.get("pearson_r") is not None:
        ann.append(f"r = {st['pearson_r']:.3f}")
    ax1.text(0.03, 0.97, "\n".join(ann), transform=ax1.transAxes, va="top", fontsize=9)
    _trend_line(ax1, m, st)
    if st.get("proportional_slope") is not None:
        ax1.legend(fontsize=8, loc="lower right", frameon=False)
    ax1.set_title("agreement", fontsize=10)
    mean = (a + m) / 2
    diff = a - m
    ax2.scatter(mean, diff, s=14, alpha=0.7, color="#1f77b4", edgecolor="none")
    ax2.axhline(0, color="0.75", lw=1)
    if st.get("bias") is not None:
        ax2.axhline(st["bias"], color="#d62728", lw=1.5, label=f"bias {st['bias']:.3g}")
    if st.get("loa_lower") is not None:
        for key in ("loa_lower", "loa_upper"):
            ax2.axhline(st[key], color="#ff7f0e", lw=1.2, ls="--")
            ci = st.get(f"{key}_ci") or [None, None]
            if ci[0] is not None and ci[1] is not None and ci[1] > ci[0]:
                ax2.axhspan(ci[0], ci[1], color="#ff7f0e", alpha=0.12, lw=0)
        ax2.plot(
            [],
            [],
            color="#ff7f0e",
            ls="--",
            label=f"95% LoA [{st['loa_lower']:.3g}, {st['loa_upper']:.3g}]",
        )
    ax2.set_xlabel(f"mean of automated and manual{u}")
    ax2.set_ylabel(f"automated - manual{u}")
    ax2.set_title("Bland-Altman", fontsize=10)
    ax2.legend(fontsize=8, loc="best", frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _trend_line(ax: Any, manual: Any, st: dict[str, Any]) -> None:
    """The proportional-bias fit on the agreement scatter: automated = intercept + (1 + slope)
    x manual, over the manual values' range; nothing without a slope."""
    slope, icpt = st.get("proportional_slope"), st.get("proportional_intercept")
    if slope is None or icpt is None:
        return
    xs = [float(manual.min()), float(manual.max())]
    ax.plot(
        xs,
        [icpt + (1 + slope) * x for x in xs],
        color="#2ca02c",
        lw=1.2,
        ls=":",
        label=f"fit: slope {1 + slope:.2f}",
    )


# ----------------------------------------------------------------------------- outputs
#: every table an evaluation may write (``<name>.csv``)
TABLE_NAMES = (
    "verdict",
    "lesions_cohort",
    "frames_matched",
    "struts_matched",
    "segmentation_frames",
    "pullbacks",
)


def remove_stale_outputs(out: Path) -> list[Path]:
    """Delete what an earlier evaluation into ``out`` wrote (the names this module writes:
    tables, ``metrics.json``, ``report.html``, ``plots/<level>_*.png``, ``plots/where_*.png``) so
    that a re-run leaves
    no outdated file behind; anything else in ``out`` is left alone. Returns the deleted paths."""
    names = [out / f"{t}.csv" for t in TABLE_NAMES] + [out / "metrics.json", out / "report.html"]
    plots = out / "plots"
    if plots.is_dir():
        names += sorted(p for lv in (*LEVEL_TITLES, "where") for p in plots.glob(f"{lv}_*.png"))
    gone = []
    for p in names:
        if p.is_file() or p.is_symlink():
            p.unlink()
            gone.append(p)
    if plots.is_dir() and not any(plots.iterdir()):
        plots.rmdir()
    return gone


def write_outputs(out: Path, result: Any, plots: bool = True) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_outputs(out)
    metrics = result.metrics
    tables = result.tables
    paths: dict[str, str] = {}
    for name, rows in tables.items():
        if rows:
            write_table(out / f"{name}.csv", rows)
            paths[name] = f"{name}.csv"
    write_table(out / "verdict.csv", metrics["verdict"])
    paths["verdict"] = "verdict.csv"
    plot_files: list[dict[str, str]] = []
    if plots:
        levels = (  # (plot level, table, metrics block, matched pairs only)
            ("frame", "frames_matched", "frames", True),
            ("lesion", "lesions_cohort", "lesions", True),
            ("strut", "struts_matched", "struts", True),
            ("pullback", "pullbacks", "pullback", False),
        )
        sources = {
            level: (tables[table], metrics.get(block, {}).get("measures", {}), matched_only)
            for level, table, block, matched_only in levels
        }
        items = [
            (lv, n) for lv, (_, block, _) in sources.items() for n in block if block[n]["n"] >= 2
        ]
        for level, name in items:
            rows, block, matched_only = sources[level]
            a, m = _pairs(rows, name, matched_only)
            if len(a) < 2:
                continue
            rel = f"plots/{level}_{name}.png"
            title = f"{name} ({LEVEL_TITLES[level]})"
            atomic.write_bytes(
                out / rel, plot_measure(a, m, title, block[name].get("unit", ""), block[name])
            )
            plot_files.append({"level": level, "measurement": name, "path": rel})
        plot_files += write_where_plots(out, tables["frames_matched"], metrics)
    metrics["outputs"] = {**paths, "plots": plot_files, "report": "report.html"}
    atomic.write_json(out / "metrics.json", clean_json({"octseg_version": __version__, **metrics}))
    atomic.write_text(out / "report.html", render_html(metrics))
    paths["metrics"] = "metrics.json"
    paths["report"] = "report.html"
    return {k: str(out / v) for k, v in paths.items()}


# ----------------------------------------------------------------------------- HTML
def _icc_class(v: Any) -> str:
    if v is None:
        return ""
    if v >= 0.9:
        return "good"
    if v >= 0.75:
        return "fair"
    return "poor"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;
color:#222;line-height:1.4;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px} h2{font-size:1.2em;margin-top:28px;border-bottom:2px solid #ddd;
padding-bottom:4px} .meta{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:8px 0 12px;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
.wide{overflow-x:auto} .verdict td.note{min-width:18em} .verdict td{white-space:nowrap} .verdict td.l{white-space:normal} .ci{white-space:nowrap} th{background:#f3f5f8;text-align:center}
td.l{text-align:left} .ci{color:#777;font-size:.85em} .good{background:#e3f4e1} .fair{background:#fff4d6}
.poor{background:#fde2e1} .warn{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;
margin:6px 0;font-size:.9em} .plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));
gap:10px} .plots figure{margin:0;border:1px solid #eee;padding:4px} .plots img{width:100%}
.plots figcaption{font-size:.85em;color:#555} .note{color:#555;font-size:.85em}
"""


def render_html(metrics: dict[str, Any]) -> str:
    """``report.html``: one page built from ``metrics`` (sections in reading order)."""
    sections = (
        _html_head,
        _html_verdict,
        _html_detection,
        _html_categories,
        _html_calcium,
        html_where,
        _html_bias_by_pullback,
        _html_segmentation,
        _html_frame_matching,
        _html_plots,
        _html_methods,
    )
    return "\n".join(
        [line for section in sections for line in section(metrics)] + ["</body></html>"]
    )


def _html_head(metrics: dict[str, Any]) -> list[str]:
    """Title, inputs and warnings."""
    h: list[str] = []
    add = h.append
    pb = metrics["pullbacks"]
    add("<!doctype html><html lang=en><head><meta charset=utf-8>")
    add("<title>octseg evaluation</title><style>" + CSS + "</style></head><body>")
    add("<h1>Agreement of automated with manual measurements</h1>")
    add(
        f"<p class=meta>octseg {html.escape(__version__)} · automated: "
        f"<code>{html.escape(metrics['inputs']['auto'])}</code> · manual: "
        f"<code>{html.escape(metrics['inputs']['manual'])}</code><br>"
        f"{len(pb['evaluated'])} pullback(s) evaluated"
        + (f", {len(pb['auto_only'])} with automated results only" if pb["auto_only"] else "")
        + (f", {len(pb['manual_only'])} with manual measurements only" if pb["manual_only"] else "")
        + ". Differences are automated − manual.</p>"
    )
    for w in metrics.get("warnings", []):
        add(f"<div class=warn>{html.escape(w)}</div>")
    return h


def _html_verdict(metrics: dict[str, Any]) -> list[str]:
    """The verdict table: one row per continuous measurement."""
    h: list[str] = []
    add = h.append
    add("<h2>Verdict</h2>")
    v = metrics["verdict"]
    if v:
        add(
            "<div class=wide><table class=verdict><tr><th>level</th><th>measurement</th><th>unit</th><th>n</th><th>bias</th>"
            "<th>95% limits of agreement</th><th>ICC(A,1) [95% CI]</th>"
            "<th>ICC 95% CI over pullbacks</th><th>ICC without its worst pullback</th>"
            "<th>MAE</th><th>r</th>"
            "<th>proportional bias (slope on manual) [95% CI over pullbacks]</th>"
            "<th>notes</th></tr>"
        )
        for r in v:
            loa = (
                f"{_fmt(r['loa_lower'])} to {_fmt(r['loa_upper'])}"
                if r["loa_lower"] is not None
                else "–"
            )
            add(
                f"<tr><td class=l>{r['level']}</td><td class=l>{html.escape(r['measurement'])}</td>"
                f"<td class=l>{html.escape(r['unit'])}</td><td>{r['n']}</td><td>{_fmt(r['bias'])}</td>"
                f"<td>{loa}</td><td class={_icc_class(r['icc'])}>{_fixed(r['icc'])}{_ci(r['icc_ci'], 2)}</td>"
                f"<td>{_ci(r.get('icc_ci_pullbacks'), 2) or '–'}</td><td>{_without(r)}</td>"
                f"<td>{_fmt(r['mae'])}</td><td>{_fmt(r['pearson_r'])}</td>"
                f"<td>{_fmt(r.get('proportional_slope'), 2)}"
                f"{_ci(r.get('proportional_slope_ci_pullbacks'), 2)}</td>"
                f"<td class='l note'>{html.escape(r.get('notes', ''))}</td></tr>"
            )
        add("</table></div>")
        add(
            "<p class=note>ICC: "
            + html.escape(metrics["icc_form"])
            + ". Cell colours: ICC ≥ 0.90 excellent, 0.75–0.90 good, &lt; 0.75 moderate or poor."
            " The first CI treats every frame (lesion, strut) as independent; the CI over"
            " pullbacks takes whole pullbacks as the units (t on pullbacks - 1 degrees of"
            " freedom; the ICC's a delete-one-pullback jackknife), so near-duplicate neighbours"
            " do not narrow it. Proportional bias: the slope of the line of the differences"
            " on the manual values (the dotted fit on each scatter plot has slope 1 + it);"
            " below 0, small values read high and large ones low, which lowers the ICC even"
            " where the bias is near 0. Error in the manual readings also pulls it below 0."
            " Its worst pullback: the one whose leaving out raises the ICC most:"
            " one hard lesion can carry a cohort's ICC (a diagnostic, not a result to report;"
            " – where leaving out no pullback raises it)."
            " Full statistics with confidence intervals in <a href=metrics.json>metrics.json</a>"
            " and <a href=verdict.csv>verdict.csv</a>.</p>"
        )
    else:
        add("<p>No continuous measurement was available on both sides.</p>")
    return h


def _without(r: dict[str, Any]) -> str:
    """The ICC without the pullback that lowers it most, naming it; – where there is none."""
    if r.get("icc_without_it") is None:
        return "–"
    name = html.escape(str(r["most_influential_pullback"]))
    return f"{_fixed(r['icc_without_it'])} <span class=ci>({name})</span>"


def _html_detection(metrics: dict[str, Any]) -> list[str]:
    """Detection of calcium lesions and stent struts."""
    h: list[str] = []
    add = h.append
    det_rows = []
    if "lesions" in metrics:
        det_rows.append(("calcium lesions", metrics["lesions"]["detection"]))
    if "struts" in metrics:
        det_rows.append(
            (
                f"stent struts (within {metrics['struts']['tolerance_mm']:g} mm)",
                metrics["struts"]["detection"],
            )
        )
    if det_rows:
        add(
            "<h2>Detection</h2><table><tr><th>item</th><th>matched</th><th>auto only</th>"
            "<th>manual only</th><th>precision [95% CI]</th><th>recall [95% CI]</th><th>F1</th></tr>"
        )
        for name, d in det_rows:
            add(
                f"<tr><td class=l>{html.escape(name)}</td><td>{d['tp']}</td><td>{d['fp']}</td>"
                f"<td>{d['fn']}</td><td>{_prop(d['precision'])}</td><td>{_prop(d['recall'])}</td>"
                f"<td>{_fmt(d['f1'])}</td></tr>"
            )
        add("</table>")
    h += _html_malapposed_struts(metrics)
    return h


def _html_malapposed_struts(metrics: dict[str, Any]) -> list[str]:
    """Every manual malapposed strut, detected or not (the yes/no table below counts matched
    pairs only)."""
    ms = metrics.get("struts", {}).get("malapposed_struts")
    if not ms:
        return []
    return [
        "<h3>Manual malapposed struts, detected or not</h3><table><tr><th>manual malapposed</th>"
        "<th>found malapposed</th><th>read as apposed</th><th>not detected</th>"
        "<th>sensitivity [95% CI]</th><th>95% CI over pullbacks</th><th>auto malapposed calls</th>"
        "<th>calls without a manual strut</th><th>PPV [95% CI]</th></tr>",
        f"<tr><td>{ms['n_manual']}</td><td>{ms['found']}</td><td>{ms['missed_as_apposed']}</td>"
        f"<td>{ms['undetected']}</td><td>{_prop(ms['sensitivity'])}</td>"
        f"<td>{_ci(ms['sensitivity'].get('ci_pullbacks'), 2) or '–'}</td><td>{ms['n_auto']}</td>"
        f"<td>{ms['auto_without_manual_strut']}</td><td>{_prop(ms['ppv'])}</td></tr></table>",
    ]


def _html_categories(metrics: dict[str, Any]) -> list[str]:
    """Yes/no agreement (malapposition, TCFA, risk flags, pullback flags)."""
    h: list[str] = []
    add = h.append
    cats: list[tuple[str, dict[str, Any]]] = []
    if "struts" in metrics:
        cats.append(("strut malapposed (per matched strut)", metrics["struts"]["malapposition"]))
    for f, b in metrics.get("frames", {}).get("categories", {}).items():
        cats.append((f"frame: {f}", b))
    if "lesions" in metrics:
        for f, b in metrics["lesions"]["risk_flags"].items():
            cats.append((f"lesion risk flag {f}", b))
    if "pullback" in metrics:
        for f, b in metrics["pullback"]["categories"].items():
            cats.append((f"pullback: {f}", b))
    cats = [(n, b) for n, b in cats if b.get("n")]
    if cats:
        add(
            "<h2>Yes/no agreement</h2><table><tr><th>item</th><th>n</th><th>agreement</th>"
            "<th>sensitivity [95% CI]</th><th>specificity [95% CI]</th><th>Cohen's κ [95% CI]</th></tr>"
        )
        for name, b in cats:
            kap = _kappa_cell(b)
            add(
                f"<tr><td class=l>{html.escape(name)}</td><td>{b['n']}</td><td>{_fmt(b['agreement'])}</td>"
                f"<td>{_prop(b['sensitivity'])}</td><td>{_prop(b['specificity'])}</td><td>{kap}</td></tr>"
            )
        add(
            "</table><p class=note>The manual reading is the reference for sensitivity and "
            "specificity.</p>"
        )
    return h


def _kappa_cell(k: dict[str, Any]) -> str:
    """κ with its 95% CI, or the note saying why there is none."""
    if k["kappa"] is None:
        return "<span class=note>" + html.escape(k.get("note", "–")) + "</span>"
    return _fmt(k["kappa"]) + _ci(k["kappa_ci"], 2)


BORDERLINE_TEXT = {
    "near_cut_off": "… automated lesion near a cut-off (score_borderline)",
    "clear": "… automated lesion clear of the cut-offs",
}


def _borderline_rows(sc: dict[str, Any]) -> list[str]:
    """Exact score agreement split by the automated lesion's ``score_borderline``."""
    parts = sc.get("by_auto_borderline") or {}
    return [
        f"<tr><td class=l>{BORDERLINE_TEXT[k]}</td><td>{p['n']}</td>"
        f"<td>{_fmt(p['exact_agreement'])}</td><td colspan=3>–</td></tr>"
        for k, p in parts.items()
        if p["n"]
    ]


def _html_calcium(metrics: dict[str, Any]) -> list[str]:
    """Calcium score and lesion kind of matched lesions."""
    h: list[str] = []
    add = h.append
    if "lesions" in metrics:
        sc = metrics["lesions"]["calcium_score"]
        kd = metrics["lesions"]["kind"]
        if sc["n"] or kd["n"]:
            add(
                "<h2>Calcium score and lesion kind (matched lesions)</h2><table><tr><th>item</th>"
                "<th>n</th><th>exact agreement</th><th>within 1 point</th><th>κ linear [95% CI]</th>"
                "<th>κ quadratic [95% CI]</th></tr>"
            )
            kl, kq = sc["kappa_linear"], sc["kappa_quadratic"]
            add(
                f"<tr><td class=l>OCT calcium score (0–4)</td><td>{sc['n']}</td>"
                f"<td>{_fmt(sc['exact_agreement'])}</td><td>{_fmt(sc['within_one_point'])}</td>"
                f"<td>{_kappa_cell(kl)}</td><td>{_kappa_cell(kq)}</td></tr>"
            )
            h.extend(_borderline_rows(sc))
            add(
                f"<tr><td class=l>spotty / macro</td><td>{kd['n']}</td><td>{_fmt(kd['agreement'])}</td>"
                f"<td>–</td><td colspan=2>unweighted κ {_kappa_cell(kd)}</td></tr></table>"
            )
    return h


#: frame measures shown per pullback in the report (metrics.json has every measure)
BY_PULLBACK_SHOWN = (
    "lumen_area_mm2",
    "calcium_arc_deg",
    "calcium_max_thickness_mm",
    "stent_area_mm2",
    "max_malapposition_mm",
)


def _html_bias_by_pullback(metrics: dict[str, Any]) -> list[str]:
    """Frame-level bias per pullback and its part of the pooled bias (two pullbacks or more)."""
    per = metrics.get("frames", {}).get("bias_by_pullback") or {}
    shown = [c for c in BY_PULLBACK_SHOWN if c in per]
    pids = sorted({p for c in shown for p in per[c]})
    if not shown or len(pids) < 2:
        return []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
    h = [f"<h2>Frame bias by pullback</h2><table><tr><th>pullback</th>{head}</tr>"]
    for pid in pids:
        cells = "".join(_bias_cell(per[c].get(pid)) for c in shown)
        h.append(f"<tr><td class=l>{html.escape(pid)}</td>{cells}</tr>")
    h.append(
        "</table><p class=note>Each cell: the mean automated − manual difference over the "
        "pullback's matched frames (their number), → the pullback's part of the pooled bias "
        "(its differences summed, over the number of pairs in all pullbacks; the parts add up "
        "to the pooled bias). A pooled bias carried by one pullback shows as one large part.</p>"
    )
    return h


def _bias_cell(b: dict[str, Any] | None) -> str:
    if not b:
        return "<td>–</td>"
    return f"<td>{_fmt(b['bias'])} ({b['n']}) → {_fmt(b['part_of_pooled_bias'])}</td>"


def _html_segmentation(metrics: dict[str, Any]) -> list[str]:
    """Overlap of the label maps per class."""
    h: list[str] = []
    add = h.append
    if "segmentation" in metrics:
        add(
            "<h2>Segmentation overlap (label maps)</h2><table><tr><th>class</th>"
            "<th>frames scored</th><th>absent in both</th><th>Dice mean ± SD</th><th>Dice pooled</th>"
            "<th>IoU mean</th><th>HD95 median (mm)</th><th>HD95 frames</th>"
            "<th>only automated</th><th>only manual</th></tr>"
        )
        for name, c in metrics["segmentation"]["classes"].items():
            d = c["dice"]
            add(
                f"<tr><td class=l>{name}</td><td>{c['n_frames']}</td><td>{c['n_absent_both']}</td>"
                f"<td>{_fmt(d['mean'])} ± {_fmt(d['sd'])}{_ci(c.get('dice_ci95'))}</td>"
                f"<td>{_fmt(c['dice_pooled'])}{_ci(c.get('dice_pooled_ci95'))}</td>"
                f"<td>{_fmt(c['iou']['mean'])}</td><td>{_fmt(c['hd95_mm']['median'])}</td>"
                f"<td>{c['n_hd95']}</td><td>{c.get('n_auto_only', '')}</td>"
                f"<td>{c.get('n_manual_only', '')}</td></tr>"
            )
        add(
            "</table><p class=note>Frames where a class is absent in both masks are counted, not "
            "averaged. Hausdorff needs both masks non-empty. Only automated: frames where the "
            "class is in the automated mask alone (spurious); only manual: in the manual mask "
            "alone (missed). Polar maps are scan-converted to "
            "Cartesian first. The 95% CIs of the Dice are over whole pullbacks (cluster-robust, "
            "t on pullbacks - 1 degrees of freedom: neighbouring frames are near duplicates); "
            "none with one pullback.</p>"
        )
    return h


def _html_frame_matching(metrics: dict[str, Any]) -> list[str]:
    """How many manual frames found an automated frame."""
    h: list[str] = []
    add = h.append
    fm = metrics.get("frames", {}).get("matching")
    if fm and fm["manual"]:
        add(
            f"<h2>Frame matching</h2><p>{fm['manual']} manual frame(s), {fm['matched']} matched to an "
            f"automated frame, {fm['manual_unmatched']} without one; {fm['auto_unmatched']} automated "
            "frame(s) had no manual reading (expected when experts read every 1 mm).</p>"
        )
    return h


def _html_plots(metrics: dict[str, Any]) -> list[str]:
    """The scatter and Bland-Altman plots."""
    h: list[str] = []
    add = h.append
    plots = metrics.get("outputs", {}).get("plots", [])
    if plots:
        add("<h2>Plots</h2><div class=plots>")
        for p in plots:
            caption = p.get("caption") or (
                "automated vs manual, and Bland-Altman (bias red, 95% limits orange with their "
                "CIs shaded)"
            )
            add(
                f'<figure><img src="{html.escape(p["path"])}" alt="{html.escape(p["measurement"])}" '
                f"loading=lazy><figcaption>{html.escape(p['measurement'])} ({LEVEL_TITLES[p['level']]}): "
                f"{html.escape(caption)}</figcaption></figure>"
            )
        add("</div>")
    return h


def _html_methods(metrics: dict[str, Any]) -> list[str]:
    """Methods and links to the output files."""
    h: list[str] = []
    add = h.append
    add("<h2>Methods</h2><ul class=note>")
    for k, text in metrics["methods"].items():
        add(f"<li><b>{html.escape(k)}</b>: {html.escape(text)}</li>")
    add("</ul>")
    outs = metrics.get("outputs", {})
    links = [
        f'<a href="{html.escape(v)}">{html.escape(v)}</a>'
        for k, v in outs.items()
        if isinstance(v, str) and k != "report"
    ]
    add(
        "<p class=note>Files: <a href=metrics.json>metrics.json</a> · " + " · ".join(links) + "</p>"
    )
    return h


def malapposed_struts_line(ms: dict[str, Any]) -> str:
    """One line on every manual malapposed strut, detected or not (``metrics.json``'s
    ``struts.malapposed_struts``), for the evaluate CLI's summary and ``make demo``."""
    if not ms["n_manual"]:
        return f"malapposed struts: none in the manual struts; {ms['n_auto']} called malapposed"
    sens = ms["sensitivity"]
    return (
        f"malapposed struts (all manual ones): found {ms['found']} of {ms['n_manual']} "
        f"(sensitivity {_fixed(sens['value'], 2)}, {share_cis(sens)}; {ms['undetected']} "
        f"undetected, {ms['missed_as_apposed']} read as apposed); {ms['n_auto']} called "
        f"malapposed, PPV {_fixed(ms['ppv']['value'], 2)}"
    )


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """A few plain-text lines with the headline figures (printed by the CLI)."""
    lines = [f"{len(metrics['pullbacks']['evaluated'])} pullback(s) evaluated"]
    for r in metrics["verdict"]:
        loa = (
            f"LoA [{_fmt(r['loa_lower'])}, {_fmt(r['loa_upper'])}]"
            if r["loa_lower"] is not None
            else "LoA -"
        )
        lines.append(
            f"  {r['level']:8s} {r['measurement']:28s} n={r['n']:<5d} bias={_fmt(r['bias'])} "
            f"{loa} ICC={_fixed(r['icc'])}"
        )
    for key, title in (("lesions", "lesion"), ("struts", "strut")):
        if key in metrics:
            d = metrics[key]["detection"]
            lines.append(
                f"  {title} detection: precision={_fmt(d['precision']['value'])} "
                f"recall={_fmt(d['recall']['value'])} F1={_fmt(d['f1'])} "
                f"(matched {d['tp']}, auto only {d['fp']}, manual only {d['fn']})"
            )
    if "struts" in metrics:
        b = metrics["struts"]["malapposition"]
        lines.append(
            f"  malapposition: sensitivity={_fmt(b['sensitivity']['value'])} "
            f"specificity={_fmt(b['specificity']['value'])} kappa={_fmt(b['kappa'])}"
        )
        if metrics["struts"].get("malapposed_struts"):
            lines.append("  " + malapposed_struts_line(metrics["struts"]["malapposed_struts"]))
    if "lesions" in metrics:
        sc = metrics["lesions"]["calcium_score"]
        lines.append(
            f"  calcium score: n={sc['n']} exact={_fmt(sc['exact_agreement'])} "
            f"kappa(quadratic)={_fmt(sc['kappa_quadratic']['kappa'])}"
            + "".join(
                f" exact[{k}]={_fmt(p['exact_agreement'])} (n={p['n']})"
                for k, p in (sc.get("by_auto_borderline") or {}).items()
                if p["n"]
            )
        )
    for c, w in metrics.get("frames", {}).get("where", {}).items():
        lines.append("  " + where_line(c, w))
    for f, b in metrics.get("frames", {}).get("categories", {}).items():
        lines.append(
            f"  {f} per frame: n={b['n']} sensitivity={_fmt(b['sensitivity']['value'])} "
            f"specificity={_fmt(b['specificity']['value'])} kappa={_fmt(b['kappa'])}"
        )
    for name, c in metrics.get("segmentation", {}).get("classes", {}).items():
        lo, hi = c.get("dice_ci95") or (None, None)
        ci = "" if lo is None else f" 95% CI {_fmt(lo)}-{_fmt(hi)} ({c['n_pullbacks']} pullbacks)"
        lines.append(
            f"  {name:9s} Dice={_fmt(c['dice']['mean'])}{ci} (n={c['n_frames']}, absent in both "
            f"{c['n_absent_both']}) HD95 median={_fmt(c['hd95_mm']['median'])} mm"
        )
    return lines


def print_summary(metrics: dict[str, Any]) -> None:
    for w in metrics.get("warnings", []):
        print(f"warning: {w}")
    print("\n".join(summary_lines(metrics)))
