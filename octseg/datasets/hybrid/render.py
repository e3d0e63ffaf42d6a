"""Cartesian views of hybrid (polar) frames: the console-style picture, the label map on the
same grid (outlines, Cartesian Dice) and the [real | hybrid | outlines] triptych of the docs'
example figures."""

from __future__ import annotations

import numpy as np


def render_cartesian(
    polar: np.ndarray, ps: float, size: int = 750, *, sepia: bool = True
) -> np.ndarray:
    """Polar grey frame ``(A, R)`` in [0, 1] -> sepia RGB uint8 ``(size, size, 3)`` (or grey
    uint8 ``(size, size)`` with ``sepia=False``); the polar field spans the frame."""
    import torch

    from octseg.core.polar import polar_to_cartesian
    from octseg.io.color import gray_to_sepia

    cart = polar_to_cartesian(
        torch.from_numpy(np.ascontiguousarray(polar, np.float32))[None],
        out_size=(size, size),
        polar_spacing_mm=ps,
        cart_spacing_mm=ps * polar.shape[1] * 2 / size,
    )[0].numpy()
    grey = np.clip(np.rint(cart * 255), 0, 255).astype(np.uint8)
    return gray_to_sepia(grey) if sepia else grey


def label_outline(labels: np.ndarray, ps: float, size: int = 750) -> np.ndarray:
    """Cartesian label map(s) ``(..., size, size)`` of polar label frame(s) ``(..., A, R)``
    (nearest), the polar field spanning the grid: for outlines and Cartesian Dice."""
    import torch

    from octseg.core.polar import polar_to_cartesian

    return polar_to_cartesian(
        torch.from_numpy(labels.astype(np.int64))[None],
        out_size=(size, size),
        polar_spacing_mm=ps,
        cart_spacing_mm=ps * labels.shape[-1] * 2 / size,
        mode="nearest",
    )[0].numpy()


#: label outline colours (RGB) of the example figures: lumen, calcium, strut, cap, lipid
OUTLINE_COLOURS = {
    1: (80, 160, 255),
    2: (255, 60, 60),
    3: (60, 255, 60),
    5: (255, 230, 0),
    6: (230, 0, 230),
}


def side_by_side(
    real: np.ndarray, hybrid: np.ndarray, labels: np.ndarray | None, ps: float, size: int = 500
) -> np.ndarray:
    """[real | hybrid | hybrid with label outlines] as one RGB image (blue lumen, red calcium,
    green struts, yellow fibrous cap, magenta lipid)."""
    from scipy import ndimage

    a = render_cartesian(real, ps, size)
    b = render_cartesian(hybrid, ps, size)
    panels = [a, b]
    if labels is not None:
        c = b.copy()
        lab = label_outline(labels, ps, size)
        for k, col in OUTLINE_COLOURS.items():
            m = lab == k
            edge = m & ~ndimage.binary_erosion(m)
            c[edge] = col
        panels.append(c)
    gap = np.zeros((size, 6, 3), dtype=np.uint8)
    out = [panels[0]]
    for p in panels[1:]:
        out += [gap, p]
    return np.concatenate(out, axis=1)
