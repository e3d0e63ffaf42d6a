"""Lumen contour, area, centroid and diameters, batched over frames in torch.

The contour is sampled along rays from the catheter centre (polar input: the A-lines themselves;
Cartesian input: ``n_rays`` rays sampled at half-pixel steps by nearest-neighbour lookup). On
each ray the lumen radius is the outer edge of the run of lumen/strut samples that starts at the
catheter. Rays whose border touches the guidewire (class 4) or a strut (class 3) are masked and
filled by periodic linear interpolation from the nearest valid rays on both sides.

Distances about the lumen centroid (``rho_L(phi)``) come from the contour vertices sorted by
their angle about the centroid and interpolated periodically (:func:`periodic_profile`).
"""

from __future__ import annotations

import math

import torch

from octseg.classes import GUIDEWIRE, LUMEN, STRUT
from octseg.geometry.kernels import first_one

TWO_PI = 2 * math.pi


def _first_exit(vals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For label samples ``(B, N, S)`` along rays: index of the first non-lumen sample (S if
    none) and whether the lumen border on that ray touches a strut or the guidewire."""
    s = vals.shape[-1]
    # classes 1 (lumen) and 3 (strut) are the only ones with (c | 2) == 3
    assert (LUMEN | 2) == 3 and (STRUT | 2) == 3
    notl = (vals | 2).bitwise_xor_(3).clamp_(max=1)  # uint8 0/1: not lumen
    anyout, k = first_one(notl)
    del notl
    k = torch.where(anyout, k, torch.full_like(k, s))
    out_cls = torch.gather(vals, -1, k.clamp(max=s - 1).unsqueeze(-1)).squeeze(-1)
    in_cls = torch.gather(vals, -1, (k - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
    # A ray that meets the guidewire or its shadow anywhere carries no wall information: the
    # contour is interpolated there even when a prediction leaves a gap of wall or lumen between
    # the lumen and the shadow (on exact labels this equals "the border touches class 4").
    gw = (vals == GUIDEWIRE).any(dim=-1)
    masked = gw | (anyout & (out_cls == GUIDEWIRE)) | ((k > 0) & (in_cls == STRUT))
    return k, masked


def fill_masked_periodic(values: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Replace masked entries of periodic sequences ``(B, N)`` by linear interpolation between
    the nearest unmasked neighbours on both sides (wrapping). Rows with no unmasked entry are
    returned unchanged."""
    b, n = values.shape
    dev = values.device
    valid3 = (~masked).repeat(1, 3)
    pos = torch.arange(3 * n, device=dev).expand(b, -1)
    neg = torch.full_like(pos, -1)
    left = torch.cummax(torch.where(valid3, pos, neg), dim=1).values[:, n : 2 * n]
    rpos = torch.where(valid3.flip(1), pos, neg)
    right = (3 * n - 1 - torch.cummax(rpos, dim=1).values).flip(1)[:, n : 2 * n]
    ok = (left >= 0) & (right < 3 * n)
    vals3 = values.repeat(1, 3)
    lv = torch.gather(vals3, 1, left.clamp(0, 3 * n - 1))
    rv = torch.gather(vals3, 1, right.clamp(0, 3 * n - 1))
    i = torch.arange(n, n * 2, device=dev).expand(b, -1)
    span = (right - left).clamp(min=1).to(values.dtype)
    interp = lv + (rv - lv) * (i - left).to(values.dtype) / span
    return torch.where(masked & ok, interp, values)


def smooth_periodic(values: torch.Tensor, half_width: int) -> torch.Tensor:
    """Circular moving average over ``2*half_width + 1`` entries of each row ``(B, N)``."""
    if half_width <= 0:
        return values
    k = min(half_width, values.shape[1] // 2)
    padded = torch.cat([values[:, -k:], values, values[:, :k]], 1)
    return padded.unfold(1, 2 * k + 1, 1).mean(-1)


def catheter_radii_polar(lab: torch.Tensor, ps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lumen radii (mm) along every A-line of polar label maps ``(B, A, R)`` and the mask."""
    k, masked = _first_exit(lab)
    return ((k.to(torch.float32) - 0.5) * ps).clamp(min=0), masked


def ray_offsets(n_rays: int, n_samples: int, step: float, device) -> tuple[torch.Tensor, ...]:
    """Ray angles (n,) and sample offsets dy, dx (n, S) of ``n_samples`` steps of ``step``."""
    theta = torch.arange(n_rays, device=device, dtype=torch.float32) * (TWO_PI / n_rays)
    t = torch.arange(n_samples, device=device, dtype=torch.float32) * step
    return theta, t[None, :] * torch.sin(theta)[:, None], t[None, :] * torch.cos(theta)[:, None]


class CatheterRays:
    """Constant nearest-pixel index table of ``n_rays`` rays from the catheter centre of a
    Cartesian frame, one sample every half pixel out to ``max_r_px``."""

    step = 0.5

    def __init__(self, shape, center, n_rays, max_r_px, device):
        h, w = shape
        self.n_samples = int(math.ceil(max_r_px / self.step)) + 2
        self.theta, dy, dx = ray_offsets(n_rays, self.n_samples, self.step, device)
        rows = torch.round(center[0] + dy).long()
        cols = torch.round(center[1] + dx).long()
        self.inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        self.all_inside = bool(self.inside.all())
        self.index = torch.where(self.inside, rows * w + cols, 0).reshape(-1)

    def radii(self, lab: torch.Tensor, ps: float) -> tuple[torch.Tensor, torch.Tensor]:
        b = lab.shape[0]
        # gather with the (stride-0) expanded index: one shared table, no per-frame copies
        vals = torch.gather(lab.reshape(b, -1), 1, self.index.expand(b, -1))
        vals = vals.reshape(b, *self.inside.shape)
        if not self.all_inside:
            vals.masked_fill_(~self.inside, 0)
        k, masked = _first_exit(vals)
        return ((k.to(torch.float32) - 0.5) * self.step * ps).clamp(min=0), masked


def polygon_area_centroid(
    radii: torch.Tensor, theta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Area and centroid (cy, cx) of the star polygons with vertices ``radii`` at ``theta``."""
    x = radii * torch.cos(theta)
    y = radii * torch.sin(theta)
    x1, y1 = torch.roll(x, -1, 1), torch.roll(y, -1, 1)
    cross = x * y1 - x1 * y
    a2 = cross.sum(1)  # twice the signed area
    safe = torch.where(a2.abs() > 0, a2, torch.ones_like(a2))
    cx = ((x + x1) * cross).sum(1) / (3 * safe)
    cy = ((y + y1) * cross).sum(1) / (3 * safe)
    zero = torch.zeros_like(cx)
    return 0.5 * a2.abs(), torch.where(a2 != 0, cy, zero), torch.where(a2 != 0, cx, zero)


def periodic_profile(
    phi: torch.Tensor, dist: torch.Tensor, valid: torch.Tensor, query: torch.Tensor
) -> torch.Tensor:
    """Distance profile of closed curves given as points at angles ``phi`` (B, M) (radians,
    any order) and distances ``dist`` about a centre, interpolated periodically at ``query``
    angles in [0, 2*pi) ((Q,) or (B, Q)). Rows without valid points give NaN."""
    b, m = phi.shape
    if query.ndim == 1:
        query = query.expand(b, -1)
    query = query.contiguous()
    phi = torch.remainder(phi, TWO_PI)
    key = torch.where(valid, phi, torch.full_like(phi, 4 * TWO_PI))
    order = torch.argsort(key, dim=1)
    ps = torch.gather(key, 1, order)
    ds = torch.gather(dist, 1, order)
    vs = torch.gather(valid, 1, order)
    cnt = vs.sum(1)
    first_p, first_d = ps[:, :1], ds[:, :1]
    last_i = (cnt - 1).clamp(min=0)[:, None]
    last_p, last_d = torch.gather(ps, 1, last_i), torch.gather(ds, 1, last_i)
    ps = torch.where(vs, ps, first_p + TWO_PI)
    ds = torch.where(vs, ds, first_d)
    pp = torch.cat([last_p - TWO_PI, ps, first_p + TWO_PI], 1).contiguous()
    dp = torch.cat([last_d, ds, first_d], 1)
    j = torch.searchsorted(pp, query, right=True).clamp(1, m + 1)
    p0, p1 = torch.gather(pp, 1, j - 1), torch.gather(pp, 1, j)
    d0, d1 = torch.gather(dp, 1, j - 1), torch.gather(dp, 1, j)
    gap = p1 - p0
    t = torch.where(gap > 0, (query - p0) / torch.where(gap > 0, gap, torch.ones_like(gap)), 0.0)
    out = d0 + t.clamp(0, 1) * (d1 - d0)
    return torch.where(cnt[:, None] > 0, out, torch.full_like(out, float("nan")))


def centroid_profile(
    radii: torch.Tensor, theta: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, query
) -> torch.Tensor:
    """``rho_L`` at ``query`` angles about the centroid, from the catheter-ray contour."""
    y = radii * torch.sin(theta) - cy[:, None]
    x = radii * torch.cos(theta) - cx[:, None]
    phi = torch.atan2(y, x)
    dist = torch.sqrt(x * x + y * y)
    return periodic_profile(phi, dist, torch.ones_like(dist, dtype=torch.bool), query)


def diameters(rho: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean / min / max chord through the centre from a profile over [0, 2*pi) (B, Q), Q even."""
    half = rho.shape[1] // 2
    chord = rho[:, :half] + rho[:, half:]
    return chord.mean(1), chord.amin(1), chord.amax(1)
