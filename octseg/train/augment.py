"""Polar-aware augmentation with albumentations 2.0.8 (the last MIT release).

Images are (A, R, k) float32 in [0, 1] (k = 2.5D context frames as channels), masks (A, R) uint8.
Geometric transforms act on image and mask together:

* :class:`CircularShiftALines` - ``np.roll`` along the A-line axis (a rotation of the catheter
  frame; exact in polar, no interpolation, no border).
* :class:`FlipALines` - reverses the A-line direction about A-line 0 (row ``i`` -> ``-i mod A``,
  a mirror image in Cartesian space).
* :class:`RadialScale` - scales depth about the catheter centre (column 0): a bigger or smaller
  vessel; image bilinear, mask nearest, zeros beyond the source depth.
* :class:`ALineWarp` (off unless ``aline_warp_p`` > 0) - a smooth periodic warp of the A-line
  axis: one side of the frame squeezed, the other stretched, no seam. A lesion far from the
  catheter spans fewer A-lines than the same lesion near it; the warp shows the network lesions
  over a range of A-line widths.

Intensity: brightness/contrast, gamma, speckle (multiplicative noise per pixel) and Gaussian blur.

Appearance randomisation (:mod:`octseg.datasets.appearance`, off unless its ``*_p`` key is set;
``configs/experiment/real_lumen.yaml`` turns it on): catheter offset, field of view, dim wall,
blood in the lumen, depth attenuation, gain, display window, colour maps, burned-in overlays and
fewer pixels (``A.Downscale``).

Distillation (``distill.checkpoint``, :mod:`octseg.train.distill`): :class:`CleanView` after the
geometric transforms keeps the image as they left it, the view a frozen teacher reads.

Seeding: albumentations gives every transform its own generator; :func:`seed_augmentation`
derives an independent seed for each one from a single integer (``Compose.set_random_seed`` would
give all of them the same stream, so their coin flips would coincide). The data loader calls it
from ``worker_init_fn`` with the worker's torch seed, so workers differ and a fixed loader seed
reproduces the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.core.transforms_interface import DualTransform, ImageOnlyTransform


class CircularShiftALines(DualTransform):
    """Roll image and mask by a random number of A-lines (axis 0)."""

    def __init__(self, p: float = 1.0):
        super().__init__(p=p)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        n = params["shape"][0]
        return {"shift": int(self.py_random.randrange(n)) if n > 0 else 0}

    def apply(self, img: np.ndarray, shift: int = 0, **params: Any) -> np.ndarray:
        return np.ascontiguousarray(np.roll(img, shift, axis=0))

    def apply_to_mask(self, mask: np.ndarray, shift: int = 0, **params: Any) -> np.ndarray:
        return np.ascontiguousarray(np.roll(mask, shift, axis=0))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


class FlipALines(DualTransform):
    """Reverse the A-line direction: row ``i`` -> row ``(-i) mod A`` (A-line 0 stays put)."""

    def __init__(self, p: float = 0.5):
        super().__init__(p=p)

    @staticmethod
    def _flip(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.roll(x[::-1], 1, axis=0))

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self._flip(img)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return self._flip(mask)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


class RadialScale(DualTransform):
    """Scale depth about the catheter (column 0) by a factor drawn from ``scale_limit``."""

    def __init__(self, scale_limit: tuple[float, float] = (0.85, 1.15), p: float = 0.5):
        super().__init__(p=p)
        self.scale_limit = tuple(float(v) for v in scale_limit)

    def get_params(self) -> dict[str, Any]:
        lo, hi = self.scale_limit
        return {"scale": float(self.py_random.uniform(lo, hi))}

    @staticmethod
    def _warp(x: np.ndarray, scale: float, interp: int) -> np.ndarray:
        h, w = x.shape[:2]
        m = np.array([[scale, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float64)
        # cv2.warpAffine handles at most 4 channels at once: warp channel groups
        if x.ndim == 3 and x.shape[2] > 4:
            return np.concatenate(
                [
                    RadialScale._warp(x[..., i : i + 4], scale, interp)
                    for i in range(0, x.shape[2], 4)
                ],
                axis=2,
            )
        out = cv2.warpAffine(
            x, m, (w, h), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        if x.ndim == 3 and out.ndim == 2:
            out = out[..., None]
        return out

    def apply(self, img: np.ndarray, scale: float = 1.0, **params: Any) -> np.ndarray:
        return self._warp(img, scale, cv2.INTER_LINEAR)

    def apply_to_mask(self, mask: np.ndarray, scale: float = 1.0, **params: Any) -> np.ndarray:
        return self._warp(mask, scale, cv2.INTER_NEAREST)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("scale_limit",)


class ALineWarp(DualTransform):
    """Resample the A-line axis through ``theta -> theta + b * sin(theta - phase)``, ``b`` drawn
    from ``[0, strength]`` (< 1: monotone) and the phase uniform: near ``phase`` the source is
    read ``1 + b`` times faster (what lies there looks ``1 / (1 + b)`` as wide), opposite it
    ``1 - b`` times (``1 / (1 - b)`` as wide). Periodic, so A-line 0 follows A-line A-1 as
    before. Image linear between A-lines, mask nearest."""

    def __init__(self, strength: float = 0.5, p: float = 0.5):
        super().__init__(p=p)
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"aline_warp strength must be in [0, 1), got {strength}")
        self.strength = float(strength)

    def get_params(self) -> dict[str, Any]:
        return {
            "b": float(self.py_random.uniform(0.0, self.strength)),
            "phase": float(self.py_random.uniform(0.0, 2 * np.pi)),
        }

    @staticmethod
    def source(n: int, b: float, phase: float) -> np.ndarray:
        """Where each of the ``n`` output A-lines reads the input (fractional A-lines)."""
        theta = np.arange(n) * (2 * np.pi / n)
        return ((theta + b * np.sin(theta - phase)) * (n / (2 * np.pi))) % n

    def apply(self, img: np.ndarray, b: float = 0.0, phase: float = 0.0, **params: Any):
        src = self.source(img.shape[0], b, phase)
        lo = np.floor(src).astype(int)
        w = (src - lo).reshape(-1, *([1] * (img.ndim - 1)))
        out = img[lo % img.shape[0]] * (1 - w) + img[(lo + 1) % img.shape[0]] * w
        return np.ascontiguousarray(out.astype(img.dtype))

    def apply_to_mask(self, mask: np.ndarray, b: float = 0.0, phase: float = 0.0, **params: Any):
        src = np.rint(self.source(mask.shape[0], b, phase)).astype(int) % mask.shape[0]
        return np.ascontiguousarray(mask[src])

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("strength",)


class CleanView(ImageOnlyTransform):
    """Keeps a copy of the image as the transforms before it left it (the geometric ones: the
    frame moved with its labels, its appearance untouched) and passes the image on unchanged."""

    def __init__(self) -> None:
        super().__init__(p=1.0)
        self.image: np.ndarray | None = None

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        self.image = np.array(img, dtype=np.float32, copy=True)
        return img

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


def clean_view(compose: A.Compose | None, image: np.ndarray) -> np.ndarray:
    """The last clean view :class:`CleanView` kept in ``compose`` ((A, R, k) in [0, 1]); without
    augmentation or without a CleanView, ``image`` (what the network is shown)."""
    keeper = next((t for t in getattr(compose, "transforms", ()) if isinstance(t, CleanView)), None)
    if keeper is None or keeper.image is None:
        return image
    img = np.clip(keeper.image, 0.0, 1.0)
    return img[..., None] if img.ndim == 2 else img


def _range(c: Mapping[str, Any], key: str, default: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in c.get(key, default))


def _geometric(c: Mapping[str, Any]) -> list[Any]:
    t: list[Any] = []
    if c.get("circular_shift", True):
        t.append(CircularShiftALines(p=1.0))
    if c.get("flip_p", 0.5) > 0:
        t.append(FlipALines(p=float(c.get("flip_p", 0.5))))
    if c.get("radial_scale_p", 0.5) > 0:
        t.append(
            RadialScale(
                scale_limit=_range(c, "radial_scale", (0.85, 1.15)),
                p=float(c.get("radial_scale_p", 0.5)),
            )
        )
    # off unless given (++data.augment.aline_warp_p=P; not in the config, so the shipped
    # recipes' configs and draws stay as they were)
    if float(c.get("aline_warp_p", 0.0)) > 0:
        t.append(ALineWarp(float(c.get("aline_warp", 0.5)), p=float(c["aline_warp_p"])))
    return t


def _appearance_table(c: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(probability key, factory of the transform at probability p) of each appearance
    transform, in the order they are applied."""
    from octseg.datasets import appearance as ap

    lumen = int(c.get("lumen_channel", 1))
    return [
        (
            "catheter_offset_p",
            lambda p: ap.CatheterOffset(_range(c, "catheter_offset", (0, 0.08)), p),
        ),
        (
            "field_of_view_p",
            lambda p: ap.FieldOfView(
                _range(c, "field_of_view", (0.6, 1.0)),
                p,
                square_p=float(c.get("field_of_view_square_p", 0.0)),
            ),
        ),
        ("dim_wall_p", lambda p: ap.DimWall(_range(c, "dim_wall", (0.2, 0.7)), lumen=lumen, p=p)),
        (
            "blood_p",
            lambda p: ap.BloodSpeckle(
                _range(c, "blood", (0.15, 0.6)),
                lumen=lumen,
                p=p,
                wall_bias=float(c.get("blood_wall_bias", 0.0)),
            ),
        ),
        ("attenuation_p", lambda p: ap.DepthAttenuation(_range(c, "attenuation", (-0.5, 2)), p)),
        ("gain_p", lambda p: A.MultiplicativeNoise(_range(c, "gain", (0.4, 1.5)), p=p)),
        ("dynamic_range_p", lambda p: ap.DynamicRange(p=p)),
        ("colour_map_p", lambda p: ap.ColourMap(tuple(c.get("palettes", ap.PALETTES)), p)),
        ("overlay_p", lambda p: ap.BurnedInOverlay(p=p)),
        ("downscale_p", lambda p: A.Downscale(_range(c, "downscale", (0.5, 0.95)), p=p)),
    ]


# the ``data.augment`` keys that switch on the appearance transforms
APPEARANCE_KEYS = tuple(key for key, _ in _appearance_table({}))


def _appearance(c: Mapping[str, Any]) -> list[Any]:
    """Issue 13's appearance randomisation (octseg.datasets.appearance); every ``*_p`` defaults to
    0 (off), so recipes that do not name them are unchanged."""
    table = _appearance_table(c)
    return [make(float(c[key])) for key, make in table if float(c.get(key, 0)) > 0]


def _intensity(c: Mapping[str, Any]) -> list[Any]:
    t: list[Any] = []
    if c.get("brightness_contrast_p", 0.5) > 0:
        t.append(
            A.RandomBrightnessContrast(
                brightness_limit=float(c.get("brightness", 0.15)),
                contrast_limit=float(c.get("contrast", 0.2)),
                p=float(c.get("brightness_contrast_p", 0.5)),
            )
        )
    if c.get("gamma_p", 0.3) > 0:
        t.append(
            A.RandomGamma(gamma_limit=_range(c, "gamma", (80, 120)), p=float(c.get("gamma_p", 0.3)))
        )
    if c.get("speckle_p", 0.5) > 0:
        t.append(
            A.MultiplicativeNoise(
                multiplier=_range(c, "speckle", (0.75, 1.25)),
                per_channel=False,
                elementwise=True,
                p=float(c.get("speckle_p", 0.5)),
            )
        )
    if c.get("blur_p", 0.3) > 0:
        t.append(
            A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2), p=float(c.get("blur_p", 0.3)))
        )
    return t


def build_augmentation(cfg: Mapping[str, Any] | None, keep_clean: bool = False) -> A.Compose | None:
    """The training augmentation from ``data.augment`` settings (None or enabled=False: none).

    Order: geometric (labels move with the image), then appearance (label-aware transforms see
    the moved labels), then the generic intensity jitter. ``keep_clean``: a :class:`CleanView`
    after the geometric transforms (:func:`clean_view` reads it).
    """
    if not cfg or not cfg.get("enabled", True):
        return None
    c = dict(cfg)
    keeper = [CleanView()] if keep_clean else []
    return A.Compose(_geometric(c) + keeper + _appearance(c) + _intensity(c))


def seed_augmentation(compose: A.Compose | None, seed: int) -> None:
    """Give ``compose`` and each of its transforms an independent stream derived from ``seed``."""
    if compose is None:
        return
    seq = np.random.SeedSequence(int(seed) % (2**63))
    children = seq.spawn(len(compose.transforms) + 1)
    compose.set_random_seed(int(children[0].generate_state(1)[0]))
    for tr, child in zip(compose.transforms, children[1:]):
        tr.set_random_seed(int(child.generate_state(1)[0]))


def apply_augmentation(
    compose: A.Compose | None, image: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Augment an (A, R, k) float image in [0, 1] and its (A, R) mask."""
    if compose is None:
        return image, mask
    out = compose(image=image, mask=mask)
    img = np.clip(np.asarray(out["image"], dtype=np.float32), 0.0, 1.0)
    if img.ndim == 2:
        img = img[..., None]
    return img, np.asarray(out["mask"])
