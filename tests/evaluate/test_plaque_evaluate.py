"""evaluate.py on plaque: lipid-arc and cap-thickness agreement, TCFA kappa, cap/lipid Dice."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_scenes import LUM, PS, label_file, plaque_scene, scene

from octseg.evaluate.pipeline import evaluate
from octseg.geometry import measure_labels
from octseg.io.labels import save_labels

UM = 1000 * PS


def _write(folder, frames):
    lf = label_file(frames, "polar")
    folder.mkdir(parents=True)
    save_labels(folder / "labels.npz", lf)
    measure_labels(lf).write(folder)


def test_plaque_agreement_and_tcfa_kappa(tmp_path):
    manual = [
        plaque_scene("polar", 0.12, 0.0, 120.0),
        plaque_scene("polar", 0.04, 0.0, 120.0),  # TCFA
        plaque_scene("polar", 0.10, 0.0, 60.0),
        scene("polar", lumen=LUM),
    ]
    auto = [
        plaque_scene("polar", 0.12, 0.0, 140.0),
        plaque_scene("polar", 0.08, 0.0, 140.0),  # missed TCFA (cap too thick)
        plaque_scene("polar", 0.10, 0.0, 80.0),
        plaque_scene("polar", 0.04, 0.0, 120.0),  # false TCFA where the reader saw no lipid
    ]
    _write(tmp_path / "manual" / "p1", manual)
    _write(tmp_path / "auto" / "p1", auto)
    settings = {"classes": [1, 5, 6], "plots": False, "progress": False, "n_bootstrap": 200}
    res = evaluate(tmp_path / "auto", tmp_path / "manual", tmp_path / "out", settings)
    fm = res.metrics["frames"]["measures"]
    arc = fm["lipid_arc_deg"]
    assert arc["n"] == 3 and arc["unit"] == "°"
    assert arc["bias"] == pytest.approx(20.0, abs=2.0)
    cap = fm["cap_min_thickness_um"]
    assert cap["n"] == 3 and cap["unit"] == "µm"
    assert cap["bias"] == pytest.approx(40.0 / 3, abs=UM)
    assert "tcfa" not in fm and "cap_min_angle_deg" not in fm
    t = res.metrics["frames"]["categories"]["tcfa"]
    assert (t["n"], t["tp"], t["fp"], t["fn"], t["tn"]) == (4, 0, 1, 1, 2)
    seg = res.metrics["segmentation"]["classes"]
    assert seg["lipid"]["n_frames"] == 4 and seg["fibrous_cap"]["n_frames"] == 4
    dice = {(r["frame"], r["class"]): r["dice"] for r in res.tables["segmentation_frames"]}
    assert dice[(0, "lipid")] == pytest.approx(2 * 120 / 260, abs=0.03)  # same rings, arcs differ
    assert dice[(0, "fibrous_cap")] == pytest.approx(2 * 120 / 260, abs=0.05)
    assert dice[(3, "lipid")] == 0.0  # lipid only in the automated frame
    html = (tmp_path / "out" / "report.html").read_text()
    assert "frame: tcfa" in html and "cap_min_thickness_um" in html


def test_tcfa_kappa_needs_the_flag_on_the_manual_side(tmp_path):
    frames = [plaque_scene("polar", 0.04, 0.0, 120.0), scene("polar", lumen=LUM)]
    _write(tmp_path / "auto" / "p1", frames)
    (tmp_path / "manual").mkdir()
    rows = "pullback_id,frame,lumen_area_mm2\np1,0,0.95\np1,1,0.95\n"
    (tmp_path / "manual" / "manual_frames.csv").write_text(rows)
    settings = {"plots": False, "progress": False, "n_bootstrap": 200}
    res = evaluate(tmp_path / "auto", tmp_path / "manual", None, settings)
    assert res.metrics["frames"]["categories"] == {}
    rows = "pullback_id,frame,tcfa\np1,0,yes\np1,1,\n"
    (tmp_path / "manual" / "manual_frames.csv").write_text(rows)
    res = evaluate(tmp_path / "auto", tmp_path / "manual", None, settings)
    t = res.metrics["frames"]["categories"]["tcfa"]
    assert (t["tp"], t["tn"], t["fp"], t["fn"]) == (1, 1, 0, 0)
    assert np.isclose(t["agreement"], 1.0)


def test_default_classes_score_plaque_only_where_it_is_labelled(tmp_path):
    """The default class list includes fibrous cap and lipid; an evaluation where no frame on
    either side has them reports neither (tables and summary as for lumen/calcium/stent)."""
    settings = {"plots": False, "progress": False, "n_bootstrap": 200}
    plain = [scene("polar", lumen=LUM), scene("polar", lumen=LUM)]
    _write(tmp_path / "manual" / "p1", plain)
    _write(tmp_path / "auto" / "p1", plain)
    res = evaluate(tmp_path / "auto", tmp_path / "manual", tmp_path / "out", settings)
    seg = res.metrics["segmentation"]["classes"]
    assert "lumen" in seg and "lipid" not in seg and "fibrous_cap" not in seg
    assert {r["class"] for r in res.tables["segmentation_frames"]} == {
        "lumen",
        "calcium",
        "strut",
        "guidewire",
    }
    _write(tmp_path / "auto2" / "p1", [plaque_scene("polar", 0.12, 0.0, 120.0), plain[1]])
    res = evaluate(tmp_path / "auto2", tmp_path / "manual", tmp_path / "out2", settings)
    seg = res.metrics["segmentation"]["classes"]
    assert seg["lipid"]["n_frames"] == 1 and seg["lipid"]["dice"]["mean"] == 0.0  # auto only
    assert seg["fibrous_cap"]["n_frames"] == 1


def test_plaque_not_scored_for_a_model_without_plaque_classes(tmp_path):
    """An infer.py output whose manifest says the model predicts classes 0-4 is not scored on
    the lipid and cap the reference labels; with plaque classes in the manifest it is."""
    import json

    settings = {"plots": False, "progress": False, "n_bootstrap": 200}
    _write(tmp_path / "manual" / "p1", [plaque_scene("polar", 0.12, 0.0, 120.0)])
    _write(tmp_path / "auto" / "p1", [scene("polar", lumen=LUM)])
    for classes, scored in (([0, 1, 2, 3, 4], False), ([0, 1, 5, 6], True)):
        manifest = {"model": {"classes": classes}}
        (tmp_path / "auto" / "manifest.json").write_text(json.dumps(manifest))
        res = evaluate(tmp_path / "auto", tmp_path / "manual", tmp_path / "out", settings)
        seg = res.metrics["segmentation"]["classes"]
        assert ("lipid" in seg) is scored and ("fibrous_cap" in seg) is scored
        assert "lumen" in seg
