"""The lumen contour API of octseg.geometry (issue 13 item 6): the same numbers as the product's
frames.csv, usable where the hybrid/real-data code used its own implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_scenes import PS, label_file, scene

from octseg.geometry import GeometrySettings, frame_lumen, lumen_contours, measure_labels
from octseg.hybrid.insert import lumen_geometry

SPACES = ["cartesian", "polar"]
COLS = (
    "lumen_area_mm2",
    "lumen_mean_diameter_mm",
    "lumen_min_diameter_mm",
    "lumen_max_diameter_mm",
    "lumen_centroid_x_mm",
    "lumen_centroid_y_mm",
)


def frames(space):
    a = scene(space, ellipse=(0.15, -0.1, 0.9, 0.7), shadow=(40, 55, 0.5), struts=[(0.6, 200)])
    b = scene(space, lumen=(-0.1, 0.2, 0.8))
    b[np.hypot(*np.meshgrid(np.arange(b.shape[0]), np.arange(b.shape[1]), indexing="ij")) < 3] = 0
    b[30:33, 40:43] = 0  # a speck
    return [a, b, np.zeros_like(a)]


@pytest.mark.parametrize("space", SPACES)
def test_same_numbers_as_frames_csv(space):
    fr = frames(space)
    rows = measure_labels(label_file(fr, space)).frames
    lc = lumen_contours(np.stack(fr), space, PS)
    assert lc.has_lumen.tolist() == [True, True, False]
    for i in (0, 1):
        cols = lc.frame(i).columns()
        for key in COLS:  # two code paths for rho (0.1-degree profile vs 720 directions)
            assert cols[key] == pytest.approx(rows[i][key], abs=PS / 2, rel=1e-3), key
    assert rows[2]["lumen_area_mm2"] is None and math.isnan(float(lc.centroid[2, 0]))


@pytest.mark.parametrize("space", SPACES)
def test_rho_and_point_of_an_off_centre_circle(space):
    c, r = (0.18, -0.25), 0.6
    g = frame_lumen(scene(space, lumen=(*c, r)), PS, space)
    phi = np.linspace(0, 2 * np.pi, 37)
    assert np.abs(g.rho(phi) - r).max() < 2 * PS
    assert np.allclose(g.centroid, c, atol=PS)
    assert g.area_mm2 == pytest.approx(math.pi * r * r, rel=0.02)
    p = g.point(1.0, g.rho(1.0))
    assert math.hypot(p[0] - c[0], p[1] - c[1]) == pytest.approx(r, abs=2 * PS)
    batch = lumen_contours(scene(space, lumen=(*c, r)), space, PS).rho(phi)
    assert np.abs(batch.numpy()[0] - r).max() < 2 * PS


def test_replaces_the_hybrid_lumen_geometry():
    """On a clean polar frame, without smoothing, the product contour is the hybrid module's
    contour ray for ray; with the default smoothing the area agrees within 0.5 %."""
    lab = scene("polar", ellipse=(0.1, 0.2, 1.0, 0.8))
    old = lumen_geometry(lab, PS)
    y, x = old.contour[:, 0], old.contour[:, 1]
    old_area = 0.5 * abs((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())
    raw = frame_lumen(lab, PS, settings=GeometrySettings(contour_smoothing_rays=0))
    assert np.allclose(raw.edge_mm, old.edge_mm, atol=1e-6)
    assert np.allclose(raw.contour, old.contour, atol=1e-6)
    assert raw.area_mm2 == pytest.approx(old_area, rel=1e-5)
    assert np.allclose(raw.centroid, old.centroid, atol=1e-6)
    phi = np.linspace(0, 2 * np.pi, 73)
    assert np.abs(raw.rho(phi) - old.rho(phi)).max() < PS / 2
    assert frame_lumen(lab, PS).area_mm2 == pytest.approx(old_area, rel=5e-3)


def test_frame_without_lumen_raises():
    with pytest.raises(ValueError, match="no lumen"):
        frame_lumen(np.zeros((64, 40), np.uint8), PS)
