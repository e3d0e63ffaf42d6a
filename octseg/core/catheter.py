"""Catheter centre of Cartesian IVOCT frames, detected from the image.

The catheter and its sheath are the only structures that do not move along a pullback: on the
mean of a few frames they are sharp concentric rings while the tissue blurs. Their common centre
is found by a gradient-voting radial-symmetry transform (Loy and Zelinsky, 2003; a Hough
transform for concentric circles): every strong edge pixel of the mean image (near the image
centre) votes at the points a distance ``r`` along its gradient direction, both ways, for every
``r`` in the catheter radius range; the votes of all rings pile up at their common centre. The
peak of the smoothed vote map, refined to sub-pixel by its weighted centroid, is the centre.

A detection whose peak does not stand out (no rings, e.g. an image without a catheter) returns
``None`` and the caller keeps the image centre. A centre within ``SNAP_PX`` (2) pixels of the
image centre is taken as the image centre: vendors place the catheter there, and on real frames
(the Danilov pullback) the detection scatters by about a pixel from one set of frames to
another, so smaller offsets are not resolved. A centre given by the user (argument, the
``spacing.json`` sidecar, the file's own metadata) always wins over detection
(:class:`octseg.io.base.Pullback`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

RING_RADIUS_MM = (0.15, 0.65)  # catheter and sheath rings lie within this distance of the centre
SEARCH_FRACTION = 0.35  # the centre lies within this fraction of the image size of its middle
MIN_PEAK_RATIO = 6.0  # peak votes / mean votes of the search window needed to accept a centre
SNAP_PX = 2.0  # a detected centre this close (pixels) to the image centre is the image centre


def mean_frame(frames: np.ndarray) -> np.ndarray:
    """Mean of ``(N, H, W)`` (or ``(H, W)``) frames as float32 (H, W)."""
    f = np.asarray(frames, dtype=np.float32)
    return f if f.ndim == 2 else f.mean(axis=0)


def vote_map(img: np.ndarray, r_px: tuple[float, float], n_edges: int = 20000) -> np.ndarray:
    """Radial-symmetry votes (H, W) of the strongest ``n_edges`` edge pixels of ``img`` for
    radii ``r_px[0]..r_px[1]`` pixels, each vote weighted by the edge strength."""
    h, w = img.shape
    sm = ndimage.gaussian_filter(img, 1.0)
    gy, gx = ndimage.sobel(sm, 0), ndimage.sobel(sm, 1)
    mag = np.hypot(gy, gx)
    # only edges near the middle can belong to the catheter
    cy, cx = (h - 1) / 2, (w - 1) / 2
    reach = SEARCH_FRACTION * max(h, w) + r_px[1]
    yy, xx = np.mgrid[0:h, 0:w]
    mag = np.where((np.abs(yy - cy) <= reach) & (np.abs(xx - cx) <= reach), mag, 0)
    flat = mag.ravel()
    k = min(n_edges, int((flat > 0).sum()))
    votes = np.zeros(h * w, np.float64)
    if k == 0:
        return votes.reshape(h, w)
    idx = np.argpartition(flat, -k)[-k:]
    py, px = yy.ravel()[idx].astype(np.float64), xx.ravel()[idx].astype(np.float64)
    m = flat[idx].astype(np.float64)
    uy, ux = gy.ravel()[idx] / np.maximum(m, 1e-12), gx.ravel()[idx] / np.maximum(m, 1e-12)
    for r in np.arange(max(1.0, r_px[0]), r_px[1] + 1.0, 1.0):
        for sign in (1.0, -1.0):
            ty = np.rint(py + sign * r * uy).astype(np.int64)
            tx = np.rint(px + sign * r * ux).astype(np.int64)
            ok = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
            votes += np.bincount(ty[ok] * w + tx[ok], weights=m[ok], minlength=h * w)
    return votes.reshape(h, w)


def detect_center(
    frames: np.ndarray, pixel_spacing_mm: float, snap_px: float = SNAP_PX
) -> tuple[float, float] | None:
    """Catheter centre ``(cy, cx)`` (pixels) of Cartesian frames ``(N, H, W)`` or one mean
    image, or ``None`` when no concentric rings stand out. ``pixel_spacing_mm`` sets the ring
    radius range (:data:`RING_RADIUS_MM`)."""
    img = mean_frame(frames)
    h, w = img.shape
    r0, r1 = (r / pixel_spacing_mm for r in RING_RADIUS_MM)
    r1 = min(r1, 0.25 * min(h, w))
    if r1 <= max(r0, 2.0):
        return None
    votes = ndimage.gaussian_filter(vote_map(img, (r0, r1)), 1.5)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    half = SEARCH_FRACTION * max(h, w)
    y0, y1 = int(max(0, cy - half)), int(min(h, cy + half + 1))
    x0, x1 = int(max(0, cx - half)), int(min(w, cx + half + 1))
    win = votes[y0:y1, x0:x1]
    if win.size == 0 or win.mean() <= 0:
        return None
    iy, ix = np.unravel_index(int(np.argmax(win)), win.shape)
    if win[iy, ix] < MIN_PEAK_RATIO * win.mean():
        return None
    # sub-pixel: weighted centroid of the peak's 5x5 neighbourhood
    a, b = max(iy - 2, 0), max(ix - 2, 0)
    patch = win[a : iy + 3, b : ix + 3]
    patch = np.clip(patch - patch.min(), 0, None)
    py, px = np.mgrid[a : a + patch.shape[0], b : b + patch.shape[1]]
    s = patch.sum()
    fy = float((py * patch).sum() / s) if s > 0 else float(iy)
    fx = float((px * patch).sum() / s) if s > 0 else float(ix)
    y, x = y0 + fy, x0 + fx
    if np.hypot(y - cy, x - cx) <= snap_px:
        return (cy, cx)
    return (y, x)


def detect_pullback_center(pullback, n_frames: int = 8) -> tuple[float, float] | None:
    """:func:`detect_center` on up to ``n_frames`` frames spread over a Cartesian pullback
    (read through its loader)."""
    n = pullback.n_frames
    picks = np.unique(np.linspace(0, n - 1, min(n, n_frames)).round().astype(int))
    frames = np.stack([pullback.loader(int(i), int(i) + 1)[0] for i in picks])
    return detect_center(frames, pullback.pixel_spacing_mm)


def center_of(pullback) -> tuple[float, float]:
    """The catheter centre of a Cartesian pullback that names none: detected
    (:func:`detect_pullback_center`), else the image centre (no rings found, or frames that
    cannot be read yet: the reading error then surfaces where the frames are read)."""
    middle = ((pullback.height - 1) / 2.0, (pullback.width - 1) / 2.0)
    try:
        found = detect_pullback_center(pullback)
    except Exception:  # noqa: BLE001 - detection is best effort; reading reports its own errors
        return middle
    return middle if found is None else found
