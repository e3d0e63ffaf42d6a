"""Plaque in the inference outputs: report panel and table, key frame at the thinnest cap,
overlay drawing, DICOM-SEG segment codes."""

from __future__ import annotations

import io

import numpy as np
from geometry_scenes import LUM, label_file, plaque_scene, scene
from PIL import Image

from octseg.geometry import measure_labels
from octseg.report import overlay
from octseg.report import pullback as report


def _measured():
    frames = [
        plaque_scene("polar", 0.15, 0.0, 60.0),
        plaque_scene("polar", 0.04, 350.0, 110.0),  # TCFA
        plaque_scene("polar", 0.09, 10.0, 100.0),
        scene("polar", lumen=LUM),
    ]
    return frames, measure_labels(label_file(frames, "polar"))


def _height(png: bytes) -> int:
    return Image.open(io.BytesIO(png)).size[1]


def test_key_frame_at_the_thinnest_cap():
    _, m = _measured()
    picks = dict(overlay.choose_frames(m.frames, m.summary))
    assert picks[1].endswith("thinnest cap (TCFA)")
    no_plaque = {**m.summary, "lipid_lesions": []}
    assert all("cap" not in r for _, r in overlay.choose_frames(m.frames, no_plaque))


def test_longitudinal_plot_gets_a_lipid_panel_only_with_lipid():
    _, m = _measured()
    with_lipid = report.longitudinal_png(m.frames, [], m.summary, 0.2)
    plain = [{k: v for k, v in r.items() if k != "lipid_arc_deg"} for r in m.frames]
    without = report.longitudinal_png(plain, [], m.summary, 0.2)
    assert _height(with_lipid) > 1.2 * _height(without)


def _report_kwargs(m) -> dict:
    """render_report's arguments (but the model) for measurements ``m`` of 4 polar frames."""
    return dict(
        pullback_id="p",
        info={"frame_spacing_mm": 0.2, "frames": 4, "space": "polar"},
        frames=m.frames,
        struts=[],
        summary=m.summary,
        overlays=[],
    )


def test_report_lipid_section():
    _, m = _measured()
    kw = _report_kwargs(m)
    html = report.render_report(model={"classes": [0, 1, 5, 6]}, **kw)
    assert "Lipid and fibrous cap" in html and "(1 frames)" in html
    # a 5-class model cannot see lipid: no "No lipid detected" claim
    empty = {**m.summary, "lipid_lesions": []}
    html = report.render_report(model={"classes": [0, 1, 2, 3, 4]}, **{**kw, "summary": empty})
    assert "Lipid and fibrous cap" not in html
    html = report.render_report(model={"classes": [0, 1, 5, 6]}, **{**kw, "summary": empty})
    assert "No lipid detected" in html


def test_overlay_draws_plaque_and_marks_the_thinnest_cap():
    frames, m = _measured()
    img = np.full(frames[1].shape, 0.5, np.float32)
    kw = dict(space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2, frame=1, size=256)
    with_plaque = overlay.render_overlay(img, frames[1], frame_row=m.frames[1], **kw)
    lumen_only = np.where(frames[1] >= 5, 0, frames[1]).astype(np.uint8)
    plain = overlay.render_overlay(img, lumen_only, frame_row=m.frames[3], **kw)
    a = np.asarray(Image.open(io.BytesIO(with_plaque)).convert("RGB")).astype(int)
    b = np.asarray(Image.open(io.BytesIO(plain)).convert("RGB")).astype(int)
    magenta = (a[..., 0] > 200) & (a[..., 1] < 120) & (a[..., 2] > 200)
    assert magenta.sum() > 50  # cap outline and the thinnest-cap marker
    assert not ((b[..., 0] > 200) & (b[..., 1] < 120) & (b[..., 2] > 200)).any()
    assert "min cap" in overlay._plaque_text(m.frames[1])[1]


def test_dicom_seg_codes_for_plaque():
    from octseg.io.dicomseg import _SCT_CODES

    assert _SCT_CODES["lipid"][1][1].lower().startswith("lipid")
    assert "fibrous" in _SCT_CODES["fibrous_cap"][1][1].lower()


def test_dicom_seg_has_plaque_segments_only_with_plaque(tmp_path):
    from dicom_helpers import _labels, _source

    from octseg.io.dicomseg import read_dicom_seg, write_dicom_seg

    src = _source(tmp_path, "polar")
    lab = _labels()
    lab[0, 10:12, :] = 5
    lab[0, 12:14, :] = 6
    write_dicom_seg(tmp_path / "seg.dcm", lab, src)
    back, names = read_dicom_seg(tmp_path / "seg.dcm", 4)
    np.testing.assert_array_equal(back, lab)
    assert names[5] == "fibrous_cap" and names[6] == "lipid"
    write_dicom_seg(tmp_path / "old.dcm", _labels(), src)
    assert sorted(read_dicom_seg(tmp_path / "old.dcm", 4)[1]) == [1, 2, 3, 4]


def test_report_names_every_member_of_an_ensemble():
    _, m = _measured()
    kw = _report_kwargs(m)
    # as infer.py describes it, and as a reviewed pullback copies the manifest's list
    for model in (
        {"checkpoint": "/r/a.ckpt + /r/b.ckpt", "ensemble": ["/r/a.ckpt", "/r/b.ckpt"]},
        {"checkpoint": ["/r/a.ckpt", "/r/b.ckpt"]},
    ):
        assert "(model a.ckpt + b.ckpt," in report.render_report(model=model, **kw)
    weighted = {"checkpoint": ["/r/a.ckpt", "/r/b.ckpt"], "ensemble_weights": {"calcium": [1, 0]}}
    assert "(model a.ckpt + b.ckpt; calcium weighted [1, 0]," in report.render_report(
        model=weighted, **kw
    )
