"""The overlay's calcium thickness: the number in the header and a caliper across the calcium on
the ray where the geometry measured it."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
from geometry_scenes import PS, label_file, scene
from PIL import Image

from octseg.geometry import measure_labels
from octseg.report import overlay

matplotlib.use("Agg")
LUM = (0.0, 0.0, 0.55)


def _frame():
    """A thin lesion at 20-120° and a 0.35 mm thick one at 200-230° (polar, 0.01 mm)."""
    lab = scene("polar", lumen=LUM, calcium=[(0.7, 0.9, 20.0, 120.0), (0.7, 1.05, 200.0, 230.0)])
    (row,) = measure_labels(label_file([lab], "polar")).frames
    return lab, row


@pytest.mark.parametrize("space", ["polar", "cartesian"])
@pytest.mark.parametrize("lumen", [LUM, (0.15, -0.1, 0.55)], ids=["centred", "off-centre"])
def test_caliper_spans_the_thickest_lesion_on_its_ray(space, lumen):
    """The caliper lies on the geometry's ray from the lumen centroid (not the catheter) in
    both spaces, across the thick lesion and not the thin one."""
    calcium = [(0.7, 0.9, 20.0, 120.0), (0.7, 1.05, 200.0, 230.0)]
    lab = scene(space, lumen=lumen, calcium=calcium)
    (row,) = measure_labels(label_file([lab], space)).frames
    img, cart, ps, c = overlay.to_display(
        np.zeros(lab.shape, np.float32), lab, space=space, pixel_spacing_mm=PS,
        catheter_center=None, size=512,
    )  # fmt: skip
    (y0, x0), (ys, xs) = overlay.ray_hits(
        cart == overlay.CALCIUM, ps, c, row, "calcium_max_thickness_angle_deg"
    )
    length = np.hypot(ys[-1] - ys[0], xs[-1] - xs[0]) * ps
    assert abs(length - 0.35) < 3 * ps  # the caliper spans the thick lesion, not the thin one
    mid = np.degrees(np.arctan2(ys.mean() - y0, xs.mean() - x0)) % 360
    assert 200 <= mid <= 230
    no_angle = overlay.ray_hits(
        cart == overlay.CALCIUM, ps, c, {}, "calcium_max_thickness_angle_deg"
    )
    assert no_angle is None


def test_header_gives_the_thickness_and_the_overlay_draws_the_caliper():
    lab, row = _frame()
    arc, thick = row["calcium_arc_deg"], row["calcium_max_thickness_mm"]
    assert abs(thick - 0.35) <= 0.02
    assert overlay._key_numbers(row)[1] == f"Ca arc {arc:.0f}°, {thick:.2f} mm thick"
    kw = dict(space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2, frame=0, size=256)
    img = np.full(lab.shape, 0.0, np.float32)
    with_caliper = overlay.render_overlay(img, lab, frame_row=row, **kw)
    without = overlay.render_overlay(
        img, lab, frame_row={**row, "calcium_max_thickness_angle_deg": None}, **kw
    )
    a = np.asarray(Image.open(io.BytesIO(with_caliper)).convert("RGB")).astype(int)
    b = np.asarray(Image.open(io.BytesIO(without)).convert("RGB")).astype(int)
    white_a, white_b = (x.min(-1) > 230 for x in (a, b))
    assert white_a.sum() > white_b.sum() + 10  # the caliper's white line and end points


def test_caliper_takes_the_longest_stretch_of_calcium_on_the_ray():
    ys = np.array([10, 10, 11, 12, 20, 21, 22, 23, 24, 30])  # 3 stretches: 4, 5 and 1 pixels
    xs = np.array([5, 6, 6, 7, 15, 16, 17, 18, 19, 25])
    assert overlay.longest_stretch(ys, xs) == ([20, 24], [15, 19])
    assert overlay.longest_stretch(ys[:4], xs[:4]) == ([10, 12], [5, 7])  # diagonal steps: one
