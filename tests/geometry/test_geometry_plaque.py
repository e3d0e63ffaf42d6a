"""Plaque geometry against analytic cases, Cartesian and polar: lipid arc (incl. straddling 0
degrees and interrupted by the guidewire shadow), minimal fibrous-cap thickness on analytic
rings, lipid depth, TCFA, and the per-lesion summary. Tolerances: arc 2 deg, depth 2 pixels,
cap thickness 1 pixel (10 um) - see octseg.geometry.plaque.CAP_WINDOW_DEG."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from geometry_scenes import LUM, PS, grid, in_arc, label_file, plaque_scene, polar_about, scene

from octseg.core.classes import FIBROUS_CAP, LIPID
from octseg.geometry import GeometrySettings, measure_labels
from octseg.geometry.plaque import cap_run, smoothed_min
from octseg.geometry.summary import summarize

SPACES = ["cartesian", "polar"]
PX = 2 * PS
UM = 1000 * PS  # one pixel in um


def measure(frames, space, **kw):
    return measure_labels(label_file(frames, space), **kw)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize(
    "phi0, phi1, arc",
    [(30.0, 150.0, 120.0), (320.0, 50.0, 90.0), (90.0, 330.0, 240.0)],
    ids=["sector", "straddles-0", "wide"],
)
def test_lipid_arc_cap_and_depth(space, phi0, phi1, arc):
    (row,) = measure([plaque_scene(space, 0.12, phi0, phi1)], space).frames
    assert row["lipid_arc_deg"] == pytest.approx(arc, abs=2.0)
    assert row["lipid_min_depth_mm"] == pytest.approx(0.12, abs=PX)
    assert row["cap_min_thickness_um"] == pytest.approx(120.0, abs=UM)
    assert in_arc(np.array(row["cap_min_angle_deg"]), phi0, phi1)
    assert row["tcfa"] is False  # cap 120 um is not thin
    assert row["calcium_arc_deg"] is None
    assert row["lumen_area_mm2"] == pytest.approx(math.pi * LUM[2] ** 2, rel=0.02)


@pytest.mark.parametrize("space", SPACES)
def test_lipid_bridged_across_guidewire_shadow(space):
    lumen = (0.0, 0.0, 0.6)
    shadow = (80.0, 100.0, 0.45)  # catheter-centred sector, 20 deg wide
    frame = plaque_scene(space, 0.1, 40.0, 140.0, lumen=lumen, shadow=shadow)
    (row,) = measure([frame], space).frames
    assert row["lipid_arc_deg"] == pytest.approx(100.0, abs=2.0)  # shadow bridged
    frame = plaque_scene(space, 0.1, 40.0, 90.0, lumen=lumen, shadow=shadow)
    (row,) = measure([frame], space).frames
    assert row["lipid_arc_deg"] == pytest.approx(40.0, abs=2.0)  # lipid on one side only


@pytest.mark.parametrize("space", SPACES)
def test_lipid_bridged_across_a_strut_shadow(space):
    """Lipid labelled on both sides of a strut at the lumen border, not behind it: the strut's
    rays count, as the guidewire shadow's do (the same rule as calcium)."""
    lumen = (0.0, 0.0, 0.6)
    frame = plaque_scene(space, 0.1, 40.0, 140.0, lumen=lumen)
    y, x = grid(space)
    rho, phi = polar_about(y, x, lumen[:2])
    frame[in_arc(phi, 87.0, 93.0) & (rho >= 0.6)] = 0  # nothing seen behind the strut
    strut = scene(space, lumen=lumen, struts=[(0.6, 90.0)], strut_radius=0.04) == 3
    (row,) = measure([frame], space).frames
    assert row["lipid_arc_deg"] == pytest.approx(94.0, abs=2.0)  # a gap without a strut
    frame[strut] = 3
    (row,) = measure([frame], space).frames
    assert row["lipid_arc_deg"] == pytest.approx(100.0, abs=2.0)


@pytest.mark.parametrize("space", SPACES)
def test_thinnest_cap_of_an_eccentric_ring(space):
    """Lipid core behind a circle of radius R centred d off the lumen centre: along the ray from
    the lumen centre the cap is d cos(a) + sqrt(R^2 - d^2 sin^2 a) - r, thinnest (R - d - r) at
    the direction away from the offset."""
    r, big, d, away = LUM[2], 0.75, 0.15, 200.0  # thinnest cap 50 um at 200 deg
    lab = scene(space, lumen=LUM)
    y, x = grid(space)
    u = math.radians(away + 180.0)
    cy, cx = LUM[0] + d * math.sin(u), LUM[1] + d * math.cos(u)
    rho, phi = polar_about(y, x, LUM[:2])
    arc = in_arc(phi, away - 60.0, away + 60.0) & (lab == 0)
    core = np.hypot(y - cy, x - cx) >= big
    lab[arc & ~core & (rho >= r)] = FIBROUS_CAP
    lab[arc & core & (rho < r + 0.6)] = LIPID
    (row,) = measure([lab], space).frames
    assert row["cap_min_thickness_um"] == pytest.approx((big - d - r) * 1000, abs=UM)
    # the cap is flat near its minimum: the reported ray must lie where it is within a pixel
    a = math.radians(row["cap_min_angle_deg"] - away - 180.0)
    at_ray = d * math.cos(a) + math.sqrt(big**2 - (d * math.sin(a)) ** 2) - r
    assert at_ray - (big - d - r) < PS and abs(row["cap_min_angle_deg"] - away) < 20
    assert row["lipid_arc_deg"] == pytest.approx(120.0, abs=2.0)
    assert row["tcfa"] is True  # 50 um over 120 degrees


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize(
    "cap_mm, arc, expected",
    [(0.04, 120.0, True), (0.04, 60.0, False), (0.1, 180.0, False), (0.03, 95.0, True)],
    ids=["thin-wide", "thin-narrow", "thick-wide", "thin-just-over-90"],
)
def test_tcfa(space, cap_mm, arc, expected):
    (row,) = measure([plaque_scene(space, cap_mm, 100.0, 100.0 + arc)], space).frames
    assert row["tcfa"] is expected
    assert row["cap_min_thickness_um"] == pytest.approx(cap_mm * 1000, abs=UM)


@pytest.mark.parametrize("space", SPACES)
def test_tcfa_thresholds_are_settings(space):
    frame = plaque_scene(space, 0.08, 0.0, 120.0)  # 80 um: not thin at 65, thin at 100
    assert measure([frame], space).frames[0]["tcfa"] is False
    s = GeometrySettings(tcfa_cap_um=100.0)
    assert measure([frame], space, settings=s).frames[0]["tcfa"] is True
    s = GeometrySettings(tcfa_cap_um=100.0, tcfa_arc_deg=150.0)
    assert measure([frame], space, settings=s).frames[0]["tcfa"] is False


@pytest.mark.parametrize("space", SPACES)
def test_lipid_without_a_cap_has_an_arc_but_no_cap(space):
    frame = plaque_scene(space, 0.1, 0.0, 0.0, lipid_only=[(200.0, 300.0)])
    (row,) = measure([frame], space).frames
    assert row["lipid_arc_deg"] == pytest.approx(100.0, abs=2.0)
    assert row["lipid_min_depth_mm"] == pytest.approx(0.0, abs=PX)
    assert row["cap_min_thickness_um"] is None and row["tcfa"] is False


@pytest.mark.parametrize("space", SPACES)
def test_no_plaque_leaves_the_columns_blank(space):
    (row,) = measure([scene(space, lumen=LUM, calcium=[(0.7, 0.9, 10.0, 80.0)])], space).frames
    for k in ("lipid_arc_deg", "lipid_min_depth_mm", "cap_min_thickness_um", "tcfa"):
        assert row[k] is None
    assert row["calcium_arc_deg"] == pytest.approx(70.0, abs=2.0)


def test_plaque_and_calcium_in_one_frame():
    frame = scene("polar", lumen=LUM, calcium=[(0.7, 0.9, 10.0, 80.0)])
    y, x = grid("polar")
    rho, phi = polar_about(y, x, LUM[:2])
    sec = in_arc(phi, 180.0, 300.0)
    frame[sec & (rho >= 0.55) & (rho < 0.6)] = FIBROUS_CAP
    frame[sec & (rho >= 0.6) & (rho < 0.9)] = LIPID
    (row,) = measure([frame], "polar").frames
    assert row["calcium_arc_deg"] == pytest.approx(70.0, abs=2.0)
    assert row["lipid_arc_deg"] == pytest.approx(120.0, abs=2.0)
    assert row["cap_min_thickness_um"] == pytest.approx(50.0, abs=UM)


def test_cap_run_counts_the_cap_just_in_front_of_the_lipid():
    c, lp = FIBROUS_CAP, LIPID
    vals = torch.tensor([[[1, 1, c, c, 0, c, c, c, lp, lp], [1, c, c, lp, 0, 0, 0, 0, 0, 0]]])
    first = torch.tensor([[8, 3]])
    assert cap_run(vals.to(torch.uint8), first).tolist() == [[3, 2]]
    vals = torch.tensor([[[1, 1, 0, lp, lp, 0, 0, 0, 0, 0]]], dtype=torch.uint8)
    assert cap_run(vals, torch.tensor([[3]])).tolist() == [[0]]


def test_smoothed_min_skips_windows_without_a_cap_and_wraps():
    inf = math.inf
    per_ray = torch.tensor([[5.0, 5.0, inf, 9.0, 9.0, 9.0, 1.0, 5.0]])
    m, ray = smoothed_min(per_ray, 1)  # windows (r-1, r, r+1), wrapping 7 -> 0
    assert m.item() == pytest.approx(11.0 / 3) and ray.item() == 7
    m, ray = smoothed_min(torch.tensor([[inf, 3.0, inf, inf]]), 1)  # no full window: raw
    assert m.item() == 3.0 and ray.item() == 1


def _frame_row(frame, arc, cap, tcfa):
    return {"frame": frame, "lipid_arc_deg": arc, "cap_min_thickness_um": cap, "tcfa": tcfa}


def test_lipid_lesions_in_the_summary():
    rows = [
        _frame_row(0, None, None, None),
        _frame_row(1, 60.0, 200.0, False),
        _frame_row(2, 120.0, 50.0, True),
        _frame_row(3, None, None, None),  # one gap frame: bridged
        _frame_row(4, 90.0, 80.0, False),
        _frame_row(5, None, None, None),
        _frame_row(6, None, None, None),
        _frame_row(7, None, None, None),  # three gap frames: a new lesion
        _frame_row(8, 30.0, None, False),
    ]
    out = summarize(rows, [], 0.2)["lipid_lesions"]
    assert [(x["start_frame"], x["end_frame"]) for x in out] == [(1, 4), (8, 8)]
    a = out[0]
    assert a["length_mm"] == pytest.approx(0.8)
    assert a["max_lipid_arc_deg"] == 120.0 and a["mean_lipid_arc_deg"] == pytest.approx(90.0)
    assert a["lipid_index"] == pytest.approx(90.0 * 0.8)
    assert (a["min_cap_thickness_um"], a["min_cap_frame"]) == (50.0, 2)
    assert a["n_tcfa_frames"] == 1 and a["tcfa"] is True
    b = out[1]
    assert b["min_cap_thickness_um"] is None and b["tcfa"] is False
    assert (
        summarize(rows, [], 0.2, {"lipid_max_gap_frames": 3})["lipid_lesions"][0]["end_frame"] == 8
    )


def test_measured_pullback_summary_and_tables(tmp_path):
    frames = [
        plaque_scene("polar", 0.15, 0.0, 60.0),
        plaque_scene("polar", 0.04, 350.0, 110.0),  # TCFA frame
        plaque_scene("polar", 0.09, 10.0, 100.0),
        scene("polar", lumen=LUM),
    ]
    m = measure(frames, "polar")
    assert [r["tcfa"] for r in m.frames] == [False, True, False, None]
    (les,) = m.summary["lipid_lesions"]
    assert (les["start_frame"], les["end_frame"], les["min_cap_frame"]) == (0, 2, 1)
    assert les["min_cap_thickness_um"] == pytest.approx(40.0, abs=UM)
    assert les["max_lipid_arc_deg"] == pytest.approx(120.0, abs=2.0)
    assert les["lipid_index"] == pytest.approx((60 + 120 + 90) / 3 * 0.6, rel=0.03)
    assert les["tcfa"] is True
    from octseg.geometry.tables import read_csv
    from octseg.infer.cohort import rows_for

    m.write(tmp_path)
    got = read_csv(tmp_path / "frames.csv")
    assert [r["tcfa"] for r in got] == [0, 1, 0, None]
    assert got[1]["cap_min_thickness_um"] == pytest.approx(40.0, abs=UM)
    (row,) = rows_for("p", m.summary, 0.2)
    assert row["item"] == "lipid_lesion" and row["min_cap_frame"] == 1 and row["tcfa"] is True
