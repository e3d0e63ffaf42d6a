"""The fixed polar grid the network sees, and intensity normalisation.

Both training and inference call these functions, so a model always sees the same geometry:

* ``net_grid = {"n_alines": A', "n_samples": R', "spacing_mm": s'}``: A' A-lines evenly over 360
  degrees (A-line ``i`` at ``2*pi*i/A'``, as in :mod:`octseg.io.labels`) and R' depth samples, sample
  ``j`` at radius ``j * s'`` mm from the catheter centre.
* :func:`to_net_grid` resamples native polar frames (any A-line count and depth spacing) onto it;
  :func:`from_net_grid` maps network outputs (logits, probabilities or label maps) back to a
  native polar shape. The A-line axis is periodic (interpolation wraps across A-line 0).
  Radii beyond the source depth read as 0 going onto the net grid; going back, radii beyond the
  net grid are **background**: label 0, and for multi-channel probabilities channel 0
  (background) = 1 and the others 0 (never a copy of the net grid's last sample, which would
  stretch a lesion at the edge of the net grid out to the full native depth).
* :func:`cartesian_to_net_grid` samples Cartesian frames directly onto the net grid.
* :func:`normalize` applies the intensity normalisation recorded in the checkpoint
  (``{"kind": "zscore", "mean": m, "std": s}`` on grey values in [0, 1], or ``{"kind": "none"}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from octseg.core.polar import cartesian_to_polar

GRID_KEYS = ("n_alines", "n_samples", "spacing_mm")


def check_net_grid(net_grid: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise a net-grid mapping to plain Python values."""
    missing = [k for k in GRID_KEYS if k not in net_grid]
    if missing:
        raise ValueError(f"net_grid lacks {', '.join(missing)}")
    out = {
        "n_alines": int(net_grid["n_alines"]),
        "n_samples": int(net_grid["n_samples"]),
        "spacing_mm": float(net_grid["spacing_mm"]),
    }
    if out["n_alines"] < 1 or out["n_samples"] < 1 or not out["spacing_mm"] > 0:
        raise ValueError(f"net_grid values must be positive, got {out}")
    return out


def _resample_polar(
    x: torch.Tensor, a_out: int, r_out: int, radial_scale: float, mode: str, pad: str
) -> torch.Tensor:
    """Resample ``x`` (B, C, A, R) onto (a_out, r_out); output column j reads source column
    ``j * radial_scale``; output row i reads source row ``i * A / a_out`` (periodic)."""
    b, c, a, r = x.shape
    is_int = not torch.is_floating_point(x)
    work = x.float() if is_int else x
    dev = work.device
    rows = torch.arange(a_out, device=dev, dtype=torch.float32) * (a / a_out)
    cols = torch.arange(r_out, device=dev, dtype=torch.float32) * radial_scale
    # wrap the A-line axis with one row each side so interpolation crosses the seam
    xp = torch.cat([work[:, :, -1:], work, work[:, :, :1]], dim=2)
    hp = a + 2
    gy = (rows + 1.0 + 0.5) / hp * 2 - 1
    gx = (cols + 0.5) / r * 2 - 1
    gy, gx = torch.meshgrid(gy, gx, indexing="ij")
    grid = torch.stack((gx, gy), dim=-1).to(work.dtype).unsqueeze(0).expand(b, -1, -1, -1)
    padding = "border" if pad == "background" else pad
    out = F.grid_sample(xp, grid, mode=mode, padding_mode=padding, align_corners=False)
    if pad == "zeros" and mode == "bilinear":
        # bilinear with zero padding fades the last half sample; cut cleanly beyond the source
        out = torch.where(cols <= r - 1 + 1e-6, out, torch.zeros((), dtype=out.dtype, device=dev))
    elif pad == "background":
        # inside the source: border-clamped interpolation; beyond its last sample: background
        beyond = cols > r - 0.5 + 1e-6  # past the outer edge of the last net sample
        if bool(beyond.any()):
            fill = torch.zeros(c, dtype=out.dtype, device=dev)
            if not is_int and c > 1:
                fill[0] = 1.0  # probabilities: all mass on channel 0 (background)
            out = torch.where(beyond, fill.view(1, c, 1, 1), out)
    return out.round().to(x.dtype) if is_int else out


def _as_bcar(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if x.ndim == 3:
        return x.unsqueeze(1), True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"expected (B, A, R) or (B, C, A, R), got shape {tuple(x.shape)}")


def to_net_grid(
    polar_frames: torch.Tensor,
    spacing_mm: float,
    net_grid: Mapping[str, Any],
    *,
    mode: str | None = None,
) -> torch.Tensor:
    """Native polar frames ``(B, [C,] A, R)`` at depth spacing ``spacing_mm`` -> the net grid.

    Floating tensors are interpolated bilinearly, integer tensors (label maps) by nearest
    neighbour (override with ``mode``). Depth beyond the source is 0.
    """
    g = check_net_grid(net_grid)
    x, squeeze = _as_bcar(polar_frames)
    mode = mode or ("bilinear" if torch.is_floating_point(x) else "nearest")
    out = _resample_polar(
        x, g["n_alines"], g["n_samples"], g["spacing_mm"] / float(spacing_mm), mode, "zeros"
    )
    return out.squeeze(1) if squeeze else out


def from_net_grid(
    logits_or_labels: torch.Tensor,
    out: tuple[int, int],
    spacing_mm: float,
    net_grid: Mapping[str, Any],
    *,
    mode: str | None = None,
) -> torch.Tensor:
    """Net-grid tensors ``(B, [C,] A', R')`` -> native polar ``(B, [C,] A, R)`` at ``spacing_mm``.

    Floating tensors (logits, probabilities) are interpolated bilinearly, integer label maps by
    nearest neighbour. Radii beyond the net grid are background (label 0; probabilities: channel
    0 = 1, the others 0): the network saw nothing there.
    """
    g = check_net_grid(net_grid)
    x, squeeze = _as_bcar(logits_or_labels)
    if x.shape[-2:] != (g["n_alines"], g["n_samples"]):
        raise ValueError(
            f"expected net-grid shape ({g['n_alines']}, {g['n_samples']}), got {tuple(x.shape)}"
        )
    mode = mode or ("bilinear" if torch.is_floating_point(x) else "nearest")
    a, r = int(out[0]), int(out[1])
    y = _resample_polar(x, a, r, float(spacing_mm) / g["spacing_mm"], mode, "background")
    return y.squeeze(1) if squeeze else y


def cartesian_to_net_grid(
    cart_frames: torch.Tensor,
    spacing_mm: float,
    net_grid: Mapping[str, Any],
    center: tuple[float, float] | None = None,
    *,
    mode: str | None = None,
) -> torch.Tensor:
    """Cartesian frames ``(B, [C,] H, W)`` centred on ``center`` -> the polar net grid."""
    g = check_net_grid(net_grid)
    mode = mode or ("bilinear" if torch.is_floating_point(cart_frames) else "nearest")
    return cartesian_to_polar(
        cart_frames,
        n_alines=g["n_alines"],
        n_samples=g["n_samples"],
        cart_spacing_mm=float(spacing_mm),
        polar_spacing_mm=g["spacing_mm"],
        center=center,
        mode=mode,
    )


# ---------------------------------------------------------------- intensity normalisation


def compute_normalization(frames: list[np.ndarray] | np.ndarray, kind: str = "zscore") -> dict:
    """Normalisation parameters from training frames (grey values in [0, 1])."""
    if kind == "none":
        return {"kind": "none"}
    if kind != "zscore":
        raise ValueError(f"unknown normalization kind {kind!r} (expected 'zscore' or 'none')")
    total = 0.0
    total_sq = 0.0
    count = 0
    for f in frames if isinstance(frames, list) else [frames]:
        f64 = np.asarray(f, dtype=np.float64)
        total += float(f64.sum())
        total_sq += float((f64 * f64).sum())
        count += f64.size
    if count == 0:
        raise ValueError("no frames to compute the normalisation from")
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    return {"kind": "zscore", "mean": float(mean), "std": max(std, 1e-6)}


def normalize(x: torch.Tensor | np.ndarray, norm: Mapping[str, Any]) -> Any:
    """Apply recorded normalisation to grey values in [0, 1] (tensor or array)."""
    kind = norm.get("kind", "none")
    if kind == "none":
        return x
    if kind == "zscore":
        return (x - float(norm["mean"])) / float(norm["std"])
    raise ValueError(f"unknown normalization kind {kind!r}")
