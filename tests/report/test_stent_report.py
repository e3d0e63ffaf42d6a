"""Struts outside the stented segment in the pullback report: drawn apart, never picked as the
frame of maximum malapposition (a lone 'strut' per frame is most often a bright edge, e.g. a
calcified nodule's rim, and the summary's malapposition counts only the segment's struts)."""

from __future__ import annotations

import numpy as np
import pytest

from octseg.geometry.summary import in_stent
from octseg.report.overlay import choose_frames
from octseg.report.pullback import _strut_panel

STENT = {"start_frame": 2, "end_frame": 8}


def test_in_stent_is_the_summary_segment_inclusive():
    assert [in_stent(f, STENT) for f in (1, 2, 8, 9)] == [False, True, True, False]
    assert not in_stent(3, None) and not in_stent(3, {})


def _frames(malapposed_at):
    return [
        {
            "frame": f,
            "lumen_area_mm2": 5.0,
            "n_malapposed": int(f in malapposed_at),
            "max_malapposition_mm": 0.9 if f == 9 else 0.3,
        }
        for f in range(12)
    ]


def test_the_max_malapposition_frame_is_picked_inside_the_stent_only():
    frames = _frames({5, 9})  # frame 9 (outside) reads the larger distance
    with_stent = choose_frames(frames, {"stent": STENT})
    assert (5, "max malapposition") in with_stent
    assert all(f != 9 for f, _ in with_stent)
    # a native vessel: struts the model called on a nodule's rim make no malapposition pick
    assert all("malapposition" not in why for _, why in choose_frames(frames, {"stent": None}))


@pytest.mark.parametrize("stent", [STENT, None])
def test_strut_panel_draws_struts_outside_the_stent_apart(stent):
    from matplotlib.figure import Figure

    struts = [
        {"frame": 3, "distance_mm": 0.0, "malapposed": 0},
        {"frame": 4, "distance_mm": 0.3, "malapposed": 1},
        {"frame": 10, "distance_mm": 0.4, "malapposed": 1},  # outside the segment
    ]
    ax = Figure().subplots()
    _strut_panel(ax, struts, 0.2, 0.09, stent)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    points = {lab: c.get_offsets().tolist() for lab, c in zip(labels, ax.collections, strict=True)}
    if stent:
        assert labels == ["apposed", "malapposed", "outside the stent (1; not counted)"]
        assert points["malapposed"] == [[pytest.approx(0.8), 0.3]]
        assert points["outside the stent (1; not counted)"] == [[pytest.approx(2.0), 0.4]]
    else:  # no stent: every strut is outside it, none drawn as malapposed
        assert labels == ["outside the stent (3; not counted)"]
        assert len(points[labels[0]]) == 3


def _overlay(stented: bool):
    """An overlay of a disc lumen with eight struts on a 0.6 mm ring, the first three malapposed,
    as pixels (RGB)."""
    import io
    import math

    import numpy as np
    from PIL import Image

    from octseg.core.classes import LUMEN
    from octseg.report.overlay import render_overlay

    yy, xx = np.mgrid[:101, :101]
    lab = np.where(np.hypot(yy - 50, xx - 50) <= 30, LUMEN, 0).astype(np.uint8)
    struts = [
        {"frame": 3, "x_mm": 0.6 * math.cos(t), "y_mm": 0.6 * math.sin(t), "malapposed": int(t < 2)}
        for t in np.linspace(0, 6, 8)
    ]
    row = {"frame": 3, "lumen_area_mm2": 1.1, "n_struts": 8, "n_malapposed": 3}
    png = render_overlay(
        lab / 4.0, lab, space="cartesian", pixel_spacing_mm=0.02, frame_spacing_mm=0.2,
        catheter_center=(50, 50), frame=3, frame_row=row | {"max_malapposition_mm": 0.2},
        struts=struts, stented=stented,
    )  # fmt: skip
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _near(px, rgb, tol=25):
    """Pixels within ``tol`` of colour ``rgb`` in the image area (above the legend)."""
    return (abs(px[:560] - np.array(rgb)).max(axis=-1) <= tol).sum()


def test_overlay_outside_the_stent_draws_hollow_grey_struts_only():
    px = {s: _overlay(s) for s in (True, False)}
    red, grey, green = (0xFF, 0x2D, 0x55), (0x9A, 0x9A, 0x9A), (0x39, 0xFF, 0x14)
    assert _near(px[True], red) > 50 and _near(px[False], red) == 0  # malapposed struts
    assert _near(px[True], green) > 50 and _near(px[False], green) == 0  # the stent contour
    assert _near(px[False], grey, tol=12) > _near(px[True], grey, tol=12) + 50  # hollow struts


def test_draw_struts_outside_the_stent_is_one_hollow_grey_group():
    import math

    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from octseg.report.overlay import OUTSIDE_COLOR, _draw_struts

    struts = [
        {"x_mm": 0.6 * math.cos(t), "y_mm": 0.6 * math.sin(t), "malapposed": 1}
        for t in np.linspace(0, 6, 8)
    ]
    for min_struts, groups in ((None, 1), (3, 2)):
        ax = Figure().subplots()
        _draw_struts(ax, struts, {}, 0.02, (50.0, 50.0), min_struts)
        assert len(ax.collections) == groups  # with a stent: apposed and malapposed dots
        if min_struts is None:
            (dots,) = ax.collections
            assert dots.get_facecolors().size == 0 or dots.get_facecolors()[:, 3].max() == 0
            assert tuple(dots.get_edgecolors()[0]) == to_rgba(OUTSIDE_COLOR)
            assert not ax.lines  # no stent contour through them
        else:
            assert ax.lines  # the stent contour


def test_key_numbers_and_legend_outside_the_stent():
    from matplotlib.figure import Figure

    from octseg.report.overlay import _key_numbers, _legend

    row = {"lumen_area_mm2": 1.1, "stent_area_mm2": 1.0, "n_struts": 8, "n_malapposed": 3}
    row["max_malapposition_mm"] = 0.2
    assert _key_numbers(row, False) == ["Lumen 1.10 mm²", "8 strut(s) outside the stent"]
    assert _key_numbers(row, True)[1:] == ["Stent 1.00 mm²", "Malapposed 3 (max 0.20 mm)"]
    labels = {}
    for outside in (False, True):
        fig = Figure()
        _legend(fig, plaque=False, outside=outside)
        labels[outside] = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[True] == ["lumen", "calcium", "max thickness", "outside the stent"]
    assert "malapposed strut" in labels[False] and "outside the stent" not in labels[False]


def test_overlay_jobs_mark_frames_outside_the_stent():
    import numpy as np

    from octseg.report.overlay import overlay_jobs

    class Pullback:  # what overlay_jobs reads of a pullback
        space, pixel_spacing_mm, frame_spacing_mm, catheter_center = "cartesian", 0.02, 0.2, None

        def read(self, start, stop):
            return np.zeros((stop - start, 8, 8), np.float32)

    frames = _frames({5})
    jobs = overlay_jobs(
        Pullback(), np.zeros((12, 8, 8), np.uint8), frames, [], {"stent": STENT}, requested=[1, 5]
    )
    assert [(j["frame"], j["stented"]) for j in jobs] == [(1, False), (5, True)]
