"""The per-frame NumPy reference (benchmarks/reference.py, the geometry benchmark's cross-check)
against the batched torch geometry where the contour's margins decide the reading: a lumen bulge
on the A-lines just beside a strut's or the guidewire's shadow (what a prediction that spills
lumen into a shadow's edge looks like). Both paths must interpolate the same rays, so they agree
within the benchmark's tolerances (issue 4's) at every margin, and the margin moves both."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_scenes import PS, grid, polar_about, scene

from benchmarks.geometry import cross_check, tolerances
from benchmarks.reference import measure_reference
from octseg.geometry import GeometrySettings, measure_frames

LUMEN_MM = 0.7


def _bulge(lab: np.ndarray, space: str, arc_deg: tuple[float, float], to_mm: float):
    """Lumen pushed out to ``to_mm`` from the catheter over the directions ``arc_deg``."""
    y, x = grid(space)
    rho, phi = polar_about(y, x, (0.0, 0.0))
    out = lab.copy()
    out[(phi >= arc_deg[0]) & (phi < arc_deg[1]) & (rho < to_mm) & (out == 0)] = 1
    return out


def _frames(space: str = "polar") -> np.ndarray:
    """A strut on the wall at 90° (its shadow to about 91.7°) with a bulge 92-95° beside it
    (partly inside the 3° strut margin, outside the 1° shadow margin), and a guidewire shadow at
    200-215° with a bulge 1-4° past its edge."""
    lumen = (0.0, 0.0, LUMEN_MM)
    strut = scene(space, lumen=lumen, struts=[(LUMEN_MM - 0.01, 90.0)])
    wire = scene(space, lumen=lumen, shadow=(200.0, 215.0, 0.3))
    to_mm = 1.4 if space == "polar" else 1.2  # inside the frame: 1.5 mm deep, 2.56 mm wide
    return np.stack(
        [_bulge(strut, space, (92.0, 95.0), to_mm), _bulge(wire, space, (216.0, 219.0), to_mm)]
    )


def _rows(frames, settings, space: str, path: int) -> list[dict]:
    """Per-frame rows by the torch (0) or the reference (1) path."""
    if path == 0:
        return measure_frames(
            frames, space=space, pixel_spacing_mm=PS, frame_spacing_mm=0.2, settings=settings
        ).frames
    return [row for row, _ in measure_reference(frames, space, PS, settings=settings)]


@pytest.mark.parametrize("space", ["polar", "cartesian"])
@pytest.mark.parametrize(
    "margins",
    [(1.0, 3.0), (1.0, 1.0), (0.0, 0.0), (1.0, 6.0), (6.0, 6.0)],
    ids=lambda m: f"{m[0]}-{m[1]}",
)
def test_reference_interpolates_the_same_margins(margins, space):
    frames = _frames(space)
    s = GeometrySettings(shadow_margin_deg=margins[0], strut_margin_deg=margins[1])
    ref = measure_reference(frames, space, PS, settings=s)  # (row, struts) per frame
    check = cross_check(_rows(frames, s, space, 0), ref, tolerances(space, PS, frames.shape[1]))
    assert check["lumen_area_mm2"]["missing_in_one"] == 0
    bad = {k: v for k, v in check.items() if not v["ok"]}
    assert not bad, bad


def _areas(space: str, path: int, shadow: float, strut: float) -> list[float]:
    """Lumen areas of the two frames by the torch (0) or the reference (1) path."""
    s = GeometrySettings(shadow_margin_deg=shadow, strut_margin_deg=strut)
    return [r["lumen_area_mm2"] for r in _rows(_frames(space), s, space, path)]


@pytest.mark.parametrize("space", ["polar", "cartesian"])
@pytest.mark.parametrize("path", [0, 1], ids=["torch", "reference"])
def test_the_margins_move_both_paths(path, space):
    """The strut margin (1° -> 3°) interpolates the strut frame's bulge away and leaves the wire
    frame alone; the shadow margin (0° -> 6°) does so for the wire frame's bulge: so the test
    above compares readings that depend on the margins, not two copies of one circle."""
    narrow, strut3 = _areas(space, path, 1.0, 1.0), _areas(space, path, 1.0, 3.0)
    none, wide = _areas(space, path, 0.0, 0.0), _areas(space, path, 6.0, 6.0)
    circle = np.pi * LUMEN_MM**2
    assert strut3[0] == pytest.approx(circle, rel=0.02) and narrow[0] > strut3[0] * 1.02
    assert strut3[1] == pytest.approx(narrow[1], rel=1e-6)
    assert wide[1] == pytest.approx(circle, rel=0.02) and none[1] > wide[1] * 1.01
