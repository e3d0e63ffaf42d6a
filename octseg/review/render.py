"""What the browser draws, as raw uint8 bytes: a frame's image and label map on the Cartesian
display grid, and the longitudinal cut along an angle.

Cartesian inputs are shown on their own pixel grid. Polar inputs are scan-converted by
:func:`octseg.core.polar.polar_to_cartesian`: once per pullback, an image of polar pixel numbers goes
through its nearest-neighbour resampling, which gives the polar pixel behind every display pixel;
each frame is then one gather (no per-frame interpolation). Raw bytes rather than PNG: on the
2-core host a 1024 x 1024 PNG costs ~100 ms to encode, the raw bytes cost nothing and travel on
the loopback in a few ms.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

MAX_DISPLAY = 1024  # side of the display grid for polar inputs


@dataclass(frozen=True)
class Display:
    """The Cartesian display grid: ``shape`` (rows, cols), ``dps`` mm per display pixel,
    ``center`` (row, col) of the catheter, and ``index``: flat source pixel + 1 behind each
    display pixel (0 = outside the source), or None when display = source grid."""

    shape: tuple[int, int]
    dps: float
    center: tuple[float, float]
    index: np.ndarray | None

    @functools.cached_property
    def source(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(flat source pixel behind each display pixel, display pixels outside the source),
        from :attr:`index`, computed once per display (they are the size of the display)."""
        if self.index is None:
            return None
        return np.maximum(self.index - 1, 0), self.index == 0

    def public(self) -> dict:
        return {
            "height": self.shape[0],
            "width": self.shape[1],
            "dps": self.dps,
            "cy": self.center[0],
            "cx": self.center[1],
        }


def make_display(space: str, shape: tuple[int, int], ps: float, center) -> Display:
    if space == "cartesian":
        return Display(tuple(shape), ps, (float(center[0]), float(center[1])), None)
    import torch

    from octseg.core.polar import polar_to_cartesian

    a, r = shape
    d = int(min(MAX_DISPLAY, 2 * r))
    dps = r * ps / (d / 2.0)
    numbers = torch.arange(1, a * r + 1, dtype=torch.float32).reshape(1, a, r)
    idx = polar_to_cartesian(
        numbers, out_size=(d, d), polar_spacing_mm=ps, cart_spacing_mm=dps, mode="nearest"
    )
    index = idx[0].round().to(torch.int64).numpy().reshape(-1)
    c = (d - 1) / 2.0
    return Display((d, d), dps, (c, c), index)


def to_display(disp: Display, frame: np.ndarray) -> np.ndarray:
    """One source frame (H, W) on the display grid, uint8."""
    if disp.source is None:
        return np.ascontiguousarray(frame, dtype=np.uint8)
    src, outside = disp.source
    out = frame.reshape(-1)[src]
    out[outside] = 0
    return out.reshape(disp.shape)


def frame_bytes(disp: Display, image: np.ndarray, labels: np.ndarray) -> bytes:
    """Image then label map of one frame on the display grid: 2 * rows * cols bytes."""
    return to_display(disp, image).tobytes() + to_display(disp, labels).tobytes()


def cut_index(disp: Display, angle_deg: float) -> np.ndarray:
    """Flat source pixel + 1 (0 = outside) along the display diameter at ``angle_deg`` through the
    catheter centre, from the far side (-) to the near side (+), one sample per display pixel."""
    h, w = disp.shape
    n = int(min(h, w))
    s = np.arange(n) - (n - 1) / 2.0
    a = math.radians(angle_deg)
    rows = np.round(disp.center[0] + s * math.sin(a)).astype(np.int64)
    cols = np.round(disp.center[1] + s * math.cos(a)).astype(np.int64)
    ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = np.where(ok, rows.clip(0, h - 1) * w + cols.clip(0, w - 1), 0)
    if disp.index is None:
        return np.where(ok, flat + 1, 0)
    return np.where(ok, disp.index[flat], 0)


def longitudinal_bytes(
    disp: Display, image: np.ndarray, labels: np.ndarray, angle_deg: float
) -> tuple[bytes, int, int]:
    """The longitudinal cut: image then labels, each (samples, frames) uint8 row-major; returns
    (bytes, samples, frames)."""
    f = image.shape[0]
    idx = cut_index(disp, angle_deg)
    src = np.maximum(idx - 1, 0)
    img = image.reshape(f, -1)[:, src]
    lab = labels.reshape(f, -1)[:, src]
    img[:, idx == 0] = 0
    lab[:, idx == 0] = 0
    return (
        np.ascontiguousarray(img.T).tobytes() + np.ascontiguousarray(lab.T).tobytes(),
        idx.size,
        f,
    )


def caliper_mm(disp: Display, labels: np.ndarray, row: dict | None) -> list[list[float]] | None:
    """The thickness caliper of the overlays (:func:`octseg.report.overlay.thickness_caliper`)
    for a frame, as two points [x, y] mm from the catheter, as the browser draws struts; None
    where the frame has no calcium thickness."""
    from octseg.report.overlay import thickness_caliper

    ends = thickness_caliper(to_display(disp, labels), disp.dps, disp.center, row or {})
    if ends is None:
        return None
    (y0, y1), (x0, x1) = ends
    cy, cx = disp.center
    return [[(x - cx) * disp.dps, (y - cy) * disp.dps] for x, y in ((x0, y0), (x1, y1))]
