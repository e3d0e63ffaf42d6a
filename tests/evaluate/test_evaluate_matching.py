"""Matching of frames (by index and by mm), lesions (by overlap) and struts (by distance);
reading manual CSVs with clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from octseg.core.errors import InputError, MissingSpacingError, SchemaError
from octseg.evaluate import matching
from octseg.evaluate.inputs import load_manual, read_manual_frames, read_manual_lesions


def _auto_frames(frames):
    return [{"frame": f, "position_mm": f * 0.2, "lumen_area_mm2": 5.0 + f} for f in frames]


def test_frames_by_index_and_by_mm_unmatched_counted():
    auto = _auto_frames([0, 5, 10, 15])
    manual = [
        {"frame": 0, "lumen_area_mm2": 5.1},
        {"position_mm": 1.04, "lumen_area_mm2": 9.9},  # 5.2 frames -> frame 5
        {"position_mm": 2.9, "lumen_area_mm2": 7.0},  # 14.5 frames: 0.5 from 15 -> matched
        {"position_mm": 1.6, "lumen_area_mm2": 7.0},  # 8 frames: 2 from 10 -> unmatched
        {"frame": 7, "lumen_area_mm2": 7.0},  # no automated frame 7 -> unmatched
    ]
    pairs = matching.match_frames(auto, manual, spacing=0.2)
    got = {(p["frame"], p["auto"] is not None, p["manual"] is not None) for p in pairs}
    assert (0, True, True) in got and (5, True, True) in got and (15, True, True) in got
    assert (8, False, True) in got and (7, False, True) in got
    assert (10, True, False) in got  # automated frame without a manual reading
    assert len(pairs) == 6
    with pytest.raises(MissingSpacingError, match="frame spacing is unknown"):
        matching.match_frames(auto, manual, spacing=None, pid="p1")


def test_lesions_by_overlap_greedy_one_to_one():
    auto = [
        {"start_frame": 10, "end_frame": 30},
        {"start_frame": 50, "end_frame": 60},
        {"start_frame": 90, "end_frame": 95},
    ]
    manual = [
        {"start_mm": 2.2, "end_mm": 6.0},  # frames 11-30 at 0.2 mm
        {"start_frame": 28, "end_frame": 34},  # overlaps auto 0 less than manual 0 does
        {"start_frame": 52, "end_frame": 58},
        {"start_frame": 120, "end_frame": 130},
    ]
    pairs = matching.match_lesions(auto, manual, spacing=0.2)
    matched = [p for p in pairs if p["auto"] and p["manual"]]
    assert len(matched) == 2
    first = next(p for p in matched if p["auto"]["start_frame"] == 10)
    assert first["manual"] is manual[0]
    assert first["iou"] == pytest.approx(20 / 21)
    assert sum(p["manual"] is None for p in pairs) == 1  # auto 90-95: false positive
    assert sum(p["auto"] is None for p in pairs) == 2  # manual 28-34 and 120-130: missed
    strict = matching.match_lesions(auto, manual, spacing=0.2, min_overlap=8)
    assert sum(1 for p in strict if p["auto"] and p["manual"]) == 1


def test_struts_within_tolerance_xy_and_angle():
    auto = [
        {"frame": 3, "x_mm": 1.0, "y_mm": 0.0, "angle_deg": 0.0},
        {"frame": 3, "x_mm": 0.0, "y_mm": 1.0, "angle_deg": 90.0},
        {"frame": 4, "x_mm": -1.0, "y_mm": 0.0, "angle_deg": 180.0},
    ]
    manual = [
        {"frame": 3, "x_mm": 1.05, "y_mm": 0.0},  # 0.05 mm: match
        {"frame": 3, "x_mm": 0.0, "y_mm": 1.15},  # 0.15 mm: no match
        {"frame": 5, "x_mm": 0.0, "y_mm": -1.0},  # no automated strut in that frame
    ]
    pairs, c = matching.match_struts(auto, manual, tolerance_mm=0.1)
    assert (c["tp"], c["fp"], c["fn"]) == (1, 2, 2)
    assert c["by_xy"] == 1
    assert next(p for p in pairs if p["match"])["distance_mm"] == pytest.approx(0.05)
    # manual struts given by angle only: arc length at the lumen radius (1.5 mm)
    man_ang = [{"frame": 3, "angle_deg": 3.0}, {"frame": 3, "angle_deg": 95.0}]
    pairs, c = matching.match_struts(auto[:2], man_ang, tolerance_mm=0.1, lumen_radius_mm={3: 1.5})
    # 3 deg at 1.5 mm = 0.0785 mm (match); 5 deg = 0.131 mm (no match)
    assert (c["tp"], c["fp"], c["fn"], c["by_arc"]) == (1, 1, 1, 1)
    assert next(p for p in pairs if p["match"])["distance_mm"] == pytest.approx(
        math.radians(3) * 1.5
    )
    # no radius known: angle tolerance; across 0/360 too
    _, c = matching.match_struts(
        [{"frame": 1, "angle_deg": 359.0}], [{"frame": 1, "angle_deg": 2.0}], angle_tolerance_deg=5
    )
    assert c["tp"] == 1 and c["by_angle"] == 1


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_manual_csv_reading_and_errors(tmp_path: Path):
    p = _write(
        tmp_path / "manual_frames.csv",
        "pullback_id,frame,lumen_area_mm2,reader\n001,0,5.2,AB\n001,5,,AB\n\n002,0,4.0,CD\n",
    )
    warn: list[str] = []
    rows = read_manual_frames(p, warnings=warn)
    assert set(rows) == {"001", "002"}  # ids stay text
    assert rows["001"][1]["lumen_area_mm2"] is None  # blank = not measured
    assert warn and "reader" in warn[0]
    bad = _write(tmp_path / "b1.csv", "pullback_id,frame,lumen_area_mm2\np1,0,5.2\np1,1,abc\n")
    with pytest.raises(SchemaError, match=r"b1\.csv: line 3: column 'lumen_area_mm2': 'abc'"):
        read_manual_frames(bad)
    dup = _write(tmp_path / "b2.csv", "pullback_id,frame,lumen_area_mm2\np1,0,5\np1,0,6\n")
    with pytest.raises(SchemaError, match="line 3: repeats pullback 'p1' frame 0"):
        read_manual_frames(dup)
    noid = _write(tmp_path / "b3.csv", "frame,lumen_area_mm2\n0,5\n")
    with pytest.raises(SchemaError, match="lacks column.*pullback_id"):
        read_manual_frames(noid)
    frac = _write(tmp_path / "b4.csv", "pullback_id,frame\np1,2.5\n")
    with pytest.raises(SchemaError, match="line 2: column 'frame': 2.5 is not a whole number"):
        read_manual_frames(frac)
    les = _write(
        tmp_path / "l.csv",
        "pullback_id,start_mm,end_mm,calcium_score,kind\np1,1.0,3.0,2,Macro\np1,5,4,1,spotty\n",
    )
    with pytest.raises(SchemaError, match="line 3: end_mm < start_mm"):
        read_manual_lesions(les)
    les2 = _write(tmp_path / "l2.csv", "pullback_id,start_frame,end_frame,kind\np1,1,3,big\n")
    with pytest.raises(SchemaError, match="kind must be 'spotty' or 'macro'"):
        read_manual_lesions(les2)
    les3 = _write(
        tmp_path / "l3.csv", "pullback_id,start_frame,end_frame,calcium_score\np1,1,3,7\n"
    )
    with pytest.raises(SchemaError, match="calcium_score must be 0..4"):
        read_manual_lesions(les3)
    with pytest.raises(InputError, match="no manual measurements found"):
        load_manual(tmp_path / "empty_dir" if (tmp_path / "empty_dir").mkdir() is None else None)
