"""Where a frame's maximum calcium thickness is measured: automated against manual angle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from octseg.evaluate import evaluate
from octseg.evaluate.angles import circular_difference, where_agreement
from octseg.report.evaluation import render_html, summary_lines

COL = "calcium_max_thickness_angle_deg"
# (auto, manual) per frame of two pullbacks; |difference| worked out by hand
ANGLES = {
    "p1": [(5.0, 350.0), (95.0, 100.0), (200.0, 200.0), (None, 40.0)],  # 15, 5, 0, -
    "p2": [(190.0, 10.0), (359.0, 1.0), (30.0, None), (70.0, 50.0)],  # 180, 2, -, 20
}


def _cohort(tmp: Path) -> tuple[Path, Path]:
    manual = tmp / "manual"
    manual.mkdir()
    mrows = [f"pullback_id,position_mm,lumen_area_mm2,{COL}"]
    for pid, pairs in ANGLES.items():
        d = tmp / "auto" / pid
        d.mkdir(parents=True)
        rows = [f"frame,position_mm,lumen_area_mm2,{COL}"]
        for f, (a, m) in enumerate(pairs):
            rows.append(f"{f},{f * 0.2:g},5,{'' if a is None else a}")
            mrows.append(f"{pid},{f * 0.2:g},5,{'' if m is None else m}")
        (d / "frames.csv").write_text("\n".join(rows) + "\n")
    (manual / "manual_frames.csv").write_text("\n".join(mrows) + "\n")
    return tmp / "auto", manual


def test_circular_difference_wraps_into_half_open_interval():
    got = circular_difference([5, 350, 190, 10, 180], [350, 5, 10, 190, 0])
    np.testing.assert_allclose(got, [15, -15, 180, 180, 180])


def test_where_block_in_metrics_summary_and_report(tmp_path: Path):
    auto, manual = _cohort(tmp_path)
    out = tmp_path / "out"
    r = evaluate(auto, manual, out, {"plots": True, "progress": False, "n_bootstrap": 200})
    w = r.metrics["frames"]["where"][COL]
    diffs = [15, 5, 0, 180, 2, 20]  # the frames where both sides give an angle
    assert w["n"] == 6 and w["n_pullbacks"] == 2
    assert w["median_abs_deg"] == pytest.approx(np.median(diffs))
    assert w["p90_abs_deg"] == pytest.approx(np.percentile(diffs, 90))
    assert (w["share_within"]["k"], w["share_within"]["n"]) == (3, 6)  # 5, 0, 2 within 10°
    lo, hi = w["share_within"]["ci"]
    assert lo < 0.5 < hi
    plo, phi = w["share_within"]["ci_pullbacks"]  # 2 pullbacks: t on 1 df, wider than Wilson
    assert plo <= lo and phi >= hi
    assert "cap_min_angle_deg" not in r.metrics["frames"]["where"]  # given by neither side
    # the angles are not compared as measures (where, not how much)
    assert COL not in r.metrics["frames"]["measures"]
    line = next(x for x in summary_lines(r.metrics) if "thickest calcium" in x)
    assert "n=6 frames" in line and "within 10°: 0.50" in line
    assert "Where it is measured" in render_html(r.metrics)
    header = (out / "frames_matched.csv").read_text().splitlines()[0]
    assert f"auto_{COL}" in header and f"manual_{COL}" in header
    signed = [row.get(f"where_diff_{COL}") for row in r.tables["frames_matched"]]
    assert [d for d in signed if d is not None] == pytest.approx([15, -5, 0, 180, -2, 20])
    # the plot: a PNG in the report, with its own caption
    png = out / "plots" / f"where_{COL}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert f"plots/where_{COL}.png" in html and "against the manual amount there" in html


def test_where_plot_is_removed_by_a_run_without_plots(tmp_path: Path):
    auto, manual = _cohort(tmp_path)
    out = tmp_path / "out"
    evaluate(auto, manual, out, {"plots": True, "progress": False, "n_bootstrap": 200})
    assert (out / "plots" / f"where_{COL}.png").is_file()
    evaluate(auto, manual, out, {"plots": False, "progress": False, "n_bootstrap": 200})
    assert not (out / "plots").exists()


def test_thinnest_cap_angle_and_nan_differences():
    """The cap's angle is compared as the thickest calcium's is; a NaN difference is dropped,
    not counted as a miss."""
    from octseg.evaluate.angles import where_block

    rows = [
        {"pullback_id": "p1", "match": "matched", "where_diff_cap_min_angle_deg": d}
        for d in (4.0, -30.0, float("nan"))
    ]
    w = where_block(rows, 10.0)
    assert set(w) == {"cap_min_angle_deg"}
    assert w["cap_min_angle_deg"]["n"] == 2 and w["cap_min_angle_deg"]["share_within"]["k"] == 1
    assert w["cap_min_angle_deg"]["median_abs_deg"] == pytest.approx(17.0)
    assert where_agreement([float("nan")], ["p1"], 10.0)["n"] == 0


def test_where_within_setting_counts_more_frames(tmp_path: Path):
    auto, manual = _cohort(tmp_path)
    s = {"plots": False, "progress": False, "n_bootstrap": 200, "where_within_deg": 20}
    w = evaluate(auto, manual, None, s).metrics["frames"]["where"][COL]
    assert w["share_within"]["k"] == 5 and w["within_deg"] == 20


def test_no_angles_no_block(tmp_path: Path):
    auto, manual = _cohort(tmp_path)
    text = (manual / "manual_frames.csv").read_text().splitlines()
    (manual / "manual_frames.csv").write_text(
        "\n".join(",".join(r.split(",")[:3]) for r in text) + "\n"
    )
    r = evaluate(auto, manual, None, {"plots": False, "progress": False, "n_bootstrap": 200})
    assert "where" not in r.metrics["frames"]
    assert "Where it is measured" not in render_html(r.metrics)
    assert where_agreement([], [], 10.0)["n"] == 0
