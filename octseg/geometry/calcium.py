"""Calcium arc, thickness, depth and area, batched over frames in torch.

Rays are cast from each frame's lumen centroid (``n_rays`` rays over 360 degrees) and sampled by
nearest-neighbour lookup every ``step`` mm (one pixel): for Cartesian input straight on the pixel
grid, for polar input by mapping each sample to (A-line, depth) about the catheter (the A-line
axis wraps).
"""

from __future__ import annotations

import math

import torch

from octseg.classes import CALCIUM, GUIDEWIRE
from octseg.geometry.lumen import TWO_PI


class RayGrid:
    """Integer sampling grid (step = pixel spacing) about the catheter, for casting rays from
    per-frame origins without per-sample floating-point work.

    ``table[(gy + L) * (2L + 1) + gx + L]`` is the flat index (row * W + col) of the label
    sample nearest to grid point (gy, gx), or -1 outside the frame. Grid point (gy, gx) lies at
    ``(gy, gx) * ps`` mm from the catheter (polar) or at the centre of pixel
    ``(round(cy) + gy, round(cx) + gx)`` (Cartesian). Ray sample ``k`` of ray ``q`` is the grid
    point nearest to ``origin + k * ps * (sin phi_q, cos phi_q)``.
    """

    def __init__(self, space, shape, ps, center_px, half, n_rays, n_samples, device):
        h, w = shape
        self.space, self.ps, self.half, self.center = space, ps, half, center_px
        g = torch.arange(-half, half + 1, device=device)
        gy, gx = torch.meshgrid(g, g, indexing="ij")
        if space == "cartesian":
            self.round_center = (round(center_px[0]), round(center_px[1]))
            rows, cols = gy + self.round_center[0], gx + self.round_center[1]
            inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        else:
            y, x = gy.float(), gx.float()
            rows = torch.remainder(torch.round(torch.atan2(y, x) * (h / TWO_PI)).long(), h)
            cols = torch.round(torch.sqrt(y * y + x * x)).long()
            inside = cols < w
        self.table = torch.where(inside, rows * w + cols, -1).to(torch.int32).reshape(-1)
        phi = torch.arange(n_rays, device=device, dtype=torch.float64) * (TWO_PI / n_rays)
        k = torch.arange(n_samples, device=device, dtype=torch.float64)
        oy = torch.round(k[None, :] * torch.sin(phi)[:, None]).long()
        ox = torch.round(k[None, :] * torch.cos(phi)[:, None]).long()
        self.offsets = (oy * (2 * half + 1) + ox).to(torch.int32)  # (n, S)
        self.n_samples = n_samples

    def origin(self, cy: torch.Tensor, cx: torch.Tensor):
        """Grid origin nearest to centres (cy, cx) mm: (gy, gx) and its position in mm."""
        if self.space == "cartesian":
            oy = torch.round(self.center[0] + cy / self.ps) - self.round_center[0]
            ox = torch.round(self.center[1] + cx / self.ps) - self.round_center[1]
            my = (oy + self.round_center[0] - self.center[0]) * self.ps
            mx = (ox + self.round_center[1] - self.center[1]) * self.ps
        else:
            oy, ox = torch.round(cy / self.ps), torch.round(cx / self.ps)
            my, mx = oy * self.ps, ox * self.ps
        return oy.long(), ox.long(), my, mx

    def sample(self, lab: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor) -> torch.Tensor:
        """Labels ``(B, n, S)`` along the rays from grid origins (oy, ox) (B,)."""
        b, h, w = lab.shape
        side = 2 * self.half + 1
        base = ((oy + self.half) * side + ox + self.half).to(torch.int32)
        gidx = base[:, None, None] + self.offsets[None]
        pix = self.table.index_select(0, gidx.reshape(-1)).reshape(gidx.shape)
        del gidx
        frame_base = (torch.arange(b, device=lab.device, dtype=torch.int32) * (h * w))[
            :, None, None
        ]
        flat = (pix.clamp(min=0) + frame_base).reshape(-1)
        vals = lab.reshape(-1).index_select(0, flat).reshape(pix.shape)
        return torch.where(pix >= 0, vals, torch.zeros((), dtype=vals.dtype, device=vals.device))


def bridge_shadow(hit: torch.Tensor, shadow: torch.Tensor) -> torch.Tensor:
    """Rays ``(B, n)`` inside a guidewire-shadow run whose nearest non-shadow rays on both sides
    (wrapping) hit calcium."""
    b, n = hit.shape
    dev = hit.device
    gw = shadow & ~hit
    keep3 = (~gw).repeat(1, 3)
    hit3 = hit.repeat(1, 3)
    pos = torch.arange(3 * n, device=dev).expand(b, -1)
    neg = torch.full_like(pos, -1)
    left = torch.cummax(torch.where(keep3, pos, neg), 1).values[:, n : 2 * n]
    right = (3 * n - 1 - torch.cummax(torch.where(keep3.flip(1), pos, neg), 1).values).flip(1)
    right = right[:, n : 2 * n]
    lh = torch.gather(hit3, 1, left.clamp(0, 3 * n - 1)) & (left >= 0)
    rh = torch.gather(hit3, 1, right.clamp(0, 3 * n - 1)) & (right < 3 * n)
    return gw & lh & rh


def calcium_metrics(
    vals: torch.Tensor, step: float, rho_l: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-frame arc (deg), max thickness, min depth (mm) from centroid-ray samples ``(B, n, S)``
    and the lumen profile ``rho_l`` (B, n) on the same rays (NaN where there is no lumen)."""
    n = vals.shape[1]
    ca = vals == CALCIUM
    hit = ca.any(-1)
    shadow = (vals == GUIDEWIRE).any(-1)
    bridged = bridge_shadow(hit, shadow)
    arc = (hit | bridged).sum(1).float() * (360.0 / n)
    thick = ca.sum(-1).amax(1).float() * step
    first = ca.to(torch.uint8).argmax(-1).float()
    lead = ((first - 0.5) * step).clamp(min=0)
    depth = torch.where(hit, (lead - rho_l).clamp(min=0), torch.full_like(lead, math.inf))
    depth = depth.amin(1)
    any_ca = hit.any(1)
    nan = torch.full_like(arc, float("nan"))
    depth = torch.where(any_ca & torch.isfinite(depth), depth, nan)
    return {
        "calcium_arc_deg": torch.where(any_ca, arc, nan),
        "calcium_max_thickness_mm": torch.where(any_ca, thick, nan),
        "calcium_min_depth_mm": depth,
    }
