"""Catheter-centred polar <-> Cartesian conversion in torch: batched, on any device.

Convention (same as :mod:`octseg.io.labels`): polar rows are A-lines evenly spaced over 360 degrees,
A-line ``i`` at ``theta = 2*pi*i/A``; polar column ``j`` lies at radius ``j * ps_polar`` mm from
the catheter centre. A polar sample ``(theta, r)`` sits at Cartesian offset
``(dy, dx) = (r*sin(theta), r*cos(theta))`` mm, i.e. pixel
``(cy + dy/ps_cart, cx + dx/ps_cart)``.

Images are interpolated (``mode="bilinear"``), label maps use ``mode="nearest"``. The A-line axis
is periodic: interpolation between the last and the first A-line wraps around. Samples outside
the source are 0.

:func:`wrap_pi` (numpy) wraps angle differences to ``[-pi, pi)``; the synthetic generator and the
hybrid inserts share it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def wrap_pi(a: np.ndarray | float) -> np.ndarray:
    """Angles (radians) wrapped to the half-open interval ``[-pi, pi)``: ``+pi`` maps to ``-pi``.

    ``abs(wrap_pi(a))`` is the angular distance, in ``[0, pi]``, whichever sign ``a`` has.
    """
    return (np.asarray(a) + math.pi) % (2 * math.pi) - math.pi


def _as_bchw(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if x.ndim == 3:
        return x.unsqueeze(1), True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"expected (B, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")


def _sample(src: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``src`` (B, C, H, W) at fractional pixel (rows, cols) of shape (Ho, Wo)."""
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    b, _, h, w = src.shape
    is_int = not torch.is_floating_point(src)
    work = src.float() if is_int else src
    gx = (cols + 0.5) / w * 2 - 1  # align_corners=False pixel-centre convention
    gy = (rows + 0.5) / h * 2 - 1
    grid = torch.stack((gx, gy), dim=-1).to(work.dtype).unsqueeze(0).expand(b, -1, -1, -1)
    out = F.grid_sample(work, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out.round().to(src.dtype) if is_int else out


def polar_to_cartesian(
    polar: torch.Tensor,
    *,
    out_size: tuple[int, int],
    polar_spacing_mm: float,
    cart_spacing_mm: float,
    center: tuple[float, float] | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Scan-convert catheter-centred polar frames ``(B, [C,] A, R)`` to ``(B, [C,] H, W)``."""
    x, squeeze = _as_bchw(polar)
    a, r = x.shape[-2:]
    h, w = out_size
    cy, cx = center if center is not None else ((h - 1) / 2.0, (w - 1) / 2.0)
    dev = x.device
    yy = (torch.arange(h, device=dev, dtype=torch.float32) - cy) * cart_spacing_mm
    xx = (torch.arange(w, device=dev, dtype=torch.float32) - cx) * cart_spacing_mm
    yy, xx = torch.meshgrid(yy, xx, indexing="ij")
    rad = torch.sqrt(yy * yy + xx * xx) / polar_spacing_mm  # polar column
    theta = torch.remainder(torch.atan2(yy, xx), 2 * math.pi)
    row = theta / (2 * math.pi) * a  # polar row, periodic
    # wrap the A-line axis: pad one row on each side so interpolation crosses the seam
    xp = torch.cat([x[..., -1:, :], x, x[..., :1, :]], dim=-2)
    out = _sample(xp, row + 1.0, rad, mode)
    out = torch.where((rad <= r - 0.5), out, torch.zeros((), dtype=out.dtype, device=dev))
    return out.squeeze(1) if squeeze else out


def cartesian_to_polar(
    cart: torch.Tensor,
    *,
    n_alines: int,
    n_samples: int,
    cart_spacing_mm: float,
    polar_spacing_mm: float,
    center: tuple[float, float] | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Resample Cartesian frames ``(B, [C,] H, W)`` onto catheter-centred polar ``(B, [C,] A, R)``."""
    x, squeeze = _as_bchw(cart)
    h, w = x.shape[-2:]
    cy, cx = center if center is not None else ((h - 1) / 2.0, (w - 1) / 2.0)
    dev = x.device
    theta = torch.arange(n_alines, device=dev, dtype=torch.float32) * (2 * math.pi / n_alines)
    rad = torch.arange(n_samples, device=dev, dtype=torch.float32) * polar_spacing_mm
    rows = cy + rad[None, :] * torch.sin(theta)[:, None] / cart_spacing_mm
    cols = cx + rad[None, :] * torch.cos(theta)[:, None] / cart_spacing_mm
    out = _sample(x, rows, cols, mode)
    return out.squeeze(1) if squeeze else out
