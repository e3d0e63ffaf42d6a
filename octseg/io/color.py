"""Colour IVOCT frames -> grey intensity, and detection of burned-in display overlays.

Vendors export "for presentation" frames in a sepia colour map: one monotone curve through RGB
space from black (weak signal) through dark red and orange to pale yellow/white (strong signal).
The grey value of a pixel is defined as follows (documented in docs/io.md):

1. luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), which increases monotonically
   along any sepia map;
2. ``grey = L^-1(Y) / 255``, where ``L(i)`` is the luminance of entry ``i`` of the reference map
   :data:`SEPIA_LUT` (a monotone interpolation).

For frames written with :data:`SEPIA_LUT` (``write_ivoct_dicom(photometric="RGB")``) this
recovers the original grey level to within rounding (<= 1/255). For a vendor's own map it is a
monotone function of the luminance, which is what a segmentation network needs; the reference map
was fitted to the median colours of a real vendor export (the Danilov pullback in
``../shared/data``), so there the mapping is close to the vendor's own index.

Burned-in overlays (cyan/yellow measurement lines, dots, text) are not on the sepia curve:
:func:`overlay_mask` flags pixels whose colour is far from the reference curve at their luminance
or that are "colder" than any sepia colour (green or blue exceeding red).
"""

from __future__ import annotations

import numpy as np

# Control points (index, R, G, B); index = R below the top, fitted to a real vendor sepia map.
_CONTROL = np.array(
    [
        (0, 0, 0, 0),
        (23, 23, 1, 0),
        (38, 38, 4, 0),
        (55, 55, 9, 0),
        (71, 71, 17, 0),
        (87, 87, 26, 0),
        (103, 103, 36, 0),
        (119, 119, 48, 1),
        (136, 136, 62, 2),
        (151, 151, 78, 5),
        (167, 167, 96, 10),
        (182, 182, 114, 17),
        (197, 197, 132, 26),
        (212, 212, 152, 36),
        (229, 229, 176, 53),
        (243, 243, 214, 100),
        (255, 255, 250, 200),
    ],
    dtype=np.float64,
)
_IDX = np.arange(256, dtype=np.float64)
SEPIA_LUT: np.ndarray = (
    np.stack([np.interp(_IDX, _CONTROL[:, 0], _CONTROL[:, c]) for c in (1, 2, 3)], axis=1)
    .round()
    .astype(np.uint8)
)
"""Reference sepia colour map, ``(256, 3)`` uint8: grey index -> RGB."""

_BT601 = np.array([0.299, 0.587, 0.114])


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ _BT601.astype(np.float32)


def _lut_luminance(lut: np.ndarray) -> np.ndarray:
    lum = lut.astype(np.float64) @ _BT601
    # force strict monotonicity so that np.interp inverts it
    return np.maximum.accumulate(lum + np.arange(lum.size) * 1e-6)


def gray_to_sepia(gray: np.ndarray, lut: np.ndarray = SEPIA_LUT) -> np.ndarray:
    """uint8 grey ``(..., )`` -> uint8 RGB ``(..., 3)`` through the colour map."""
    gray = np.asarray(gray)
    if gray.dtype != np.uint8:
        raise ValueError(f"gray_to_sepia expects uint8, got {gray.dtype}")
    return lut[gray]


def sepia_to_gray(rgb: np.ndarray, lut: np.ndarray = SEPIA_LUT) -> np.ndarray:
    """RGB ``(..., 3)`` (uint8 0..255) -> float32 grey in [0, 1] (see the module docstring)."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected (..., 3) RGB, got shape {rgb.shape}")
    y = _luminance(rgb)
    grey = np.interp(y.ravel(), _lut_luminance(lut), _IDX).reshape(y.shape)
    return (grey / 255.0).astype(np.float32)


def overlay_mask(rgb: np.ndarray, lut: np.ndarray = SEPIA_LUT, tol: float = 60.0) -> np.ndarray:
    """Boolean mask of pixels whose colour is inconsistent with a sepia map.

    A pixel is flagged when its Euclidean RGB distance from the reference map entry of the same
    luminance exceeds ``tol``, or when green or blue exceeds red (or blue exceeds green) by more
    than ``tol / 2.5`` - cyan, blue, green, and saturated yellow marks.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected (..., 3) RGB, got shape {rgb.shape}")
    c = rgb[..., :3].astype(np.float32)
    idx = np.interp(_luminance(c).ravel(), _lut_luminance(lut), _IDX).reshape(c.shape[:-1])
    expected = lut.astype(np.float32)[np.clip(np.rint(idx), 0, 255).astype(np.intp)]
    dist = np.sqrt(((c - expected) ** 2).sum(axis=-1))
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    cold = tol / 2.5
    return (dist > tol) | (g - r > cold) | (b - r > cold) | (b - g > cold)


def rgb_frames_to_gray(rgb: np.ndarray) -> np.ndarray:
    """``(..., H, W, 3|4)`` uint8 colour frames -> float32 grey ``(..., H, W)`` in [0, 1]."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        if np.issubdtype(rgb.dtype, np.integer) and rgb.size and rgb.max() > 255:
            rgb = (rgb.astype(np.float64) / np.iinfo(rgb.dtype).max * 255).round().astype(np.uint8)
        else:
            rgb = rgb.astype(np.uint8)
    return sepia_to_gray(rgb)
