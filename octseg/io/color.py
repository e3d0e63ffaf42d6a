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

A grey display exported as RGB (R = G = B) is not a sepia frame: the readers
(:func:`display_to_gray`) read such a frame as its level, not through the sepia curve, which
would brighten it (level 64 would read as 0.47 instead of 0.25).

Burned-in overlays (cyan/yellow measurement lines, dots, text) are not on the sepia curve:
:func:`overlay_mask` flags pixels whose colour is far from the reference curve at their luminance
or that are "colder" than any sepia colour (green or blue exceeding red).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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


GREY_AXIS_TOL = 6
"""A pixel whose R, G and B lie within this many levels of each other is on the grey axis (JPEG
rounds a grey display's channels apart by a few levels)."""


def is_grey_display(rgb: np.ndarray) -> bool:
    """Whether one frame (``(H, W, 3|4)``, or ``(N, 3|4)`` pixels) is a grey display exported as
    RGB: a PNG or JPEG saved in colour, an RGB DICOM of a grey screen.

    Among the lit pixels (brightest channel >= 8), those on the grey axis must be at least half,
    and at least four times as many as the warm ones (red above blue by more than twice the
    axis tolerance, red >= green: the direction of every sepia map). Burned-in overlays, and the
    colour JPEG bleeds around them, are a minority and mostly cold (cyan, blue, green). A lit
    sepia pixel is never on the axis (its blue stays far below its red), so a sepia frame is
    never taken for grey. A frame with nothing lit is grey when its channels agree within 1 level."""
    c = np.asarray(rgb)[..., :3]
    r, g, b = c[..., 0], c[..., 1], c[..., 2]  # uint8 throughout: no wide copy of the frame
    hi = np.maximum(np.maximum(r, g), b)
    spread = hi - np.minimum(np.minimum(r, g), b)
    lit = hi >= 8
    n_lit = int(np.count_nonzero(lit))
    if n_lit == 0:  # nothing lit: grey only if exactly so (near-black sepia is dark red)
        return bool((spread <= 1).all())
    warm = lit & (r > b) & (r - b > 2 * GREY_AXIS_TOL) & (r >= g)
    n_axis = int(np.count_nonzero(lit & (spread <= GREY_AXIS_TOL)))
    return 2 * n_axis >= n_lit and n_axis >= 4 * int(np.count_nonzero(warm))


OFF_MAP_SHARE = 0.15
"""A colour frame with at least this share of its lit pixels off the sepia map
(:func:`overlay_mask`) is in some other colour map (measured on real frames of the Danilov
pullback: the vendor sepia export 0.3-0.4%, its burned-in overlays included; re-mapped, "hot"
29-31%, "gist_heat" 19-25%, "bone" 53-56%, "cividis" and "viridis" 99-100%; "copper" and
"afmhot", which follow a sepia map's direction, under 1%). Dimmer frames read lower: the dark
ends of "hot" and "gist_heat" are dark red, as sepia's is."""


def display_kind(rgb: np.ndarray) -> tuple[str, float]:
    """How one colour frame was displayed: ``("grey", share)``, ``("sepia", share)`` or
    ``("other", share)``, where ``share`` is the fraction of its lit pixels (brightest channel
    >= 8) off the sepia map (:func:`overlay_mask`) and "other" means ``share >=``
    :data:`OFF_MAP_SHARE` in a frame that is not a grey display. The readers read an "other"
    frame by its luminance through the sepia curve, a monotone reading that models trained
    only on sepia and grey exports have not seen."""
    c = rgb_uint8(np.asarray(rgb)[..., :3])
    lit = c.max(axis=-1) >= 8
    share = float(overlay_mask(c)[lit].mean()) if lit.any() else 0.0
    if is_grey_display(c):
        return "grey", share
    return ("other" if share >= OFF_MAP_SHARE else "sepia"), share


MIN_LIT_SHARE = 0.01
"""A frame with fewer lit pixels than this share (a blank or unflushed frame) is not judged."""


def display_sample(n_frames: int) -> list[int]:
    """The frames a reader judges a colour pullback's display on: first, middle and last."""
    return sorted({0, n_frames // 2, max(n_frames - 1, 0)})


def display_metadata(frames: Iterable[np.ndarray]) -> dict[str, str | float]:
    """How a colour pullback was displayed, from a few of its frames (:func:`display_sample`;
    RGB channels last, any integer depth; frames with under :data:`MIN_LIT_SHARE` lit pixels
    skipped): ``{"display": "other", "display_off_sepia_share": share}`` when any judged frame
    is in another map (its largest share), else ``"sepia"`` (with its share) or ``"grey"``;
    nothing for grey (one-channel) frames or when no frame could be judged."""
    kinds: dict[str, float] = {}
    for frame in frames:
        if frame.ndim != 3 or frame.shape[-1] < 3:
            return {}
        rgb = rgb_uint8(frame[..., :3])
        if np.count_nonzero(rgb.max(axis=-1) >= 8) < MIN_LIT_SHARE * rgb[..., 0].size:
            continue
        kind, share = display_kind(rgb)
        kinds[kind] = max(share, kinds.get(kind, 0.0))
    for kind in ("other", "sepia"):
        if kind in kinds:
            return {"display": kind, "display_off_sepia_share": round(kinds[kind], 3)}
    return {"display": "grey"} if kinds else {}


def display_to_gray(
    rgb: np.ndarray, lut: np.ndarray = SEPIA_LUT, grey_display: bool | None = None
) -> np.ndarray:
    """What the readers give one colour frame: RGB ``(..., 3)`` uint8 -> float32 grey in [0, 1].

    A grey display exported as RGB (:func:`is_grey_display`, or ``grey_display`` when the caller
    decided it from the whole frame) reads as its luminance / 255, the level that drew it; any
    other frame through the sepia map (:func:`sepia_to_gray`), which would brighten a grey one
    (level 64 would read 0.47 instead of 0.25). The choice is per frame, so the reading stays a
    monotone function of the luminance within a frame whatever its colour map.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected (..., 3) RGB, got shape {rgb.shape}")
    grey = is_grey_display(rgb) if grey_display is None else grey_display
    if grey:
        return (_luminance(rgb) / np.float32(255.0)).astype(np.float32)
    return sepia_to_gray(rgb, lut)


def rgb_frames_to_gray(rgb: np.ndarray, grey_display: bool | None = None) -> np.ndarray:
    """One ``(H, W, 3|4)`` colour frame (any integer depth) -> float32 grey ``(H, W)`` in
    [0, 1] (:func:`display_to_gray`)."""
    return display_to_gray(rgb_uint8(rgb), grey_display=grey_display)


def rgb_uint8(rgb: np.ndarray) -> np.ndarray:
    """A colour frame of any integer depth as uint8, scaled by its bit depth as grey frames
    are (not by the frame's own maximum, which read a dark frame of a 16-bit pullback 256 times
    too bright); a floating-point one as values in 0..1 (it used to be cast, so 0..1 read
    black)."""
    rgb = np.asarray(rgb)
    if np.issubdtype(rgb.dtype, np.integer) and rgb.dtype != np.uint8:
        top = float(np.iinfo(rgb.dtype).max)
        return np.clip(rgb.astype(np.float64) / top * 255, 0, 255).round().astype(np.uint8)
    if rgb.dtype.kind == "f":  # 0..1, as float grey frames are (the readers check the range)
        return np.clip(np.rint(np.nan_to_num(rgb) * 255), 0, 255).astype(np.uint8)
    return rgb if rgb.dtype == np.uint8 else rgb.astype(np.uint8)


def display_warnings(metadata: Mapping[str, Any]) -> list[str]:
    """A warning when a reader found colour frames in neither a sepia nor a grey display
    (``metadata["display"] == "other"``, :func:`display_metadata`): infer.py adds it to the
    pullback's warnings and the report shows it."""
    if metadata.get("display") != "other":
        return []
    share = float(metadata.get("display_off_sepia_share", 0.0))
    return [
        f"colour frames in neither a sepia nor a grey display ({share:.0%} of lit pixels off "
        "the sepia map): read by their luminance. octseg-default-v1 was trained with other "
        "colour maps and keeps the lumen; the calcium models were not (octseg-calcium-v3's "
        "lumen area read 10-37% small under two such maps, docs/model_card.md): export the "
        "frames in grey or sepia if you can"
    ]
