"""One-page HTML report per pullback, self-contained (plots and overlays embedded as PNG).

Contents: key numbers (MLA, calcium lesions and worst score, MSA / expansion, malapposition);
longitudinal plots along the pullback - lumen area, calcium arc, stent area vs lumen area and the
malapposition distance of every strut - with the stented segment and the calcium lesions shaded;
the lesion table (calcium score, spotty/macro, risk flags); the stent table; the overlays.
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from octseg import __version__
from octseg.core import atomic
from octseg.geometry.summary import _num, in_stent
from octseg.io.color import display_notes
from octseg.io.levels import input_warnings

RISK_TEXT = {
    "arc_gt_270": "arc > 270°",
    "thickness_gt_1mm": "thickness > 1 mm",
    "length_gt_15mm": "length > 15 mm",
}


def _fmt(v: Any, nd: int = 2, unit: str = "") -> str:
    f = _num(v)
    if f is None:
        return "–"
    return f"{f:.{nd}f}{unit}"


def _series(frames: Sequence[Mapping[str, Any]], col: str) -> np.ndarray:
    return np.array([_num(r.get(col)) for r in frames], dtype=float)  # None -> NaN


def longitudinal_png(
    frames: Sequence[Mapping[str, Any]],
    struts: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    frame_spacing_mm: float,
    malapposition_threshold_mm: float | None = None,
) -> bytes:
    """The four stacked longitudinal plots (shared position axis, mm) as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fs = float(frame_spacing_mm)
    pos = np.array([int(r["frame"]) * fs for r in frames], dtype=float)
    lumen = _series(frames, "lumen_area_mm2")
    lipid = _series(frames, "lipid_arc_deg")
    n_panels = 5 if np.isfinite(lipid).any() else 4  # a fifth: lipid arc, TCFA frames marked
    fig = Figure(figsize=(11.0, 8.2 * n_panels / 4), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_panels, 1, sharex=True, gridspec_kw={"hspace": 0.12})
    lesions = summary.get("calcium_lesions") or []
    st = summary.get("stent") or None
    for ax in axes[:4]:  # the calcium lesions and the stented segment shaded
        _shade(ax, lesions, st, fs)
    _lumen_panel(axes[0], pos, lumen, summary.get("lumen") or {}, fs)
    _calcium_panel(axes[1], pos, _series(frames, "calcium_arc_deg"), lesions, fs)
    _stent_panel(axes[2], pos, lumen, _series(frames, "stent_area_mm2"), st, fs)
    _strut_panel(axes[3], struts, fs, malapposition_threshold_mm, st)
    if n_panels == 5:
        _lipid_panel(axes[4], pos, lipid, frames)
        axes[4].set_xlabel(axes[3].get_xlabel())
        axes[3].set_xlabel("")
    for a in axes:
        a.grid(True, axis="x", color="#e5e5e5", lw=0.6)
        a.spines[["top", "right"]].set_visible(False)
        a.tick_params(labelsize=9)
    if len(pos):
        axes[-1].set_xlim(pos.min(), pos.max() + fs)
    fig.subplots_adjust(left=0.09, right=0.99, top=0.98, bottom=0.07)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 3})  # fast, no larger
    return buf.getvalue()


def _shade(ax: Any, lesions: Sequence[Mapping[str, Any]], st: Any, fs: float) -> None:
    """Calcium lesions (orange) and the stented segment (green) as vertical bands."""
    for les in lesions:
        ax.axvspan(
            les["start_frame"] * fs,
            (les["end_frame"] + 1) * fs,
            color="#ff9f1c",
            alpha=0.12,
            lw=0,
        )
    if st:
        ax.axvspan(
            st["start_frame"] * fs,
            (st["end_frame"] + 1) * fs,
            color="#2ca02c",
            alpha=0.08,
            lw=0,
        )


def _mark(ax: Any, x: float, y: float, name: str, color: str, text_color: str) -> None:
    """A minimum (MLA / MSA): triangle and label."""
    ax.plot([x], [y], "v", color=color, ms=9)
    ax.annotate(
        f"{name} {y:.2f} mm²",
        (x, y),
        xytext=(6, -14),
        textcoords="offset points",
        color=text_color,
        fontsize=10,
        weight="bold",
    )


def _lumen_panel(
    ax: Any, pos: np.ndarray, lumen: np.ndarray, lum: Mapping[str, Any], fs: float
) -> None:
    """Lumen area with the MLA marked."""
    ax.plot(pos, lumen, color="#1f77b4", lw=1.4)
    if lum.get("mla_frame") is not None and _num(lum.get("mla_mm2")) is not None:
        _mark(ax, lum["mla_frame"] * fs, float(lum["mla_mm2"]), "MLA", "#d62728", "#d62728")
    ax.set_ylabel("Lumen area\n(mm²)")
    ax.set_ylim(bottom=0)


def _calcium_panel(
    ax: Any, pos: np.ndarray, arc: np.ndarray, lesions: Sequence[Mapping[str, Any]], fs: float
) -> None:
    """Calcium arc with the 180° / 270° lines and each (wide enough) lesion's score."""
    ax.fill_between(pos, np.nan_to_num(arc), step="mid", color="#ff9f1c", alpha=0.85, lw=0)
    for thr, txt in ((180, "180°"), (270, "270°")):
        ax.axhline(thr, color="#7f7f7f", ls="--", lw=0.8)
        ax.text(pos[0] if len(pos) else 0, thr + 4, txt, fontsize=8, color="#555")
    span = (pos.max() + fs - pos.min()) if len(pos) else 1.0
    for i, les in enumerate(lesions, start=1):
        if (les["end_frame"] + 1 - les["start_frame"]) * fs < 0.06 * span:
            continue  # too narrow to label legibly; the lesion table lists it
        ax.text(
            (les["start_frame"] + les["end_frame"] + 1) * fs / 2,
            345,
            f"L{i}: score {les.get('calcium_score')}",
            ha="center",
            va="top",
            fontsize=9,
            weight="bold",
            color="#a65e00",
        )
    ax.set_ylim(0, 360)
    ax.set_yticks([0, 90, 180, 270, 360])
    ax.set_ylabel("Calcium arc\n(°)")


def _stent_panel(
    ax: Any, pos: np.ndarray, lumen: np.ndarray, stent: np.ndarray, st: Any, fs: float
) -> None:
    """Stent area against lumen area with the MSA marked."""
    ax.plot(pos, lumen, color="#1f77b4", lw=1.2, label="lumen area")
    ax.plot(pos, stent, color="#2ca02c", lw=1.6, label="stent area")
    if st and st.get("msa_frame") is not None and _num(st.get("msa_mm2")) is not None:
        _mark(ax, st["msa_frame"] * fs, float(st["msa_mm2"]), "MSA", "#2ca02c", "#1a6e1a")
    ax.legend(loc="upper right", fontsize=8, frameon=False, ncol=2)
    ax.set_ylabel("Stent vs lumen\narea (mm²)")
    ax.set_ylim(bottom=0)


def _strut_panel(
    ax: Any,
    struts: Sequence[Mapping[str, Any]],
    fs: float,
    threshold_mm: float | None,
    st: Mapping[str, Any] | None,
) -> None:
    """Every strut's distance to the lumen contour: in the stented segment malapposed ones red,
    outside it (not a stent's, :func:`octseg.geometry.summary.in_stent`) hollow grey."""
    if struts:
        sp = np.array([int(s["frame"]) * fs for s in struts], dtype=float)
        sd = np.array([_num(s.get("distance_mm")) or 0.0 for s in struts], dtype=float)
        mal = np.array([bool(int(s.get("malapposed") or 0)) for s in struts])
        inside = np.array([in_stent(s["frame"], st) for s in struts])
        out = f"outside the stent ({int((~inside).sum())}; not counted)"
        groups = (
            (
                inside & ~mal,
                {"s": 5, "color": "#7f7f7f", "alpha": 0.6, "lw": 0, "label": "apposed"},
            ),
            (inside & mal, {"s": 12, "color": "#d62728", "lw": 0, "label": "malapposed"}),
            (~inside, {"s": 14, "facecolors": "none", "edgecolors": "#9a9a9a", "label": out}),
        )
        for keep, style in groups:
            if keep.any():
                ax.scatter(sp[keep], sd[keep], **style)
        ax.legend(loc="upper right", fontsize=8, frameon=False, ncol=3)
    else:
        ax.text(
            0.5,
            0.5,
            "no struts detected",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#777",
        )
    if threshold_mm is not None:
        ax.axhline(threshold_mm, color="#d62728", ls="--", lw=0.8)
    ax.axhline(0, color="#444", lw=0.6)
    ax.set_ylabel("Strut distance\nto lumen (mm)")
    ax.set_xlabel("Position along the pullback (mm)   ·   frame 0 = distal  →  proximal")


def _lipid_panel(ax: Any, pos: np.ndarray, arc: np.ndarray, frames: Any) -> None:
    """Lipid arc along the pullback with TCFA frames marked."""
    ax.fill_between(pos, np.nan_to_num(arc), step="mid", color="#d4a017", alpha=0.85, lw=0)
    ax.axhline(90, color="#7f7f7f", ls="--", lw=0.8)
    tcfa = np.array([bool(_num(r.get("tcfa")) or 0) for r in frames])
    if tcfa.any():
        ax.plot(pos[tcfa], arc[tcfa] + 12, "v", color="#b000b0", ms=7, label="TCFA frame")
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_ylim(0, 360)
    ax.set_yticks([0, 90, 180, 270, 360])
    ax.set_ylabel("Lipid arc\n(°)")


def _lipid_table(lesions: Sequence[Mapping[str, Any]], fs: float) -> str:
    if not lesions:
        return "<p>No lipid detected.</p>"
    head = (
        "<table><tr><th>#</th><th>frames</th><th>length (mm)</th><th>max arc (°)</th>"
        "<th>lipid index (°·mm)</th><th>min cap (µm)</th><th>at frame</th><th>TCFA</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{i}</td><td>{les['start_frame']}–{les['end_frame']}</td>"
        f"<td>{_fmt(les.get('length_mm'), 1)}</td><td>{_fmt(les.get('max_lipid_arc_deg'), 0)}</td>"
        f"<td>{_fmt(les.get('lipid_index'), 0)}</td><td>{_fmt(les.get('min_cap_thickness_um'), 0)}</td>"
        f"<td>{les.get('min_cap_frame') if les.get('min_cap_frame') is not None else '–'}</td>"
        f"<td>{_yesno(les.get('tcfa'))} ({les.get('n_tcfa_frames')} frames)</td></tr>"
        for i, les in enumerate(lesions, start=1)
    )
    return head + rows + "</table>"


def _img(data: bytes, alt: str, cls: str = "") -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#1b1b1b;font-size:14px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:12.5px}
.cards{display:flex;gap:12px;margin:14px 0;flex-wrap:wrap}
.card{flex:1;min-width:200px;border:1px solid #ddd;border-radius:8px;padding:10px 14px;background:#fafafa}
.card .k{font-size:12px;color:#666;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600;margin-top:2px} .card .s{font-size:12.5px;color:#444}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e6e6e6;padding:5px 8px;text-align:right}
th{background:#f3f3f3;font-weight:600} td:first-child,th:first-child{text-align:left}
.flag{display:inline-block;background:#d62728;color:#fff;border-radius:10px;padding:1px 7px;margin:1px;font-size:11.5px}
.near{color:#8a5a00}
.ok{color:#1a6e1a;font-weight:600} .bad{color:#d62728;font-weight:600}
.score{display:inline-block;min-width:18px;text-align:center;border-radius:4px;padding:1px 5px;color:#fff;font-weight:700}
.plots{width:100%} .ovl{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.ovl figure{margin:0} .ovl img{width:100%;border-radius:4px} .ovl figcaption{font-size:12.5px;color:#444;margin-top:2px}
.foot{margin-top:22px;color:#777;font-size:11.5px}
"""

SCORE_COLORS = ["#2ca02c", "#8cbf26", "#e3b505", "#f07b1a", "#d62728"]


def _score(v: Any) -> str:
    try:
        s = int(v)
    except (TypeError, ValueError):
        return "–"
    return f'<span class="score" style="background:{SCORE_COLORS[max(0, min(4, s))]}">{s}</span>'


def _lesion_table(lesions: Sequence[Mapping[str, Any]], fs: float) -> str:
    if not lesions:
        return "<p>No calcium detected.</p>"
    rows = []
    for i, les in enumerate(lesions, start=1):
        flags = les.get("risk_flags") or []
        flag_html = (
            "".join(f'<span class="flag">{html.escape(RISK_TEXT.get(f, f))}</span>' for f in flags)
            or "–"
        )
        rows.append(
            "<tr>"
            f"<td>L{i}</td><td>{les['start_frame']}–{les['end_frame']}</td>"
            f"<td>{les['start_frame'] * fs:.1f}–{(les['end_frame'] + 1) * fs:.1f}</td>"
            f"<td>{_fmt(les.get('length_mm'), 1)}</td><td>{_fmt(les.get('max_arc_deg'), 0)}</td>"
            f"<td>{_fmt(les.get('max_thickness_mm'), 2)}</td><td>{_fmt(les.get('min_depth_mm'), 2)}</td>"
            f"<td>{_fmt(les.get('volume_mm3'), 2)}</td>"
            f"<td>{_score(les.get('calcium_score'))}{_near_cut(les)}</td>"
            f"<td>{html.escape(str(les.get('kind') or '–'))}</td><td>{flag_html}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>Lesion</th><th>Frames</th><th>Position (mm)</th><th>Length (mm)</th>"
        "<th>Max arc (°)</th><th>Max thickness (mm)</th><th>Min depth (mm)</th>"
        "<th>Volume (mm³)</th><th>Ca score</th><th>Kind</th><th>Risk flags</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _near_cut(les: Mapping[str, Any]) -> str:
    """The criteria whose value lies near the score's cut-off (``score_borderline``)."""
    near = les.get("score_borderline") or []
    if isinstance(near, str):  # a CSV round trip: "arc;thickness"
        near = near.split(";")
    if not near:
        return ""
    what = html.escape(", ".join(map(str, near)))
    tip = "within the geometry setting score_margin_* of the cut-off: check these first"
    return f'<br><small class="near" title="{tip}">near cut-off: {what}</small>'


def _yesno(v: Any, bad_when_true: bool = True) -> str:
    if v is None:
        return "–"
    cls = "bad" if bool(v) == bad_when_true else "ok"
    return f'<span class="{cls}">{"yes" if v else "no"}</span>'


def _stent_table(st: Mapping[str, Any] | None) -> str:
    if not st:
        return "<p>No stent detected.</p>"
    exp = _num(st.get("expansion"))
    cells = [
        ("Frames", f"{st['start_frame']}–{st['end_frame']}"),
        ("Length (mm)", _fmt(st.get("length_mm"), 1)),
        ("MSA (mm²)", f"{_fmt(st.get('msa_mm2'))} (frame {st.get('msa_frame')})"),
        (
            "Ref. proximal / distal (mm²)",
            f"{_fmt(st.get('reference_proximal_area_mm2'))} / {_fmt(st.get('reference_distal_area_mm2'))}",
        ),
        ("Expansion", "–" if exp is None else f"{100 * exp:.0f}%"),
        ("Underexpanded", _yesno(st.get("underexpanded"))),
        (
            "Struts (malapposed)",
            f"{st.get('n_struts')} ({st.get('n_malapposed')}, {_fmt(st.get('malapposed_percent'), 1)}%)",
        ),
        ("Max malapposition (mm)", _fmt(st.get("max_malapposition_mm"))),
        ("Malapposition length (mm)", _fmt(st.get("malapposition_length_mm"), 1)),
        ("Malapposition volume (mm³)", _fmt(st.get("malapposition_volume_mm3"))),
        ("Significant malapposition", _yesno(st.get("significant_malapposition"))),
    ]
    head = "".join(f"<th>{html.escape(k)}</th>" for k, _ in cells)
    body = "".join(f"<td>{v}</td>" for _, v in cells)
    return f"<table><tr>{head}</tr><tr>{body}</tr></table>"


def _cards(summary: Mapping[str, Any], frames: Sequence[Mapping[str, Any]], fs: float) -> str:
    lum = summary.get("lumen") or {}
    lesions = summary.get("calcium_lesions") or []
    st = summary.get("stent") or None
    cards = []
    mla_f = lum.get("mla_frame")
    where = "" if mla_f is None else f"frame {mla_f} · {mla_f * fs:.1f} mm"
    n_open = int(lum.get("n_open_frames") or 0)
    if n_open:  # the lumen area of those frames is only a lower bound
        where += f" · lumen beyond the image in {n_open} frame{'s' * (n_open > 1)}"
    cards.append(("Minimal lumen area", f"{_fmt(lum.get('mla_mm2'))} mm²", where))
    if lesions:
        worst = max(int(les.get("calcium_score") or 0) for les in lesions)
        n_flag = sum(1 for les in lesions if les.get("risk_flags"))
        n_near = sum(1 for les in lesions if les.get("score_borderline"))
        cards.append(
            (
                "Calcium",
                f"{len(lesions)} lesion{'s' if len(lesions) != 1 else ''}",
                f"highest score {worst}/4 · {n_flag} with risk flags"
                + (f" · {n_near} near a score cut-off" if n_near else ""),
            )
        )
    else:
        cards.append(("Calcium", "none", ""))
    if st:
        exp = _num(st.get("expansion"))
        cards.append(
            (
                "Stent",
                f"MSA {_fmt(st.get('msa_mm2'))} mm²",
                ("expansion –" if exp is None else f"expansion {100 * exp:.0f}%")
                + (" · underexpanded" if st.get("underexpanded") else ""),
            )
        )
        cards.append(
            (
                "Malapposition",
                f"{st.get('n_malapposed')} / {st.get('n_struts')} struts",
                f"max {_fmt(st.get('max_malapposition_mm'))} mm"
                + (" · significant" if st.get("significant_malapposition") else ""),
            )
        )
    else:
        cards.append(("Stent", "none detected", ""))
    return "".join(
        f'<div class="card"><div class="k">{html.escape(k)}</div><div class="v">{html.escape(v)}</div>'
        f'<div class="s">{html.escape(s)}</div></div>'
        for k, v, s in cards
    )


def _plaque_section(summary: Mapping[str, Any], model: Mapping[str, Any], fs: float) -> str:
    """Lipid lesions, shown when the model segments lipid (or lesions exist)."""
    from octseg.core.classes import LIPID

    lesions = summary.get("lipid_lesions") or []
    if not lesions and LIPID not in (model.get("classes") or []):
        return ""
    return "<h2>Lipid and fibrous cap</h2>" + _lipid_table(lesions, fs)


def _weights_note(model: dict[str, Any]) -> str:
    """``"; calcium weighted [1.0, 0.0]"`` for an ensemble's class weights (infer.py
    ``ensemble_weights``), else empty."""
    weights = model.get("ensemble_weights") or {}
    return "".join(f"; {name} weighted {list(w)}" for name, w in weights.items())


def render_report(
    *,
    pullback_id: str,
    info: Mapping[str, Any],
    frames: Sequence[Mapping[str, Any]],
    struts: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    overlays: Sequence[Mapping[str, Any]],
    model: Mapping[str, Any],
    malapposition_threshold_mm: float | None = None,
    postprocess: Any = None,
) -> str:
    fs = float(info["frame_spacing_mm"])
    plots = longitudinal_png(frames, struts, summary, fs, malapposition_threshold_mm)
    ovl = "".join(
        f"<figure>{_img(Path(o['path']).read_bytes(), 'frame ' + str(o['frame']))}"
        f"<figcaption>Frame {o['frame']} ({o['frame'] * fs:.1f} mm): {html.escape(o['reason'])}</figcaption></figure>"
        for o in overlays
    )
    n = info.get("frames")
    meta = (
        f"{n} frames · {info.get('space')} {info.get('height')}×{info.get('width')} · "
        f"pixel {_fmt(info.get('pixel_spacing_mm'), 4)} mm · frame spacing {_fmt(fs, 3)} mm · "
        f"length {(n or 0) * fs:.1f} mm · format {html.escape(str(info.get('format')))}"
    )
    ck = model.get("checkpoint")  # a list: an ensemble's members (also model["ensemble"])
    names = model.get("ensemble") or (ck if isinstance(ck, list) else [ck])
    named = f"{model['shipped_ensemble']} = " if model.get("shipped_ensemble") else ""
    ckpt = html.escape(named + " + ".join(Path(str(n)).name for n in names) + _weights_note(model))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>octseg report: {html.escape(pullback_id)}</title>
<style>{CSS}</style></head><body>
<h1>IVOCT pullback {html.escape(pullback_id)}</h1>
<div class="meta">{meta}</div>{_display_note(info)}
<div class="cards">{_cards(summary, frames, fs)}</div>
<h2>Along the pullback</h2>
{_img(plots, "longitudinal plots", "plots")}
<h2>Calcium lesions</h2>
{_lesion_table(summary.get("calcium_lesions") or [], fs)}
<h2>Stent</h2>
{_stent_table(summary.get("stent"))}
{_plaque_section(summary, model, fs)}
<h2>Key frames</h2>
<div class="ovl">{ovl or "<p>No frames.</p>"}</div>
<div class="foot">Automated segmentation by octseg {__version__} (model {ckpt}, classes {model.get("classes")},
TTA {len(model.get("tta") or [1])}×{_grid_note(model)}{_postprocess_note(postprocess)}) on {time.strftime("%Y-%m-%d %H:%M")}. Definitions: docs/metrics.md.
Research use only: review every measurement before any clinical decision.</div>
</body></html>
"""


def _display_note(info: Mapping[str, Any]) -> str:
    """How the reader read the frames: a known display map, or a warning about a colour map it
    does not know or about frames that look inverted."""
    notes = display_notes(info) + input_warnings(info)
    return "".join(f'\n<div class="meta"><b>Input:</b> {html.escape(n)}</div>' for n in notes)


def _grid_note(model: Mapping[str, Any]) -> str:
    """The footer's words for a network run on another A-line count than it was trained on."""
    trained = model.get("trained_n_alines")
    if trained is None:
        return ""
    return f"; run on {model['net_grid']['n_alines']} A-lines, trained on {trained}"


def _postprocess_note(post: Any) -> str:
    """The footer's words for the anatomical post-processing setting (None: not said)."""
    if post is None:
        return ""
    if post is False or (isinstance(post, Mapping) and post.get("enabled") is False):
        return "; anatomical post-processing off"
    post = post if isinstance(post, Mapping) else {}
    area, extend = post.get("calcium_min_area_mm2"), post.get("calcium_extend_prob")
    vote, outer = post.get("calcium_frame_vote"), post.get("calcium_outer_median")
    removed = (
        f", calcium by the majority of {vote} neighbouring frames" if vote and vote > 1 else ""
    )
    if outer and outer > 1:
        removed += f", outer calcium borders the median of {outer} neighbouring frames"
    removed += f", calcium components under {area:g} mm² removed" if area else ""
    track = post.get("calcium_track_frames")
    if area and track:
        frames = "frame" if track == 1 else "frames"
        removed += f" unless a lesion within {track} {frames} continues them"
    short = post.get("calcium_min_length_mm")
    removed += f", calcium lesions shorter than {short:g} mm removed" if short else ""
    grown = f", calcium arcs extended at calcium probability ≥ {extend:g}" if extend else ""
    return f"; anatomical post-processing on{removed}{grown}"


def write_report(path: Path, **kwargs: Any) -> Path:
    atomic.write_text(path, render_report(**kwargs))
    return path
