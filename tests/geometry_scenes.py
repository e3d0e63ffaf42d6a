"""Analytic label-map scenes for the geometry tests: shapes defined in mm, rasterised onto a
Cartesian or a catheter-centred polar grid (pixel/sample centres)."""

from __future__ import annotations

import numpy as np

from octseg.core.classes import FIBROUS_CAP, LIPID
from octseg.io.labels import LabelFile

PS = 0.01  # mm per pixel / depth sample
CART = 256  # Cartesian frame size (pixels)
POLAR = (504, 150)  # A-lines, depth samples


def grid(space: str, shape=None, ps: float = PS):
    """(y, x) mm from the catheter of every pixel/sample of one frame."""
    if space == "cartesian":
        h, w = shape or (CART, CART)
        c = ((h - 1) / 2, (w - 1) / 2)
        i, j = np.mgrid[0:h, 0:w].astype(float)
        return (i - c[0]) * ps, (j - c[1]) * ps
    a, r = shape or POLAR
    th = 2 * np.pi * np.arange(a) / a
    rad = np.arange(r) * ps
    return rad[None, :] * np.sin(th)[:, None], rad[None, :] * np.cos(th)[:, None]


def polar_about(y, x, c):
    dy, dx = y - c[0], x - c[1]
    return np.hypot(dy, dx), np.degrees(np.arctan2(dy, dx)) % 360


def in_arc(phi, a0, a1):
    """Angles (deg) in the arc from a0 to a1 going through increasing angles (wraps)."""
    return ((phi - a0) % 360) < ((a1 - a0) % 360)


def scene(
    space: str,
    lumen=(0.0, 0.0, 0.7),
    ellipse=None,
    calcium=(),
    shadow=None,
    struts=(),
    strut_radius=0.02,
    shape=None,
    ps: float = PS,
):
    """One frame. ``lumen`` (cy, cx, r) mm; ``ellipse`` (cy, cx, a_x, b_y) replaces it;
    ``calcium``: sectors (rho0, rho1, phi0, phi1) about the lumen centre; ``shadow``:
    (theta0, theta1, r0) guidewire sector about the catheter; ``struts``: (rho, phi) about the
    lumen centre."""
    y, x = grid(space, shape, ps)
    lab = np.zeros(y.shape, np.uint8)
    if ellipse is not None:
        cy, cx, ax, by = ellipse
        lab[((x - cx) / ax) ** 2 + ((y - cy) / by) ** 2 < 1] = 1
        c = (cy, cx)
    else:
        c = lumen[:2]
        lab[np.hypot(y - c[0], x - c[1]) < lumen[2]] = 1
    rho, phi = polar_about(y, x, c)
    for r0, r1, p0, p1 in calcium:
        lab[(rho >= r0) & (rho < r1) & in_arc(phi, p0, p1)] = 2
    if shadow is not None:
        t0, t1, r0 = shadow
        rc, thc = polar_about(y, x, (0.0, 0.0))
        lab[(rc >= r0) & in_arc(thc, t0, t1)] = 4
    for r, p in struts:
        sy = c[0] + r * np.sin(np.radians(p))
        sx = c[1] + r * np.cos(np.radians(p))
        lab[np.hypot(y - sy, x - sx) < strut_radius] = 3
    return lab


def label_file(frames, space, ps: float = PS, fs: float = 0.2, **kw) -> LabelFile:
    return LabelFile(
        labels=np.stack(frames).astype(np.uint8),
        space=space,
        pixel_spacing_mm=ps,
        frame_spacing_mm=fs,
        **kw,
    )


#: Measurements of the same frames through different chunkings / work-piece sizes run the same
#: float32 arithmetic on differently shaped batches (another ray grid size, other reduction
#: blocks), so their floats are compared to this relative tolerance (a few float32 ulps), not
#: bit for bit; counts, frame numbers, flags and missing values must match exactly.
CHUNKING_REL = 1e-6


def assert_same_measurements(a, b, rel: float = CHUNKING_REL, path: str = "") -> None:
    """``a == b`` for nested measurement rows / summaries, floats to ``rel`` (relative, with an
    absolute floor of ``rel`` times 1e-3 for values near 0)."""
    import math

    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: keys differ"
        for k in a:
            assert_same_measurements(a[k], b[k], rel, f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_measurements(x, y, rel, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool) and isinstance(b, (int, float)):
        assert math.isclose(a, b, rel_tol=rel, abs_tol=rel * 1e-3), f"{path}: {a!r} != {b!r}"
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


LUM = (0.08, -0.1, 0.55)  # lumen (cy, cx, r) mm, off the catheter


def plaque_scene(space, cap_mm, phi0, phi1, lumen=LUM, core_mm=0.4, shadow=None, lipid_only=()):
    """A lumen, a fibrous-cap ring sector ``cap_mm`` thick over the arc phi0->phi1 and a lipid
    core behind it, angles about the lumen centre."""
    lab = scene(space, lumen=lumen, shadow=shadow)
    y, x = grid(space)
    rho, phi = polar_about(y, x, lumen[:2])
    r = lumen[2]
    sector = in_arc(phi, phi0, phi1) & (lab == 0)
    lab[sector & (rho >= r) & (rho < r + cap_mm)] = FIBROUS_CAP
    lab[sector & (rho >= r + cap_mm) & (rho < r + cap_mm + core_mm)] = LIPID
    for p0, p1 in lipid_only:  # lipid straight behind the lumen, no cap labelled
        lab[in_arc(phi, p0, p1) & (lab == 0) & (rho >= r) & (rho < r + core_mm)] = LIPID
    return lab
