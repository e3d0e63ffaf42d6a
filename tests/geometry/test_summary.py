"""octseg.geometry.summary.summarize on hand-made frame tables with known lesions, scores and stents."""

from __future__ import annotations

import json

import pytest

from octseg.geometry.settings import GeometrySettings
from octseg.geometry.summary import summarize
from octseg.geometry.tables import LESION_KEYS, STENT_KEYS, clean_json


def frame(
    f,
    lumen=8.0,
    arc=None,
    thick=None,
    depth=None,
    area=None,
    n_struts=0,
    stent=None,
    n_mal=None,
    max_mal=None,
    mal_area=None,
):
    return {
        "frame": f,
        "position_mm": None,
        "lumen_area_mm2": lumen,
        "calcium_arc_deg": arc,
        "calcium_max_thickness_mm": thick,
        "calcium_min_depth_mm": depth,
        "calcium_area_mm2": area,
        "n_struts": n_struts,
        "n_malapposed": n_mal,
        "stent_area_mm2": stent,
        "max_malapposition_mm": max_mal,
        "malapposition_area_mm2": mal_area,
    }


def ca(f, arc, thick=0.3, depth=0.1, area=1.0, **kw):
    return frame(f, arc=arc, thick=thick, depth=depth, area=area, **kw)


def test_empty_pullback():
    s = summarize([], [], 0.2)
    assert s == {
        "lumen": {"mla_mm2": None, "mla_frame": None, "n_open_frames": 0},
        "calcium_lesions": [],
        "stent": None,
        "lipid_lesions": [],
    }


def test_mla_and_frame_order_irrelevant():
    rows = [frame(3, lumen=5.0), frame(1, lumen=4.0), frame(2, lumen=None), frame(0, lumen=6.0)]
    s = summarize(rows, [], 0.2)
    assert s["lumen"] == {"mla_mm2": 4.0, "mla_frame": 1, "n_open_frames": 0}


def test_lesion_grouping_with_gaps():
    # calcium in 0-1, gap of 2 (bridged), 4-5, gap of 3 (not bridged), 9
    rows = [frame(f) for f in range(12)]
    for f in (0, 1, 4, 5):
        rows[f] = ca(f, 30.0, area=2.0)
    rows[9] = ca(9, 40.0, area=1.0)
    s = summarize(rows, [], 0.5)
    les = s["calcium_lesions"]
    assert [(x["start_frame"], x["end_frame"]) for x in les] == [(0, 5), (9, 9)]
    assert list(les[0]) == LESION_KEYS
    assert les[0]["length_mm"] == pytest.approx(3.0)
    assert les[1]["length_mm"] == pytest.approx(0.5)
    assert les[0]["volume_mm3"] == pytest.approx(4 * 2.0 * 0.5)
    # with max_gap_frames=1 the first lesion splits
    s1 = summarize(rows, [], 0.5, GeometrySettings(max_gap_frames=1))
    assert [(x["start_frame"], x["end_frame"]) for x in s1["calcium_lesions"]] == [
        (0, 1),
        (4, 5),
        (9, 9),
    ]


def test_score_kind_and_flags():
    fs = 0.2
    # lesion A: 30 frames (6 mm), arc 280, thickness 1.2 -> score 4, macro, arc+thickness flags
    a = [ca(f, 200.0 if f != 10 else 280.0, thick=1.2 if f == 12 else 0.4) for f in range(30)]
    # lesion B: frames 50..59 (2 mm), arc 60, thick 0.3 -> score 0, spotty, no flags
    b = [ca(f, 60.0, thick=0.3, depth=0.05 * (f - 49)) for f in range(50, 60)]
    # lesion C: frames 100..179 (16 mm), arc 100, thick 0.5 (not > 0.5) -> score 1, macro, length flag
    c = [ca(f, 100.0, thick=0.5) for f in range(100, 180)]
    gaps = [frame(f) for f in list(range(30, 50)) + list(range(60, 100))]
    s = summarize(a + b + c + gaps, [], fs)
    la, lb, lc = s["calcium_lesions"]
    assert (la["calcium_score"], la["kind"], la["risk_flags"]) == (
        4,
        "macro",
        ["arc_gt_270", "thickness_gt_1mm"],
    )
    assert la["max_arc_deg"] == 280.0 and la["max_thickness_mm"] == 1.2
    assert (lb["calcium_score"], lb["kind"], lb["risk_flags"]) == (0, "spotty", [])
    assert lb["min_depth_mm"] == pytest.approx(0.05)
    assert lb["length_mm"] == pytest.approx(2.0)
    assert (lc["calcium_score"], lc["kind"], lc["risk_flags"]) == (1, "macro", ["length_gt_15mm"])
    assert lc["length_mm"] == pytest.approx(16.0)


def test_score_thresholds_are_settings():
    rows = [ca(f, 150.0, thick=0.45) for f in range(3)]
    assert summarize(rows, [], 0.2)["calcium_lesions"][0]["calcium_score"] == 0
    st = GeometrySettings(score_arc_deg=120.0, score_thickness_mm=0.4, score_length_mm=0.5)
    assert summarize(rows, [], 0.2, st)["calcium_lesions"][0]["calcium_score"] == 4


def test_score_borderline_names_the_criteria_near_their_cut_offs():
    # 26 frames at 0.2 mm = 5.2 mm (cut-off 5, margin 0.4); arc 185 (180, 10); thick 0.45 (0.5, 0.1)
    rows = [ca(f, 185.0, thick=0.45) for f in range(26)]
    (les,) = summarize(rows, [], 0.2)["calcium_lesions"]
    assert les["calcium_score"] == 3  # arc 2 + length 1; thickness 0.45 scores nothing
    assert les["score_borderline"] == ["arc", "thickness", "length"]
    # far from every cut-off: 3 frames (0.6 mm), arc 60, thickness 0.9
    (clear,) = summarize([ca(f, 60.0, thick=0.9) for f in range(3)], [], 0.2)["calcium_lesions"]
    assert clear["score_borderline"] == []
    # just outside the margins: arc 169.5 and 190.5, thickness 0.39 and 0.61
    for arc, thick in ((169.5, 0.39), (190.5, 0.61)):
        (les,) = summarize([ca(f, arc, thick=thick) for f in range(3)], [], 0.2)["calcium_lesions"]
        assert les["score_borderline"] == [], (arc, thick)
    # length 4.6 and 5.4 mm (23 and 27 frames of 0.2 mm): on the margin, inclusive both ways
    # (27 x 0.2 is 5.4000000000000004 in floats), 4.4 and 5.6 mm outside
    for n, near in ((22, False), (23, True), (27, True), (28, False)):
        (les,) = summarize([ca(f, 60.0, thick=0.9) for f in range(n)], [], 0.2)["calcium_lesions"]
        assert les["score_borderline"] == (["length"] if near else []), n
    # the margins are settings; 0 turns a criterion off
    st = GeometrySettings(score_margin_arc_deg=0.0, score_margin_thickness_mm=0.2)
    (les,) = summarize([ca(f, 180.0, thick=0.65) for f in range(3)], [], 0.2, st)["calcium_lesions"]
    assert les["score_borderline"] == ["thickness"]


def test_score_borderline_without_a_value_and_bad_margins():
    from octseg.core.errors import InputError
    from octseg.geometry.summary import score_borderline

    s = GeometrySettings()
    assert score_borderline(None, None, 5.0, s) == ["length"]
    with pytest.raises(InputError, match="score_margin_arc_deg"):
        GeometrySettings(score_margin_arc_deg=-1.0)


def test_sparse_labels_volume_weights():
    # label frames every 5 pullback frames; calcium at 10, 15, 20 -> one lesion 10..20
    rows = [frame(f) for f in range(0, 40, 5)]
    for i, f in enumerate((10, 15, 20)):
        rows[f // 5] = ca(f, 50.0, area=float(i + 1))
    s = summarize(rows, [], 0.1)
    (les,) = s["calcium_lesions"]
    assert (les["start_frame"], les["end_frame"]) == (10, 20)
    assert les["length_mm"] == pytest.approx(11 * 0.1)
    # w = 5, 5, 1 pullback frames
    assert les["volume_mm3"] == pytest.approx((1 * 5 + 2 * 5 + 3 * 1) * 0.1)


def stent_pullback(msa=6.0, ref_d=9.0, ref_p=10.0, mal_frames=(), mal_dist=0.3, base=7.0):
    """Frames 0..79 at 0.25 mm; stent in 30..49; big lumens > 5 mm outside the edges ignored."""
    rows, struts = [], []
    for f in range(80):
        lumen = 12.0 if (f < 10 or f >= 70) else base  # more than 20 frames (5 mm) away
        if f == 25:
            lumen = ref_d
        if f == 54:
            lumen = ref_p
        if 30 <= f < 50:
            area = msa if f == 41 else msa + 1.0
            n_mal = 1 if f in mal_frames else 0
            rows.append(
                frame(
                    f,
                    lumen=area + 0.5,
                    n_struts=8,
                    stent=area,
                    n_mal=n_mal,
                    mal_area=0.2 if n_mal else 0.0,
                )
            )
            for k in range(8):
                d = mal_dist if (n_mal and k == 0) else 0.02
                struts.append(
                    {
                        "frame": f,
                        "angle_deg": 45.0 * k,
                        "x_mm": 0.0,
                        "y_mm": 0.0,
                        "distance_mm": d,
                        "malapposed": d > 0.09,
                    }
                )
        else:
            rows.append(frame(f, lumen=lumen, n_struts=1 if f == 55 else 0))
    return rows, struts


def test_stent_segment_msa_references_expansion():
    rows, struts = stent_pullback()
    st = summarize(rows, struts, 0.25)["stent"]
    assert list(st) == STENT_KEYS
    assert (st["start_frame"], st["end_frame"]) == (30, 49)
    assert st["length_mm"] == pytest.approx(5.0)
    assert (st["msa_mm2"], st["msa_frame"]) == (6.0, 41)
    # frame0 distal: distal reference before frame 30, proximal after frame 49
    assert st["reference_distal_area_mm2"] == 9.0
    assert st["reference_proximal_area_mm2"] == 10.0
    assert st["expansion"] == pytest.approx(6.0 / 9.5)
    assert st["underexpanded"] is True  # 0.63 < 0.8
    assert st["n_struts"] == 160 and st["n_malapposed"] == 0
    assert st["malapposed_percent"] == 0.0
    assert st["malapposition_length_mm"] == 0.0
    assert st["significant_malapposition"] is False
    # reversed orientation swaps the references
    st2 = summarize(rows, struts, 0.25, GeometrySettings(frame0_is_distal=False))["stent"]
    assert st2["reference_distal_area_mm2"] == 10.0
    assert st2["reference_proximal_area_mm2"] == 9.0
    json.dumps(clean_json(st))


def test_stent_well_expanded():
    rows, struts = stent_pullback(msa=8.0, ref_d=9.0, ref_p=9.5)
    st = summarize(rows, struts, 0.25)["stent"]
    assert st["expansion"] == pytest.approx(8.0 / 9.25)
    assert st["underexpanded"] is False


def test_stent_small_msa_underexpanded_even_if_expanded():
    rows, struts = stent_pullback(msa=4.8, ref_d=5.5, ref_p=5.5, base=5.0)
    st = summarize(rows, struts, 0.25)["stent"]
    assert st["expansion"] == pytest.approx(4.8 / 5.5)
    assert st["underexpanded"] is True


def test_malapposition_length_volume_significance():
    rows, struts = stent_pullback(mal_frames=(35, 36, 37, 38, 39, 43), mal_dist=0.3)
    st = summarize(rows, struts, 0.25)["stent"]
    assert st["n_malapposed"] == 6
    assert st["malapposed_percent"] == pytest.approx(100 * 6 / 160)
    assert st["max_malapposition_mm"] == pytest.approx(0.3)
    assert st["malapposition_length_mm"] == pytest.approx(5 * 0.25)
    assert st["malapposition_volume_mm3"] == pytest.approx(6 * 0.2 * 0.25)
    assert st["significant_malapposition"] is True  # 1.25 mm long
    rows, struts = stent_pullback(mal_frames=(35, 37), mal_dist=0.3)
    st = summarize(rows, struts, 0.25)["stent"]
    assert st["malapposition_length_mm"] == pytest.approx(0.25)
    assert st["significant_malapposition"] is False
    rows, struts = stent_pullback(mal_frames=(35,), mal_dist=0.45)
    assert summarize(rows, struts, 0.25)["stent"]["significant_malapposition"] is True


def test_stent_gap_bridging_and_no_reference():
    rows = [frame(f, n_struts=4, stent=7.0) for f in range(10)]
    rows[4] = frame(4, n_struts=2)
    rows[5] = frame(5, n_struts=0)
    st = summarize(rows, [], 0.2)["stent"]
    assert (st["start_frame"], st["end_frame"]) == (0, 9)
    assert st["reference_distal_area_mm2"] is None and st["reference_proximal_area_mm2"] is None
    assert st["expansion"] is None and st["underexpanded"] is False
    assert st["n_struts"] == 0 and st["malapposed_percent"] is None


def test_bad_input():
    with pytest.raises(ValueError, match="frame_spacing_mm"):
        summarize([frame(0)], [], 0.0)
    with pytest.raises(ValueError, match="repeat"):
        summarize([frame(0), frame(0)], [], 0.1)
