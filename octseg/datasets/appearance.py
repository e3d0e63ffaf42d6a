"""Appearance randomisation for training on few patients (issue 13), on catheter-centred polar
frames ``(A, R, k)`` in [0, 1] with their ``(A, R)`` model-channel masks.

Each transform imitates one way another patient, console or export differs from the training
pullback; the reasoning and ranges are in docs/real_data.md ("Appearance randomisation"):

* :class:`DepthAttenuation` - signal decay with depth ``exp(-a r / R)`` (``a`` < 0: less decay).
* :class:`DynamicRange` - the console's display window: ``lo + (hi - lo) x`` (black level up,
  white level down), then clipped.
* :class:`DimWall` - a low-backscatter wall: tissue beyond the lumen border darkened to ``f``
  except a thin bright rim (``f + (1 - f) exp(-d / rim)`` at depth ``d`` behind the border).
* :class:`BloodSpeckle` - residual blood in the lumen: smooth blobs of speckled signal between
  the catheter and the lumen border.
* :class:`ColourMap` - a frame exported in another colour map (grey, vendor palettes) and read
  back through the reader's per-frame grey conversion (:func:`octseg.io.color.display_to_gray`,
  the sepia curve): how a map the readers do not recognise reads (known maps, these palettes
  among them, are read through their own curve since session 62: docs/io.md).
* :class:`BurnedInOverlay` - display overlays (lines, dots, diamonds, text, scale bars, dashed
  circles) drawn in Cartesian space at random places, static over the k context frames.
* :class:`CatheterOffset` - the frame resampled about a point off the catheter (an inexact
  catheter centre): image bilinear, mask nearest, both by the same map.
* :class:`FieldOfView` - a smaller field of view: image and labels end at a random radius, or
  where each ray leaves the square window of an export that crops the scan circle.

Image size (500-1024 px) is :class:`octseg.train.augment.RadialScale` (the vessel at another
pixel size) plus ``A.Downscale`` (fewer pixels); gain and gamma are albumentations transforms.
Every transform that changes labels applies the same map to image and mask; the others leave the
mask untouched.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from albumentations.core.transforms_interface import DualTransform, ImageOnlyTransform
from scipy import ndimage

#: colour maps a console may export in; "sepia" is the reader's own (identity up to rounding)
PALETTES = ("sepia", "grey", "bone", "copper", "afmhot", "pink", "gist_heat")


def palette_lut(name: str) -> np.ndarray:
    """``(256, 3)`` uint8 RGB of a colour map (a writable copy of
    :func:`octseg.io.color.colormap_lut`): ``sepia`` (the reader's), ``grey`` or a matplotlib
    map (its dark-to-bright direction)."""
    from octseg.io.color import colormap_lut

    return colormap_lut(name).copy()


def reader_curve(name: str) -> np.ndarray:
    """``(256,)`` float32: the grey value the reader gives a pixel exported at index ``i``."""
    from octseg.io.color import display_to_gray

    return display_to_gray(palette_lut(name)).astype(np.float32)


def lumen_border(mask: np.ndarray, lumen: int) -> np.ndarray:
    """Per A-line, the first sample that is not lumen (``(A,)`` int; ``R`` if all lumen)."""
    not_lumen = mask != lumen
    first = np.argmax(not_lumen, axis=1)
    return np.where(not_lumen.any(axis=1), first, mask.shape[1])


def _depth_index(shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.arange(shape[1], dtype=np.float32)[None, :], shape[:2])


def _per_channel(img: np.ndarray, factor: np.ndarray) -> np.ndarray:
    return img * (factor[..., None] if img.ndim == 3 else factor)


class DepthAttenuation(ImageOnlyTransform):
    """Multiply by ``exp(-a r / R)``, ``a`` drawn from ``alpha`` (negative: brighter in depth)."""

    def __init__(self, alpha: tuple[float, float] = (-0.5, 2.0), p: float = 0.5):
        super().__init__(p=p)
        self.alpha = tuple(float(v) for v in alpha)

    def get_params(self) -> dict[str, Any]:
        return {"a": self.py_random.uniform(*self.alpha)}

    def apply(self, img: np.ndarray, a: float = 0.0, **params: Any) -> np.ndarray:
        r = _depth_index(img.shape) / max(img.shape[1], 1)
        return np.clip(_per_channel(img, np.exp(-a * r)), 0, 1).astype(np.float32)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("alpha",)


class DynamicRange(ImageOnlyTransform):
    """Display window: ``lo + (hi - lo) * x`` with ``lo`` from ``black``, ``hi`` from ``white``."""

    def __init__(
        self,
        black: tuple[float, float] = (0.0, 0.25),
        white: tuple[float, float] = (0.65, 1.0),
        p: float = 0.5,
    ):
        super().__init__(p=p)
        self.black = tuple(float(v) for v in black)
        self.white = tuple(float(v) for v in white)

    def get_params(self) -> dict[str, Any]:
        return {
            "lo": self.py_random.uniform(*self.black),
            "hi": self.py_random.uniform(*self.white),
        }

    def apply(self, img: np.ndarray, lo: float = 0.0, hi: float = 1.0, **params: Any) -> np.ndarray:
        return np.clip(lo + (hi - lo) * img, 0, 1).astype(np.float32)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("black", "white")


class DimWall(DualTransform):
    """Darken the tissue behind the lumen border to ``f`` (from ``factor``), keeping a bright rim
    of ``rim`` samples; the mask is unchanged."""

    def __init__(
        self,
        factor: tuple[float, float] = (0.2, 0.7),
        rim: tuple[float, float] = (1.0, 6.0),
        lumen: int = 1,
        p: float = 0.3,
    ):
        super().__init__(p=p)
        self.factor = tuple(float(v) for v in factor)
        self.rim = tuple(float(v) for v in rim)
        self.lumen = int(lumen)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "border": lumen_border(data["mask"], self.lumen),
            "f": self.py_random.uniform(*self.factor),
            "rim_w": self.py_random.uniform(*self.rim),
        }

    def apply(self, img: np.ndarray, border=None, f=1.0, rim_w=1.0, **params: Any) -> np.ndarray:
        if border is None:
            return img
        d = _depth_index(img.shape) - border[:, None].astype(np.float32)
        gain = np.where(d < 0, 1.0, f + (1 - f) * np.exp(-np.maximum(d, 0) / rim_w))
        return _per_channel(img, gain.astype(np.float32)).astype(np.float32)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return mask

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("factor", "rim", "lumen")


def _onto_polar(rng_field, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """``rng_field((n, n))``, a square Cartesian array of ``scale`` cells per depth sample
    centred on the catheter, read bilinearly onto the polar frame ``shape`` by
    :func:`octseg.core.polar.cartesian_to_polar` (as the product reads a console image)."""
    import torch

    from octseg.core.polar import cartesian_to_polar

    a, r = shape[:2]
    n = int(2 * r * scale) + 3
    cart = torch.from_numpy(np.asarray(rng_field((n, n)), dtype=np.float32))
    polar = cartesian_to_polar(
        cart[None], n_alines=a, n_samples=r, cart_spacing_mm=1.0 / scale, polar_spacing_mm=1.0
    )
    return polar[0].numpy()


def _cartesian_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """A smooth isotropic random field (Gaussian width ``sigma`` depth samples) read onto the
    polar frame ``shape``."""
    return _onto_polar(
        lambda sz: ndimage.gaussian_filter(rng.standard_normal(sz), sigma), shape, 1.0
    )


def _cartesian_speckle(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Gamma speckle (mean 1) in Cartesian cells of half a depth sample, read onto the polar
    frame, as a console image is read onto the net grid."""
    return _onto_polar(lambda sz: rng.gamma(2.0, 0.5, sz), shape, 2.0)


class BloodSpeckle(DualTransform):
    """Speckled blobs of blood signal (level from ``level``, covering about ``coverage`` of the
    lumen) between ``catheter`` samples and the lumen border; the mask is unchanged.
    ``wall_bias`` (standard deviations of the blob field added from 0 at the catheter to 1 at
    the border) draws the blobs towards the wall, where they touch it.

    Blood is a suspension in the lumen, so its blobs and speckle are drawn in Cartesian space
    (isotropic blobs of ``blob`` samples' Gaussian width, speckle at half a sample) and read onto
    the polar frame: near the catheter a blob spans many A-lines, far out few, as on a console
    image resampled to the net grid (blobs smoothed along the A-line axis alone would teach
    arc-shaped blood only)."""

    def __init__(
        self,
        level: tuple[float, float] = (0.15, 0.6),
        coverage: tuple[float, float] = (0.05, 0.5),
        catheter: int = 8,
        lumen: int = 1,
        blob: tuple[float, float] = (1.5, 8.0),
        p: float = 0.3,
        wall_bias: float = 0.0,
    ):
        super().__init__(p=p)
        self.wall_bias = float(wall_bias)
        self.level = tuple(float(v) for v in level)
        self.coverage = tuple(float(v) for v in coverage)
        self.catheter = int(catheter)
        self.lumen = int(lumen)
        self.blob = tuple(float(v) for v in blob)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        mask = data["mask"]
        depth = _depth_index(mask.shape)
        inside = (depth < lumen_border(mask, self.lumen)[:, None]) & (depth >= self.catheter)
        if not inside.any():
            return {"blood": None}
        rng = np.random.default_rng(self.py_random.randrange(2**31))
        field = _cartesian_field(rng, mask.shape, self.py_random.uniform(*self.blob))
        if self.wall_bias:  # more blobs near the lumen border, in standard deviations
            border = np.maximum(lumen_border(mask, self.lumen)[:, None], 1)
            field = field + self.wall_bias * field.std() * np.clip(depth / border, 0, 1)
        thr = np.quantile(field[inside], 1 - self.py_random.uniform(*self.coverage))
        blob = np.clip((field - thr) / (field.std() * 0.5 + 1e-6), 0, 1) * inside
        speckle = _cartesian_speckle(rng, mask.shape)
        return {"blood": (blob * speckle * self.py_random.uniform(*self.level)).astype(np.float32)}

    def apply(self, img: np.ndarray, blood=None, **params: Any) -> np.ndarray:
        if blood is None:
            return img
        b = blood[..., None] if img.ndim == 3 else blood
        return np.clip(np.maximum(img, b), 0, 1).astype(np.float32)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return mask

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("level", "coverage", "catheter", "lumen", "blob", "wall_bias")


class ColourMap(ImageOnlyTransform):
    """Export in a colour map drawn from ``palettes``, read back by the reader's conversion."""

    def __init__(self, palettes: tuple[str, ...] = PALETTES, p: float = 0.3):
        super().__init__(p=p)
        self.palettes = tuple(palettes)
        self._curves = {n: reader_curve(n) for n in self.palettes}

    def get_params(self) -> dict[str, Any]:
        return {"name": self.py_random.choice(self.palettes)}

    def apply(self, img: np.ndarray, name: str = "sepia", **params: Any) -> np.ndarray:
        idx = np.clip(np.rint(img * 255), 0, 255).astype(np.intp)
        return self._curves[name][idx]

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("palettes",)


def polar_sample_map(
    n_alines: int, n_samples: int, center: tuple[float, float], scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps (x = column, y = row) of a polar grid about ``center`` (pixels of a
    Cartesian canvas at one sample per pixel times ``scale``), convention of octseg.core.polar."""
    theta = 2 * np.pi * np.arange(n_alines, dtype=np.float32)[:, None] / n_alines
    r = np.arange(n_samples, dtype=np.float32)[None, :] * scale
    return (center[1] + r * np.cos(theta)).astype(np.float32), (
        center[0] + r * np.sin(theta)
    ).astype(np.float32)


def _measurement_line(canvas, rng, p, q, t) -> None:
    """A line with end dots."""
    cv2.line(canvas, tuple(map(int, p)), tuple(map(int, q)), 1, t)
    for e in (p, q):
        cv2.circle(canvas, tuple(map(int, e)), t + 2, 1, -1)


def _diamond(canvas, rng, p, q, t) -> None:
    r = int(rng.integers(3, 8))
    pts = np.array([[p[0], p[1] - r], [p[0] + r, p[1]], [p[0], p[1] + r], [p[0] - r, p[1]]])
    cv2.polylines(canvas, [pts.astype(np.int32)], True, 1, t)


def _dots(canvas, rng, p, q, t) -> None:
    for _ in range(int(rng.integers(1, 6))):
        c = rng.integers(0, canvas.shape[0], 2)
        cv2.circle(canvas, tuple(map(int, c)), int(rng.integers(1, 4)), 1, -1)


def _text(canvas, rng, p, q, t) -> None:
    text = "".join(rng.choice(list("0123456789.mmAREA:")) for _ in range(6))
    cv2.putText(canvas, text, tuple(map(int, p)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1, 1)


def _scale_bar(canvas, rng, p, q, t) -> None:
    """A horizontal bar with ticks."""
    n = int(rng.integers(20, canvas.shape[0] // 3))
    cv2.line(canvas, (int(p[0]), int(p[1])), (int(p[0]) + n, int(p[1])), 1, t)
    for x in range(int(p[0]), int(p[0]) + n + 1, max(n // 4, 1)):
        cv2.line(canvas, (x, int(p[1]) - 3), (x, int(p[1]) + 3), 1, 1)


def _dashed_circle(canvas, rng, p, q, t) -> None:
    r = int(rng.integers(10, canvas.shape[0] // 2))
    for a0 in range(0, 360, 20):
        cv2.ellipse(canvas, tuple(map(int, p)), (r, r), 0, a0, a0 + 10, 1, t)


#: the kinds of overlay mark, drawn by ``kind = rng.integers(6)``
_MARKS = (_measurement_line, _diamond, _dots, _text, _scale_bar, _dashed_circle)


def draw_overlay(canvas: np.ndarray, rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Draw ``n_items`` overlay marks (value 1) on a square uint8 ``canvas`` in place."""
    s = canvas.shape[0]
    for _ in range(n_items):
        kind = rng.integers(6)
        p = rng.integers(0, s, 2)
        q = rng.integers(0, s, 2)
        t = int(rng.integers(1, 3))
        _MARKS[kind](canvas, rng, p, q, t)
    return canvas


class BurnedInOverlay(ImageOnlyTransform):
    """Overlay marks drawn on a Cartesian canvas at random places, mapped to polar and painted
    at a bright level (``level``) into every context frame; ``items`` marks per image."""

    def __init__(
        self, items: tuple[int, int] = (1, 8), level: tuple[float, float] = (0.6, 1.0), p=0.5
    ):
        super().__init__(p=p)
        self.items = tuple(int(v) for v in items)
        self.level = tuple(float(v) for v in level)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        a, r = data["image"].shape[:2]
        rng = np.random.default_rng(self.py_random.randrange(2**31))
        canvas = draw_overlay(np.zeros((2 * r, 2 * r), np.uint8), rng, rng.integers(*self.items))
        mx, my = polar_sample_map(a, r, (r - 0.5, r - 0.5))
        alpha = cv2.remap(canvas.astype(np.float32), mx, my, cv2.INTER_LINEAR)
        return {"alpha": np.clip(alpha, 0, 1), "value": self.py_random.uniform(*self.level)}

    def apply(self, img: np.ndarray, alpha=None, value: float = 1.0, **params) -> np.ndarray:
        if alpha is None:
            return img
        al = alpha[..., None] if img.ndim == 3 else alpha
        return (img * (1 - al) + value * al).astype(np.float32)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("items", "level")


class CatheterOffset(DualTransform):
    """Resample image and mask about a point ``shift`` (fraction of the depth range, random
    direction) away from the catheter: the polar frame of a wrongly placed centre."""

    def __init__(self, shift: tuple[float, float] = (0.0, 0.08), p: float = 0.3):
        super().__init__(p=p)
        self.shift = tuple(float(v) for v in shift)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        a, r = data["image"].shape[:2]
        d = self.py_random.uniform(*self.shift) * r
        phi = self.py_random.uniform(0, 2 * np.pi)
        # Cartesian position (samples) of each output sample about the shifted centre
        mx, my = polar_sample_map(a, r, (d * np.sin(phi), d * np.cos(phi)))
        rad = np.hypot(mx, my)
        row = np.mod(np.arctan2(my, mx), 2 * np.pi) * a / (2 * np.pi)
        # one wrapped row on each side so the periodic A-line axis interpolates across 0
        return {"map_x": rad.astype(np.float32), "map_y": (row + 1).astype(np.float32)}

    @staticmethod
    def _remap(x: np.ndarray, map_x, map_y, interp: int) -> np.ndarray:
        if map_x is None:
            return x
        padded = np.concatenate([x[-1:], x, x[:1]], axis=0)
        chans = [padded] if padded.ndim == 2 else [padded[..., i] for i in range(x.shape[2])]
        out = [
            cv2.remap(c, map_x, map_y, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            for c in chans
        ]
        return out[0] if x.ndim == 2 else np.stack(out, axis=-1)

    def apply(self, img: np.ndarray, map_x=None, map_y=None, **params: Any) -> np.ndarray:
        return self._remap(img, map_x, map_y, cv2.INTER_LINEAR)

    def apply_to_mask(self, mask: np.ndarray, map_x=None, map_y=None, **params) -> np.ndarray:
        return self._remap(mask, map_x, map_y, cv2.INTER_NEAREST)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("shift",)


class FieldOfView(DualTransform):
    """A smaller field of view: image and labels beyond the field become 0 (no signal,
    background). With probability ``1 - square_p`` the field is a circle about the catheter of
    radius ``radius`` (fraction of the depth range); otherwise it is the square window of an
    exported frame that crops the scan circle: half-width ``radius``, its centre up to
    ``square_shift`` x the half-width away from the catheter, its sides at a random angle to
    A-line 0, so each A-line ends where its ray leaves the square."""

    def __init__(
        self,
        radius: tuple[float, float] = (0.6, 1.0),
        p: float = 0.3,
        square_p: float = 0.0,
        square_shift: float = 0.3,
    ):
        super().__init__(p=p)
        if not 0 <= square_shift < 1:
            raise ValueError(
                f"square_shift must be in [0, 1) (catheter inside), got {square_shift}"
            )
        self.radius = tuple(float(v) for v in radius)
        self.square_p = float(square_p)
        self.square_shift = float(square_shift)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        n_alines, depth = data["mask"].shape[:2]
        half = self.py_random.uniform(*self.radius) * depth
        if self.square_p <= 0 or self.py_random.random() >= self.square_p:  # 0: old draws
            return {"stop": np.full(n_alines, int(round(half)))}
        shift = self.py_random.uniform(0, self.square_shift) * half
        phi = self.py_random.uniform(0, 2 * np.pi)
        centre = (shift * np.cos(phi), shift * np.sin(phi))
        angle = self.py_random.uniform(0, np.pi / 2)
        return {"stop": square_exit(n_alines, half, centre, angle)}

    def apply(self, img: np.ndarray, stop: np.ndarray | None = None, **params: Any) -> np.ndarray:
        if stop is None:
            return img
        beyond = np.arange(img.shape[1])[None, :] >= np.asarray(stop)[:, None]
        out = img.copy()
        out[beyond] = 0
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("radius", "square_p", "square_shift")


def square_exit(
    n_alines: int, half: float, centre: tuple[float, float], angle: float
) -> np.ndarray:
    """Depth sample (rounded) at which each A-line's ray from the catheter leaves a square of
    half-width ``half`` samples centred at ``centre`` (x, y samples from the catheter, in the
    square's own axes) whose sides lie at ``angle`` to A-line 0; the catheter must be inside."""
    if not np.all(np.abs(np.asarray(centre, dtype=np.float64)) < half):
        raise ValueError(f"the catheter must lie inside the square: centre {centre}, half {half}")
    theta = 2 * np.pi * np.arange(n_alines) / n_alines - angle
    d = np.stack([np.cos(theta), np.sin(theta)])  # ray directions in the square's axes
    c = np.asarray(centre, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore"):
        t = np.where(d > 0, (c + half) / d, np.where(d < 0, (c - half) / d, np.inf))
    return np.rint(t.min(axis=0)).astype(np.int64)
