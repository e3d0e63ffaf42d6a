"""The pullback report's calcium lesion table: the score, its risk flags, and the criteria whose
value lies near the score's cut-off (summary.json's ``score_borderline``)."""

from __future__ import annotations

from octseg.geometry.summary import summarize
from octseg.report.pullback import _cards, _lesion_table


def _frame(f, arc, thick):
    return {
        "frame": f,
        "position_mm": None,
        "lumen_area_mm2": 8.0,
        "calcium_arc_deg": arc,
        "calcium_max_thickness_mm": thick,
        "calcium_min_depth_mm": 0.1,
        "calcium_area_mm2": 1.0,
    }


def test_a_lesion_near_the_arc_cut_off_says_so_and_a_clear_one_does_not():
    near = [_frame(f, 178.0, 0.8) for f in range(3)]  # arc 2° under 180: score 1, not 3
    gap = [_frame(f, None, None) | {"calcium_area_mm2": None} for f in range(3, 20)]
    clear = [_frame(f, 60.0, 0.2) for f in range(20, 23)]
    lesions = summarize(near + gap + clear, [], 0.2)["calcium_lesions"]
    assert [les["score_borderline"] for les in lesions] == [["arc"], []]
    table = _lesion_table(lesions, 0.2)
    rows = table.split("<tr>")[2:]  # the header, then one row per lesion
    assert "near cut-off: arc" in rows[0]
    assert "near cut-off" not in rows[1]
    summary = {"lumen": {}, "calcium_lesions": lesions, "stent": None}
    assert "1 near a score cut-off" in _cards(summary, [], 0.2)
    summary["calcium_lesions"] = lesions[1:]
    assert "near a score cut-off" not in _cards(summary, [], 0.2)


def test_outputs_without_the_key_render_as_with_an_empty_list():
    les = {"start_frame": 0, "end_frame": 2, "calcium_score": 1, "risk_flags": []}
    assert _lesion_table([les], 0.2) == _lesion_table([les | {"score_borderline": []}], 0.2)
    # a CSV round trip gives text: read as the list it was
    text = _lesion_table([les | {"score_borderline": "arc;thickness"}], 0.2)
    assert text == _lesion_table([les | {"score_borderline": ["arc", "thickness"]}], 0.2)
    assert "near cut-off: arc, thickness" in text
