"""Calcium arc, thickness, depth and area, batched over frames in torch.

Rays are cast from each frame's lumen centroid (``n_rays`` rays over 360 degrees) and sampled by
nearest-neighbour lookup every ``step`` mm (one pixel): for Cartesian input straight on the pixel
grid, for polar input by mapping each sample to (A-line, depth) about the catheter (the A-line
axis wraps).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from octseg.core.classes import CALCIUM, GUIDEWIRE, STRUT
from octseg.geometry.kernels import count_along, eq_u8, first_one
from octseg.geometry.lumen import TWO_PI


@functools.lru_cache(maxsize=4)
def _lookup_table(space, shape, round_center, half, device) -> torch.Tensor:
    """:attr:`RayGrid.table` (kept for reuse: it depends only on the frame geometry and the grid
    size, which are the same for every chunk of a pullback and usually across pullbacks)."""
    (h, w) = shape
    g = torch.arange(-half, half + 1, device=device)
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    if space == "cartesian":
        rows, cols = gy + round_center[0], gx + round_center[1]
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    else:
        y, x = gy.float(), gx.float()
        rows = torch.remainder(torch.round(torch.atan2(y, x) * (h / TWO_PI)).long(), h)
        cols = torch.round(torch.sqrt(y * y + x * x)).long()
        inside = cols < w
    return torch.where(inside, rows * w + cols, h * w).reshape(-1)


class RayGrid:
    """Integer sampling grid (step = pixel spacing) about the catheter, for casting rays from
    per-frame origins without per-sample floating-point work.

    ``table[(gy + L) * (2L + 1) + gx + L]`` is the flat index (row * W + col) of the label
    sample nearest to grid point (gy, gx), or ``H * W`` (a zero sentinel appended to each frame)
    outside the frame. Grid point (gy, gx) lies at
    ``(gy, gx) * ps`` mm from the catheter (polar) or at the centre of pixel
    ``(round(cy) + gy, round(cx) + gx)`` (Cartesian). Ray sample ``k`` of ray ``q`` is the grid
    point nearest to ``origin + k * ps * (sin phi_q, cos phi_q)``.

    The table depends only on the frame geometry and ``half`` and is cached (a few of them, in
    :func:`_lookup_table`). Cartesian input needs no table (the index is affine
    there: :meth:`_sample_cartesian`), which gives the same samples.
    """

    def __init__(self, space, shape, ps, center_px, half, n_rays, n_samples, device):
        self.space, self.ps, self.half, self.center = space, ps, half, center_px
        self.shape, self.device = shape, device
        h, w = shape
        if space == "cartesian":
            self.round_center = (round(center_px[0]), round(center_px[1]))
        phi = torch.arange(n_rays, device=device, dtype=torch.float64) * (TWO_PI / n_rays)
        k = torch.arange(n_samples, device=device, dtype=torch.float64)
        oy = torch.round(k[None, :] * torch.sin(phi)[:, None]).long()
        ox = torch.round(k[None, :] * torch.cos(phi)[:, None]).long()
        self.offsets = (oy * (2 * half + 1) + ox).to(torch.int32)  # (n, S)
        self.n_samples = n_samples
        if space == "cartesian":  # the table is affine there: offsets (dy, dx) of the samples
            self.oy, self.ox = oy, ox
            self.reach = (int(oy.min()), int(oy.max()), int(ox.min()), int(ox.max()))
            self._pixel_offsets: dict[int, torch.Tensor] = {}

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

    @property
    def table(self) -> torch.Tensor:
        rc = self.round_center if self.space == "cartesian" else None
        return _lookup_table(self.space, self.shape, rc, self.half, str(self.device))

    def _sample_cartesian(self, lab, oy, ox) -> torch.Tensor:
        """Cartesian rays: sample index = origin pixel + a constant offset per sample, in the
        frames zero-padded just enough for every ray of this batch to stay inside."""
        b, h, w = lab.shape
        r0, c0 = oy + self.round_center[0], ox + self.round_center[1]
        y0, y1, x0, x1 = self.reach
        ext = torch.stack(
            [-(r0.min() + y0), r0.max() + y1 - (h - 1), -(c0.min() + x0), c0.max() + x1 - (w - 1)]
        )
        top, bottom, left, right = (max(0, int(v)) for v in ext.tolist())  # one sync
        if top or bottom or left or right:
            lab = torch.nn.functional.pad(lab, (left, right, top, bottom))
            r0, c0 = r0 + top, c0 + left
            w = w + left + right
        if w not in self._pixel_offsets:
            self._pixel_offsets[w] = self.oy * w + self.ox
        idx = (r0 * w + c0)[:, None, None] + self._pixel_offsets[w][None]
        return torch.gather(lab.reshape(b, -1), 1, idx.reshape(b, -1)).reshape(idx.shape)

    def sample(self, lab: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor) -> torch.Tensor:
        """Labels ``(B, n, S)`` along the rays from grid origins (oy, ox) (B,); 0 outside."""
        if self.space == "cartesian":
            return self._sample_cartesian(lab, oy, ox)
        return self._sample_table(lab, oy, ox)

    def _sample_table(self, lab, oy, ox) -> torch.Tensor:
        """Any space: look the samples up in :attr:`table` (two gathers)."""
        b = lab.shape[0]
        flat = lab.reshape(b, -1)
        side = 2 * self.half + 1
        base = ((oy + self.half) * side + ox + self.half).to(torch.int32)
        gidx = base[:, None, None] + self.offsets[None]
        pix = self.table.index_select(0, gidx.reshape(-1)).reshape(b, -1)
        del gidx
        flat = torch.cat([flat, flat.new_zeros(b, 1)], 1)  # index h * w: the zero sentinel
        return torch.gather(flat, 1, pix).reshape(b, *self.offsets.shape)


def shadow_rays(vals: torch.Tensor, buf: torch.Tensor | None = None) -> torch.Tensor:
    """Rays ``(B, n)`` of centroid-ray samples ``(B, n, S)`` that cross the guidewire (class 4,
    labelled with its shadow) or a stent strut: nothing behind them can be seen. ``buf``: an
    optional uint8 scratch of the samples' shape (see :func:`eq_u8`)."""
    if vals.dtype == torch.uint8 and GUIDEWIRE == STRUT + 1:  # one pass: 3 and 4 are adjacent
        out = torch.empty_like(vals) if buf is None else buf  # (uint8 wraps below STRUT)
        return out.copy_(vals).sub_(STRUT).le_(1).amax(-1) > 0
    gw = eq_u8(vals, GUIDEWIRE, out=buf).amax(-1) > 0
    return gw | (eq_u8(vals, STRUT, out=buf).amax(-1) > 0)


def bridge_shadow(hit: torch.Tensor, shadow: torch.Tensor) -> torch.Tensor:
    """Rays ``(B, n)`` inside a run of ``shadow`` rays (guidewire or strut, :func:`shadow_rays`)
    whose nearest non-shadow rays on both sides (wrapping) hit calcium (``hit``)."""
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
    vals: torch.Tensor, step: float, rho_l: torch.Tensor, shadow: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Per-frame arc (deg), max thickness, min depth (mm) from centroid-ray samples ``(B, n, S)``
    and the lumen profile ``rho_l`` (B, n) on the same rays (NaN where there is no lumen).
    ``shadow``: the rays' :func:`shadow_rays` when the caller has them already."""
    n = vals.shape[1]
    buf = torch.empty(vals.shape, dtype=torch.uint8, device=vals.device)
    if shadow is None:
        shadow = shadow_rays(vals, buf)
    ca = eq_u8(vals, CALCIUM, out=buf)
    hit, first = first_one(ca)
    bridged = bridge_shadow(hit, shadow)
    arc = (hit | bridged).sum(1).float() * (360.0 / n)
    counts = count_along(ca, -1)
    del ca, buf
    thick = counts.amax(1).float() * step
    lead = ((first.float() - 0.5) * step).clamp(min=0)
    depth = torch.where(hit, (lead - rho_l).clamp(min=0), torch.full_like(lead, math.inf))
    depth = depth.amin(1)
    any_ca = hit.any(1)
    nan = torch.full_like(arc, float("nan"))
    depth = torch.where(any_ca & torch.isfinite(depth), depth, nan)
    return {
        "calcium_arc_deg": torch.where(any_ca, arc, nan),
        "calcium_max_thickness_mm": torch.where(any_ca, thick, nan),
        "calcium_max_thickness_angle_deg": torch.where(
            any_ca, thickest_ray(counts) * (360.0 / n), nan
        ),
        "calcium_min_depth_mm": depth,
    }


def thickest_ray(counts: torch.Tensor) -> torch.Tensor:
    """Index (float) of the ray ``(B, n)`` of ``counts`` that stands for where the maximum is
    measured. Of the runs of adjacent rays with calcium (lesions), the one holding the most rays
    at the maximum; in it, the rays within one sample of the maximum (a lesion of even thickness
    has many, and rasterisation moves a count by one); of those, the one nearest their mean
    position along the run: the middle of an even lesion, the peak of a peaked one, never a ray
    of another lesion or one without calcium. Integer arithmetic throughout, so a row gives the
    same ray in any batch and on any device. Rows without calcium give an arbitrary ray
    (callers mask them)."""
    b, n = counts.shape
    mx = counts.amax(1, keepdim=True)
    run, pos = _runs(counts > 0)
    score = torch.zeros(b, n + 1, dtype=torch.int64, device=counts.device)
    score.scatter_add_(1, run, (counts == mx).long())
    score[:, 0] = -1
    best = run == score.argmax(1, keepdim=True)  # the lesion with the most rays at the maximum
    near = best & (counts >= mx - 1)
    k = near.sum(1, keepdim=True)
    off = (2 * k * pos - 2 * (pos * near).sum(1, keepdim=True)).abs()  # 2k |pos - mean|
    return torch.where(near, off, torch.full_like(off, 4 * n * n + 1)).argmin(1).float()


def thickest_angle_deg(lengths_mm: np.ndarray, step_mm: float) -> float:
    """Where the maximum of the calcium lengths ``lengths_mm`` along ``n`` rays (ray ``k``
    centred at ``(k + 0.5) * 360 / n`` degrees) lies, by :func:`thickest_ray`'s rule on the
    lengths in whole samples of ``step_mm`` (rounded up: every ray that meets calcium counts at
    least one): the exact truths of the generators (synthetic and hybrid) use it, so that they
    pick their place as the product picks its own."""
    counts = np.ceil(np.asarray(lengths_mm, dtype=np.float64) / step_mm - 1e-9).astype(np.int64)
    k = float(thickest_ray(torch.from_numpy(counts)[None])[0])
    return (k + 0.5) * 360.0 / counts.size


def _runs(on: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The circular runs of ``on`` ``(B, n)`` along each row: their labels (1, 2, ... per run,
    0 off the runs; a run across the end of a row and its start is one run) and each ray's
    position along the row rotated to begin at an "off" ray, so that no run wraps there."""
    n = on.shape[1]
    shift = torch.where(on.all(1), 0, (~on).float().argmax(1))[:, None]  # the first "off" ray
    ray = torch.arange(n, device=on.device)[None]
    rot = on.gather(1, (ray + shift) % n)
    start = rot & ~torch.roll(rot, 1, 1)
    start[:, 0] = rot[:, 0]  # an "off" ray, unless the whole row is one run
    pos = (ray - shift) % n  # each ray's place in the rotated row
    return (torch.cumsum(start, 1) * rot).gather(1, pos), pos
