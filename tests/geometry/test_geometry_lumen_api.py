"""The lumen contour API of octseg.geometry (issue 13 item 6): the same numbers as the product's
frames.csv, usable where the hybrid/real-data code used its own implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_scenes import PS, label_file, scene

from octseg.datasets.hybrid.insert import lumen_geometry
from octseg.geometry import GeometrySettings, frame_lumen, lumen_contours, measure_labels

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


def plain_polar_contour(lab, ps):
    """The contour the hybrid module used to compute on its own (first non-lumen sample per
    A-line, no filling, no smoothing): edge radius per A-line and shoelace area/centroid."""
    lum = np.isin(lab, (1, 3))
    a, r = lum.shape
    k = np.where(lum.all(1), r, np.argmin(lum, 1))
    edge = np.clip((k - 0.5) * ps, 0, None)
    th = np.arange(a) * (2 * np.pi / a)
    y, x = edge * np.sin(th), edge * np.cos(th)
    y1, x1 = np.roll(y, -1), np.roll(x, -1)
    cross = x * y1 - x1 * y
    a2 = cross.sum()
    c = np.array([((y + y1) * cross).sum(), ((x + x1) * cross).sum()]) / (3 * a2)
    return edge, 0.5 * abs(a2), c


def test_replaces_the_hybrid_lumen_geometry():
    """On a clean polar frame, without smoothing, the API's contour is the one the hybrid
    module computed with its own code, ray for ray; with the default smoothing the area agrees
    within 0.5 %; and the hybrid module now places its inserts about this very contour."""
    lab = scene("polar", ellipse=(0.1, 0.2, 1.0, 0.8))
    edge, area, c = plain_polar_contour(lab, PS)
    raw = frame_lumen(lab, PS, settings=GeometrySettings(contour_smoothing_rays=0))
    assert np.allclose(raw.edge_mm, edge, atol=1e-6)
    assert raw.area_mm2 == pytest.approx(area, rel=1e-5)
    assert np.allclose(raw.centroid, c, atol=1e-6)
    default = frame_lumen(lab, PS)
    assert default.area_mm2 == pytest.approx(area, rel=5e-3)
    hyb = lumen_geometry(lab, PS)
    assert np.allclose(hyb.edge_mm, default.edge_mm) and np.allclose(hyb.centroid, default.centroid)


def test_frame_without_lumen_raises():
    with pytest.raises(ValueError, match="no lumen"):
        frame_lumen(np.zeros((64, 40), np.uint8), PS)
