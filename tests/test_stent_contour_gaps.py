"""benchmarks/stent_contour_gaps.py: stent area of apposed stents against the lumen area, by the
widest arc without struts."""

from __future__ import annotations

import csv
import math

import pytest

from benchmarks import stent_contour_gaps as sg


def _write(folder, rows, struts):
    folder.mkdir(parents=True)
    for name, table in (("frames.csv", rows), ("struts.csv", struts)):
        with open(folder / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0]))
            w.writeheader()
            w.writerows(table)


def _strut(frame, angle, r, distance, cy=0.1, cx=-0.2):
    a = math.radians(angle)
    y, x = cy + r * math.sin(a), cx + r * math.cos(a)
    return {"frame": frame, "angle_deg": angle, "y_mm": y, "x_mm": x, "distance_mm": distance}


def test_ratios_by_gap_and_malapposed_frames_left_out(tmp_path, capsys):
    r = 1.5
    lumen = {"lumen_area_mm2": math.pi * r * r, "lumen_centroid_y_mm": 0.1}
    rows = [dict(frame=f, lumen_centroid_x_mm=-0.2, **lumen) for f in (0, 1, 2)]
    struts = [_strut(0, a, r, 0.0) for a in (10, 50, 90, 130)]  # widest gap 240°
    struts += [_strut(1, a, r, 0.01) for a in range(0, 360, 60)]  # 60°
    struts += [_strut(2, a, r - 0.2, 0.2) for a in range(0, 360, 60)]  # malapposed: left out
    _write(tmp_path / "manual" / "p0", rows, struts)
    got = sg.frame_ratios(tmp_path / "manual" / "p0")
    assert [g for g, _ in got] == pytest.approx([240.0, 60.0])
    assert [v for _, v in got] == pytest.approx([1.0, 1.0], abs=0.005)  # round across the gap
    assert sg.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| 0-90 | 1 | 1.000" in out and "| 180-270 | 1 | 0.998" in out and "| 90-120" not in out
