"""Analytic label-map scenes for the geometry tests: shapes defined in mm, rasterised onto a
Cartesian or a catheter-centred polar grid (pixel/sample centres)."""

from __future__ import annotations

import numpy as np

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
