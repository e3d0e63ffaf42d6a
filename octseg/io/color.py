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

Frames in another known display map (matplotlib's "hot", "bone", "cividis"... :data:`DISPLAY_MAPS`)
are recognised per pullback (:func:`fit_display_map`) and read through that map's own luminance
curve, step 2 with the map's table in place of the sepia one: exact to within rounding for frames
written with the map, as for sepia. Frames in a map that is neither sepia, grey nor a known one
are read through the sepia curve (a monotone reading) and warned about.

A grey display exported as RGB (R = G = B) is not a sepia frame: the readers
(:func:`display_to_gray`) read such a frame as its level, not through the sepia curve, which
would brighten it (level 64 would read as 0.47 instead of 0.25).

Burned-in overlays (cyan/yellow measurement lines, dots, text) are not on the sepia curve:
:func:`overlay_mask` flags pixels whose colour is far from the reference curve at their luminance
or that are "colder" than any sepia colour (green or blue exceeding red).
"""

from __future__ import annotations

import functools
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


def map_distance(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Euclidean RGB distance of each pixel ``(..., 3|4)`` from the entry of the colour map
    ``lut`` that has the pixel's luminance (how far the pixel lies off the map's curve)."""
    c = np.asarray(rgb)[..., :3].astype(np.float32)
    idx = np.interp(_luminance(c).ravel(), _lut_luminance(lut), _IDX).reshape(c.shape[:-1])
    expected = lut.astype(np.float32)[np.clip(np.rint(idx), 0, 255).astype(np.intp)]
    return np.sqrt(((c - expected) ** 2).sum(axis=-1))


def overlay_mask(rgb: np.ndarray, lut: np.ndarray = SEPIA_LUT, tol: float = 60.0) -> np.ndarray:
    """Boolean mask of pixels whose colour is inconsistent with a sepia map.

    A pixel is flagged when its Euclidean RGB distance from the reference map entry of the same
    luminance exceeds ``tol`` (:func:`map_distance`), or when green or blue exceeds red (or blue
    exceeds green) by more than ``tol / 2.5`` - cyan, blue, green, and saturated yellow marks.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected (..., 3) RGB, got shape {rgb.shape}")
    c = rgb[..., :3].astype(np.float32)
    dist = map_distance(c, lut)
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
    frame through a known map that fits it (:func:`fit_display_map`), else by its luminance
    through the sepia curve, a monotone reading that models trained only on sepia and grey
    exports have not seen."""
    c = rgb_uint8(np.asarray(rgb)[..., :3])
    lit = c.max(axis=-1) >= 8
    share = float(overlay_mask(c)[lit].mean()) if lit.any() else 0.0
    if is_grey_display(c):
        return "grey", share
    return ("other" if share >= OFF_MAP_SHARE else "sepia"), share


DISPLAY_MAPS = (
    "hot", "afmhot", "gist_heat", "copper", "bone", "pink",
    "cividis", "viridis", "plasma", "inferno", "magma", "cubehelix",
)  # fmt: skip
"""Display maps besides sepia and grey that the readers recognise (:func:`fit_display_map`) and
read exactly: matplotlib's maps of these names, dark (weak signal) to bright. The luminance of
each rises along the map closely enough that its own luminance curve gives back the index to
within 1.6 levels (maps whose luminance turns back, as "jet" or "turbo", cannot be read so)."""


@functools.cache
def colormap_lut(name: str) -> np.ndarray:
    """``(256, 3)`` uint8 RGB (read-only) of a display map: ``"sepia"`` (:data:`SEPIA_LUT`),
    ``"grey"`` or a matplotlib map (its dark-to-bright direction)."""
    if name == "sepia":
        lut = SEPIA_LUT.copy()
    elif name == "grey":
        lut = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    else:
        import matplotlib

        rgb = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3]
        lut = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


MAP_FIT_TOL = 17.0
"""A known map fits a pullback's lit pixels when its :func:`map_fit_score` is at most this many
levels (and below the sepia map's). Measured on three real frames of the Danilov pullback
re-drawn in each map (``benchmarks/display_map_fit.py``, session 62): the map they were drawn in
scores 0.2-1.0 as PNG and 4-16 as JPEG at quality 75, the next best known map 21 or more; maps
not in :data:`DISPLAY_MAPS` score 21 or more against every known one ("Wistia" 21, "CMRmap"
30-33, "Blues_r" 47); the vendor's own sepia export scores 6.8 (PNG) to 8.1 (JPEG) against the
sepia map and 41 or more against every known map. Synthetic frames of uncorrelated pixel noise (standard deviation
30 levels) saved as JPEG are not recognised: they fall back to the sepia reading and the
warning."""


def map_fit_score(pixels: np.ndarray, lut: np.ndarray, clip: float = 60.0, bins: int = 16) -> float:
    """How far lit colour pixels ``(N, 3)`` lie off the map ``lut``: their :func:`map_distance`,
    clipped at ``clip`` (burned-in overlays weigh alike against every map), averaged within each
    of ``bins`` luminance bands holding at least 0.1% (and 20) of the pixels, then over the
    bands. Bright pixels, where maps such as "hot" and "gist_heat" part, so weigh as much as the
    many dim ones, where they agree."""
    d = np.minimum(map_distance(pixels, lut).ravel(), clip)
    band = np.minimum((_luminance(pixels).ravel() * (bins / 256.0)).astype(np.intp), bins - 1)
    count = np.bincount(band, minlength=bins)
    total = np.bincount(band, weights=d, minlength=bins)
    used = count >= max(20, 0.001 * d.size)
    return float((total[used] / count[used]).mean()) if used.any() else float("inf")


MAP_FIT_MARGIN = 0.5
"""Beyond :data:`MAP_FIT_TOL` (up to twice it: heavy JPEG, fine speckle) a known map still fits
when it scores at most this share of the runner-up's score (sepia included). Measured as for
:data:`MAP_FIT_TOL`: the map drawn scores at most 0.45 of the runner-up as JPEG at quality 75,
every unknown map 0.72 or more of its best known one."""

DARK_INDEX = 20
"""A fitted map must read at least :data:`DARK_SHARE` of the judged pixels below this index:
IVOCT frames are mostly dark (the lumen, the tissue beyond the light's reach). A map that runs
along part of a known one (matplotlib's "autumn", red to yellow, is the middle of "hot") has no
dark end and is not taken for it."""
DARK_SHARE = 0.01


def fit_display_map(lit: np.ndarray, pixels: np.ndarray | None = None) -> tuple[str, float] | None:
    """The known display map (:data:`DISPLAY_MAPS`) that lit colour pixels ``lit`` ``(N, 3)``
    uint8 follow, as ``(name, score)``, or ``None`` (sepia frames, maps not known).

    The best :func:`map_fit_score` must beat the sepia map's and be at most
    :data:`MAP_FIT_TOL`, or at most twice it and :data:`MAP_FIT_MARGIN` of the runner-up's;
    read through the map, at least :data:`DARK_SHARE` of ``pixels`` (all pixels of the judged
    frames, lit or not; default ``lit``) must lie below :data:`DARK_INDEX`."""
    if len(lit) == 0:
        return None
    scores = {name: map_fit_score(lit, colormap_lut(name)) for name in ("sepia", *DISPLAY_MAPS)}
    best, second = sorted(scores, key=scores.__getitem__)[:2]
    score = scores[best]
    clear = score <= MAP_FIT_TOL or (
        score <= 2 * MAP_FIT_TOL and score <= MAP_FIT_MARGIN * scores[second]
    )
    if best == "sepia" or not clear:
        return None
    grey = sepia_to_gray(lit if pixels is None else pixels, colormap_lut(best))
    if np.mean(grey < DARK_INDEX / 255.0) < DARK_SHARE:
        return None
    return best, score


MIN_LIT_SHARE = 0.01
"""A frame with fewer lit pixels than this share (a blank or unflushed frame) is not judged."""


def display_sample(n_frames: int) -> list[int]:
    """The frames a reader judges a colour pullback's display on: first, middle and last."""
    return sorted({0, n_frames // 2, max(n_frames - 1, 0)})


FIT_PIXELS = 65536
"""At most this many lit pixels of each judged frame are used to fit the display map."""


def display_metadata(frames: Iterable[np.ndarray]) -> dict[str, str | float]:
    """How a colour pullback was displayed, from a few of its frames (:func:`display_sample`;
    RGB channels last, any integer depth; frames with under :data:`MIN_LIT_SHARE` lit pixels
    skipped): ``{"display": "other", "display_off_sepia_share": share}`` when any judged frame
    is off the sepia map (its largest share), else ``"sepia"`` (with its share) or ``"grey"``;
    nothing for grey (one-channel) frames or when no frame could be judged. When the colour
    frames follow a known map (:func:`fit_display_map`), ``"display_map"`` names it (with its
    ``"display_map_score"``): the readers then read the frames through it."""
    kinds: dict[str, float] = {}
    lit_pixels, all_pixels = [], []
    for frame in frames:
        if frame.ndim != 3 or frame.shape[-1] < 3:
            return {}
        rgb = rgb_uint8(frame[..., :3])
        lit = rgb.max(axis=-1) >= 8
        if np.count_nonzero(lit) < MIN_LIT_SHARE * lit.size:
            continue
        kind, share = display_kind(rgb)
        kinds[kind] = max(share, kinds.get(kind, 0.0))
        if kind != "grey":
            lit_pixels.append(_at_most(rgb[lit], FIT_PIXELS))
            all_pixels.append(_at_most(rgb.reshape(-1, 3), FIT_PIXELS))
    for kind in ("other", "sepia"):
        if kind in kinds:
            out: dict[str, str | float] = {
                "display": kind, "display_off_sepia_share": round(kinds[kind], 3)
            }  # fmt: skip
            fit = fit_display_map(np.concatenate(lit_pixels), np.concatenate(all_pixels))
            if fit is not None:
                out.update(display_map=fit[0], display_map_score=round(fit[1], 1))
            return out
    return {"display": "grey"} if kinds else {}


def _at_most(pixels: np.ndarray, n: int) -> np.ndarray:
    """Every k-th of ``pixels`` ``(N, 3)``, k the smallest step that keeps at most ``n``."""
    return pixels[:: max(1, -(-len(pixels) // n))]


def display_lut(metadata: Mapping[str, Any]) -> np.ndarray | None:
    """The known map a reader reads every colour frame of a pullback through (its fitted
    ``metadata["display_map"]``, :func:`display_metadata`), or ``None``: each frame read as
    grey or through the sepia map (:func:`display_to_gray`)."""
    name = metadata.get("display_map")
    return None if name is None else colormap_lut(str(name))


def display_to_gray(
    rgb: np.ndarray, lut: np.ndarray = SEPIA_LUT, grey_display: bool | None = None
) -> np.ndarray:
    """What the readers give one colour frame: RGB ``(..., 3)`` uint8 -> float32 grey in [0, 1].

    A grey display exported as RGB (:func:`is_grey_display`, or ``grey_display`` when the caller
    decided it from the whole frame) reads as its luminance / 255, the level that drew it; any
    other frame through the map ``lut`` (:func:`sepia_to_gray`), which would brighten a grey one
    (level 64 would read 0.47 instead of 0.25), through ``lut`` (default: the sepia map). The
    choice is per frame, so the reading stays a monotone function of the luminance within a
    frame whatever its colour map. Frames of a pullback in a fitted known map are read through
    it by :func:`rgb_frames_to_gray` instead.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected (..., 3) RGB, got shape {rgb.shape}")
    grey = is_grey_display(rgb) if grey_display is None else grey_display
    if grey:
        return (_luminance(rgb) / np.float32(255.0)).astype(np.float32)
    return sepia_to_gray(rgb, lut)


def rgb_frames_to_gray(
    rgb: np.ndarray, grey_display: bool | None = None, lut: np.ndarray | None = None
) -> np.ndarray:
    """One ``(H, W, 3|4)`` colour frame (any integer depth) -> float32 grey ``(H, W)`` in
    [0, 1]: through the pullback's fitted map ``lut`` (:func:`display_lut`), every frame alike
    (a dim "bone" frame would pass for a grey display); without one, :func:`display_to_gray`."""
    if lut is not None:
        return sepia_to_gray(rgb_uint8(rgb), lut)
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
    """A warning when a reader found colour frames in neither a sepia nor a grey display nor a
    known map (``metadata["display"] == "other"`` without ``"display_map"``,
    :func:`display_metadata`): infer.py adds it to the pullback's warnings and the report shows
    it."""
    if metadata.get("display") != "other" or "display_map" in metadata:
        return []  # sepia, grey, or a known map read through its own curve
    share = float(metadata.get("display_off_sepia_share", 0.0))
    return [
        f"colour frames in neither a sepia nor a grey display nor a known colour map "
        f"({share:.0%} of lit pixels off the sepia map): read by their luminance. "
        "octseg-default-v1 was trained with other colour maps and keeps the lumen; the calcium "
        "models were not (octseg-calcium-v3's lumen area read 64-68% small under two such maps, "
        "benchmarks/results/display_maps_s62.md): export the frames in grey or sepia if you can"
    ]


def display_notes(metadata: Mapping[str, Any]) -> list[str]:
    """What a report says about how colour frames were read: the known map they were read
    through (:func:`display_metadata`), if any. The warnings are
    :func:`octseg.io.levels.input_warnings`."""
    name = metadata.get("display_map")
    return [f'colour frames in the "{name}" display map, read through that map'] if name else []
