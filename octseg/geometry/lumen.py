"""Lumen contour, area, centroid and diameters, batched over frames in torch.

The contour is sampled along rays from the catheter centre (polar input: the A-lines themselves;
Cartesian input: ``n_rays`` rays sampled at half-pixel steps by nearest-neighbour lookup). On
each ray the lumen radius is the outer edge of the run of lumen/strut samples that starts at the
catheter. With ``fill_lumen_holes`` (the default, :func:`lumen_exit`) that run is taken in the
*filled* lumen region: samples within ``catheter_radius_mm`` count as lumen (the catheter and its
sheath rings), only the lumen component connected to the catheter is kept, and every non-lumen
region it encloses (a speck, an overlay marker, residual blood: anything not connected to the
tissue beyond the lumen) is filled, so it does not end a ray. Non-lumen connected to the wall (a
dissection flap, a speck touching the border) does. Rays that meet the guidewire (class 4), or a
strut (class 3) before their exit (its shadow hides the wall), are masked and filled by periodic
linear interpolation from the nearest valid rays on both sides.

Distances about the lumen centroid (``rho_L(phi)``) come from the contour vertices sorted by
their angle about the centroid and interpolated periodically (:func:`periodic_profile`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from octseg.core.classes import GUIDEWIRE, LUMEN, STRUT
from octseg.core.contour import polygon_areas
from octseg.geometry.components import label_periodic
from octseg.geometry.kernels import (
    count_along,
    eq_u8,
    farthest_corner,
    first_one,
    pieces,
    round_up,
)
from octseg.geometry.settings import GeometrySettings

TWO_PI = 2 * math.pi


def _runs_reach(cur: torch.Tensor, mask: torch.Tensor, dim: int, periodic: bool) -> torch.Tensor:
    """Samples of ``mask`` in a run (along ``dim``) of ``mask`` that holds a sample of ``cur``
    (bool tensors, ``cur`` inside ``mask``): runs are numbered by a cumulative count of the
    gaps, marked in a flat table where they hold ``cur`` and read back."""
    m = mask.movedim(dim, -1)
    shape = m.shape
    n = shape[-1]
    m = m.reshape(-1, n)
    c = cur.movedim(dim, -1).reshape(-1, n)
    rows = m.shape[0]
    seg = torch.cumsum(~m, 1, dtype=torch.int32)
    if periodic:  # the last run of a line continues its first one
        wrap = m[:, :1] & m[:, -1:]
        seg = torch.where(wrap & (seg == seg[:, -1:]), 0, seg)
    ids = (seg + (torch.arange(rows, dtype=torch.int32, device=m.device) * (n + 1))[:, None]).long()
    table = torch.zeros(rows * (n + 1), dtype=torch.bool, device=m.device)
    table[ids[c]] = True
    return (table[ids] & m).reshape(shape).movedim(-1, dim)


def _shift(x: torch.Tensor, da: int, ds: int) -> torch.Tensor:
    """``x`` (B, A, S) moved by ``da`` rows (periodic) and ``ds`` samples (zero-filled)."""
    y = torch.roll(x, da, 1)
    if ds > 0:
        return torch.cat([torch.zeros_like(y[..., :ds]), y[..., :-ds]], -1)
    return torch.cat([y[..., -ds:], torch.zeros_like(y[..., :-ds])], -1)


def reconstruct(seed: torch.Tensor, mask: torch.Tensor, max_iter: int = 256) -> torch.Tensor:
    """The 8-connected parts of ``mask`` (bool (B, A, S), rows periodic) that hold a ``seed``
    sample: runs along samples, runs along rows (wrapping) and diagonal steps, repeated until
    nothing changes. Runs make each pass cover whole straight stretches, so a few passes
    suffice for the shapes of a lumen and its wall."""
    cur = seed & mask
    count = int(cur.sum())
    for _ in range(max_iter):
        cur = _runs_reach(cur, mask, 2, False)
        cur = _runs_reach(cur, mask, 1, True)
        diag = cur.clone()
        for da, ds in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            diag |= _shift(cur, da, ds)
        cur = diag & mask
        new = int(cur.sum())
        if new == count:
            break
        count = new
    return cur


def _lumen_like(vals: torch.Tensor) -> torch.Tensor:
    """uint8 0/1: samples of class 1 (lumen) or 3 (strut)."""
    # classes 1 (lumen) and 3 (strut) are the only ones with (c | 2) == 3
    assert (LUMEN | 2) == 3 and (STRUT | 2) == 3
    return (vals | 2).eq_(3)


class KeptLumen(NamedTuple):
    """The catheter-connected lumen that :func:`lumen_exit` labelled: frames ``frames`` of the
    batch, samples ``lo`` onwards of every ray (``kept``: bool ``(len(frames), N, hi - lo)``)."""

    frames: torch.Tensor
    lo: int
    kept: torch.Tensor


def lumen_exit(
    vals: torch.Tensor,
    cath_samples: int = 0,
    fill: bool = True,
    skip: torch.Tensor | None = None,
    with_kept: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, KeptLumen]:
    """Index of the first sample outside the lumen on each ray of label samples ``(B, N, S)``
    (rows: rays, periodic; S where the lumen reaches the end).

    ``fill`` (default): the lumen is the region of lumen/strut samples connected to the
    catheter (8-connectivity; the first ``cath_samples`` samples of every ray, the catheter and
    its sheath rings, connect whatever lumen they touch), with every non-lumen region it
    encloses filled. A region is *enclosed* when it has no 8-connected path of non-lumen
    samples to the last sample of a ray, i.e. to the tissue beyond the lumen; the guidewire
    (class 4: an object in the lumen and its shadow) ends the rays that meet it but is no
    such path, so a speck touching the guidewire is still filled. Without ``fill``
    the first non-lumen sample ends the ray. Frames whose lumen already is one run from the
    first sample on every ray skip the filling (it could not change them); rays in ``skip``
    ``(B, N)`` (e.g. through the guidewire, whose radius is interpolated anyway) do not count
    in that test. ``with_kept`` (with ``fill``): also the :class:`KeptLumen` of the frames
    that were filled."""
    s = vals.shape[-1]
    lum = _lumen_like(vals)
    anyout, k = first_one(1 - lum)
    k = torch.where(anyout, k, torch.full_like(k, s))
    if not fill:
        return k
    extra = count_along(lum, -1) > k  # lumen beyond the first run (cheap uint8 count)
    if skip is not None:
        extra &= ~skip
    busy = extra.any(1).nonzero().squeeze(1)
    kept = KeptLumen(busy, 0, torch.zeros(0, *k.shape[1:], 0, dtype=torch.bool, device=k.device))
    if busy.numel():
        lb = lum[busy]
        anyin, kl = first_one(lb.flip(-1))
        last = torch.where(anyin, s - 1 - kl, torch.full_like(kl, -1))
        gw = vals[busy] == GUIDEWIRE
        k[busy], lo, part = _filled_exit(lb, gw, k[busy], last, cath_samples)
        kept = KeptLumen(busy, lo, part)
    return (k, kept) if with_kept else k


def _filled_exit(
    lum: torch.Tensor, gw: torch.Tensor, k: torch.Tensor, last: torch.Tensor, cath_samples: int
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """:func:`lumen_exit` with filling, on the samples between the nearest exit ``k`` and the
    farthest lumen sample ``last`` of the frames (everything before is lumen connected to the
    catheter, everything after is tissue beyond the lumen): the exit, the first sample of that
    range and the catheter-connected lumen on it. On CPU the components come from
    ``scipy.ndimage.label`` frame by frame; on other devices from the batched
    :func:`reconstruct`; both give the same samples."""
    s = lum.shape[-1]
    lo = max(int(k.min()) - 1, 0)
    hi = min(int(last.max()) + 2, s)
    lb, gb = lum[..., lo:hi].bool(), gw[..., lo:hi]
    kept = connected_lumen(lb, max(cath_samples - lo, 0))
    anyo, ko = first_one(beyond_lumen(kept, gb).to(torch.uint8))
    return torch.where(anyo, ko + lo, torch.full_like(ko, s)), lo, kept


def beyond_lumen(kept: torch.Tensor, gw: torch.Tensor) -> torch.Tensor:
    """Samples outside the filled lumen, given the catheter-connected lumen ``kept``
    (:func:`connected_lumen`): the guidewire samples ``gw``, and the samples that are not in
    ``kept`` and are connected to the last column other than through the guidewire. On CPU
    ``scipy.ndimage.label`` frame by frame, elsewhere the batched :func:`reconstruct`."""
    if kept.device.type == "cpu":
        return _beyond_scipy(kept, gw)
    return _beyond_torch(kept, gw)


def _beyond_torch(kept: torch.Tensor, gw: torch.Tensor) -> torch.Tensor:
    """:func:`beyond_lumen` batched with :func:`reconstruct`."""
    seed_o = torch.zeros_like(kept)
    seed_o[..., -1] = True
    return reconstruct(seed_o, ~kept & ~gw) | gw


def _reach_scipy(mask: np.ndarray, seed_col: int) -> np.ndarray:
    """Pixels of ``mask`` (A, S) 8-connected (rows periodic) to its column ``seed_col``."""
    lab, n = label_periodic(mask)
    hit = np.zeros(n + 1, bool)
    seeds = lab[:, seed_col]
    hit[seeds[seeds > 0]] = True
    return hit[lab]


def _beyond_scipy(kept: torch.Tensor, gw: torch.Tensor) -> torch.Tensor:
    """:func:`_beyond_torch` frame by frame with ``scipy.ndimage.label``."""
    out = np.zeros(kept.shape, bool)
    for f, (m, g) in enumerate(zip(kept.numpy(), gw.numpy())):
        out[f] = _reach_scipy(~m & ~g, -1) | g
    return torch.from_numpy(out)


def _kept_scipy(m: np.ndarray, band: int) -> np.ndarray:
    """Lumen samples of ``m`` (A, S) connected to the first column through the first ``band``
    columns (the catheter)."""
    passable = m.copy()
    passable[:, :band] = True
    return _reach_scipy(passable, 0) & m


def connected_lumen(lb: torch.Tensor, band: int) -> torch.Tensor:
    """The lumen samples of ``lb`` (bool (B, N, S), rows periodic) 8-connected to the catheter:
    to the first sample of a ray, with the first ``band`` samples of every ray passable (the
    catheter and its sheath rings). CPU: ``scipy.ndimage.label`` frame by frame; other devices:
    the batched :func:`reconstruct`."""
    if lb.device.type == "cpu":
        return torch.from_numpy(np.stack([_kept_scipy(m, band) for m in lb.numpy()]))
    return _kept_torch(lb, band)


def _kept_torch(lb: torch.Tensor, band: int) -> torch.Tensor:
    """:func:`connected_lumen` batched with :func:`reconstruct`."""
    passable = lb.clone()
    passable[..., :band] = True
    seed = torch.zeros_like(lb)
    seed[..., 0] = True
    return reconstruct(seed, passable) & lb


def _first_exit(
    vals: torch.Tensor,
    cath_samples: int = 0,
    fill: bool = False,
    with_kept: bool = False,
    shadow_samples: int | None = None,
    strut_widen: int = 0,
) -> tuple[torch.Tensor, ...]:
    """For label samples ``(B, N, S)`` along rays: index of the first sample outside the lumen
    (:func:`lumen_exit`; S if none) and whether the ray is masked (it meets the guidewire, or a
    strut beyond the catheter band at most ``shadow_samples`` before its exit, any strut before
    it when None: :func:`_strut_shadow`, those rays widened by ``strut_widen`` rays on each
    side); ``with_kept`` (with ``fill``): also the :class:`KeptLumen`."""
    s = vals.shape[-1]
    # A ray that meets the guidewire or its shadow anywhere carries no wall information: the
    # contour is interpolated there even when a prediction leaves a gap of wall or lumen between
    # the lumen and the shadow (on exact labels this equals "the border touches class 4").
    gw = (vals == GUIDEWIRE).any(dim=-1)
    k = lumen_exit(vals, cath_samples, fill, skip=gw, with_kept=with_kept)
    k, kept = k if with_kept else (k, None)
    anyout = k < s
    out_cls = torch.gather(vals, -1, k.clamp(max=s - 1).unsqueeze(-1)).squeeze(-1)
    masked = (
        gw
        | (anyout & (out_cls == GUIDEWIRE))
        | widen_periodic(_strut_shadow(vals, k, cath_samples, shadow_samples), strut_widen)
    )
    return (k, masked, kept) if with_kept else (k, masked)


def _strut_shadow(
    vals: torch.Tensor, k: torch.Tensor, cath_samples: int, shadow_samples: int | None
) -> torch.Tensor:
    """Rays ``(B, N)`` with a strut sample beyond the catheter band, before the exit ``k`` and
    (unless None) at most ``shadow_samples`` before it. A strut hides the wall behind it as the
    guidewire does: such a ray is interpolated, so a prediction that labels the start of an
    apposed strut's shadow as lumen does not push the contour out behind it; a strut only deep
    inside the lumen (spurious, or malapposed by more) leaves the ray as it is, whatever else
    lies on the ray."""
    lo = torch.full_like(k, cath_samples)
    if shadow_samples is not None:
        lo = torch.maximum(lo, k - shadow_samples)
    a, b = int(lo.min()), int(k.max())  # only the samples some ray's window covers
    if b <= a:
        return torch.zeros_like(k, dtype=torch.bool)
    idx = torch.arange(a, b, device=vals.device)
    window = (idx >= lo.unsqueeze(-1)) & (idx < k.unsqueeze(-1))
    return eq_u8(vals[..., a:b], STRUT).mul_(window).amax(-1).bool()


def widen_periodic(masked: torch.Tensor, k: int) -> torch.Tensor:
    """``masked`` ``(B, N)`` widened by ``k`` entries on both sides of every masked run
    (wrapping); unchanged for ``k <= 0``."""
    if k <= 0 or not bool(masked.any()):
        return masked
    return smooth_periodic(masked.to(torch.float32), k) > 0  # any masked entry in the window


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


def samples_within(length_mm: float, step_mm: float) -> int:
    """Number of samples (at 0, step, 2*step, ... mm) of a ray within ``length_mm`` (the
    catheter radius, the strut shadow)."""
    if length_mm <= 0:
        return 0
    return int(math.ceil(length_mm / step_mm - 1e-9))


def catheter_radii_polar(
    lab: torch.Tensor,
    ps: float,
    catheter_radius_mm: float = 0.0,
    fill: bool = False,
    strut_shadow_mm: float = GeometrySettings.strut_shadow_mm,
    strut_widen: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lumen radii (mm) along every A-line of polar label maps ``(B, A, R)``, the mask (strut
    rays widened by ``strut_widen`` A-lines), and the open rays: unmasked A-lines whose lumen
    runs to their last sample (the border not imaged)."""
    cath, shadow = samples_within(catheter_radius_mm, ps), samples_within(strut_shadow_mm, ps)
    k, masked = _first_exit(lab, cath, fill, False, shadow, strut_widen)
    radii = ((k.to(torch.float32) - 0.5) * ps).clamp(min=0)
    return radii, masked, (k >= lab.shape[-1]) & ~masked


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
        # samples of each ray before it first leaves the frame (a ray from inside leaves once)
        self.n_inside = self.inside.to(torch.int32).cumprod(1).sum(1)
        self.index = torch.where(self.inside, rows * w + cols, 0).reshape(-1)

    def sample(self, lab: torch.Tensor) -> torch.Tensor:
        """Labels along the rays ``(B, n_rays, n_samples)`` (background outside the frame)."""
        b = lab.shape[0]
        # gather with the (stride-0) expanded index: one shared table, no per-frame copies
        vals = torch.gather(lab.reshape(b, -1), 1, self.index.expand(b, -1))
        vals = vals.reshape(b, *self.inside.shape)
        if not self.all_inside:
            vals.masked_fill_(~self.inside, 0)
        return vals

    def radii(
        self,
        lab: torch.Tensor,
        ps: float,
        catheter_radius_mm: float = 0.0,
        fill: bool = False,
        strut_shadow_mm: float = GeometrySettings.strut_shadow_mm,
        strut_widen: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Radii (mm), masked and open rays, as :func:`catheter_radii_polar`; a ray is open where
        its lumen runs to the frame's border."""
        vals = self.sample(lab)
        step_mm = self.step * ps
        cath = samples_within(catheter_radius_mm, step_mm)
        shadow = samples_within(strut_shadow_mm, step_mm)
        k, masked = _first_exit(vals, cath, fill, False, shadow, strut_widen)
        radii = ((k.to(torch.float32) - 0.5) * self.step * ps).clamp(min=0)
        is_open = (k >= self.n_inside) & (self.n_inside > 0) & (self.n_inside < self.n_samples)
        return radii, masked, is_open & ~masked


def polygon_area_centroid(
    radii: torch.Tensor, theta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Area and centroid (cy, cx) of the star polygons with vertices ``radii`` at ``theta``
    (:func:`octseg.core.contour.polygon_areas`)."""
    return polygon_areas(radii * torch.sin(theta), radii * torch.cos(theta))


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


def catheter_contour(
    lab: torch.Tensor,
    space: str,
    ps: float,
    center_px: tuple[float, float] | None,
    settings: Any,
    cache: dict | None = None,
    max_r_px: float | None = None,
    budget: int = 1 << 21,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The lumen contour of label maps ``(B, H, W)`` as docs/metrics.md defines it: its radius
    (mm, ``(B, N)``) on every catheter ray and the ray angles ``(N,)`` (polar: the A-lines;
    Cartesian: ``settings.n_rays`` rays about ``center_px``, cast out to ``max_r_px`` pixels,
    default the farthest frame corner). Filled-lumen exits (``settings.fill_lumen_holes``,
    ``catheter_radius_mm``), guidewire/strut rays interpolated, then smoothed over
    ``contour_smoothing_rays``. ``cache`` keeps the Cartesian ray tables between calls;
    ``budget``: ray samples per piece of frames (memory). Also returns the *open* rays ``(B, N)``:
    unmasked rays whose lumen reaches the edge of the image (its last polar sample, or the
    frame's border), where the contour is the image's edge, not the vessel wall."""
    s = settings
    b, h, w = lab.shape
    n = h if space == "polar" else s.n_rays
    margin, strut_widen = margin_rays(s, n)
    ray_rules = (s.catheter_radius_mm, s.fill_lumen_holes, s.strut_shadow_mm, strut_widen)
    if space == "polar":
        radii, masked, is_open = catheter_radii_polar(lab, ps, *ray_rules)
        theta = torch.arange(h, device=lab.device, dtype=torch.float32) * (TWO_PI / h)
    else:
        cache = {} if cache is None else cache
        if max_r_px is None:
            max_r_px = farthest_corner(center_px, h, w)
        key = ("cath", round_up(max_r_px))
        if key not in cache:
            cache[key] = CatheterRays((h, w), center_px, s.n_rays, key[1], lab.device)
        rays = cache[key]
        theta = rays.theta
        parts = [
            rays.radii(lab[p], ps, *ray_rules) for p in pieces(b, s.n_rays * rays.n_samples, budget)
        ]
        radii, masked, is_open = (torch.cat([p[i] for p in parts]) for i in range(3))
    radii = fill_masked_periodic(radii.float(), widen_periodic(masked, margin))
    return smooth_periodic(radii, s.contour_smoothing_rays), theta, is_open


def margin_rays(settings: Any, n_rays: int) -> tuple[int, int]:
    """The rays interpolated beside masked rays, of ``n_rays`` catheter rays: the margin about
    every masked ray (``shadow_margin_deg``) and how many more about strut rays, so that these
    get ``strut_margin_deg`` in all (never less than the shadow margin)."""
    margin = round(settings.shadow_margin_deg * n_rays / 360.0)
    return margin, max(0, round(settings.strut_margin_deg * n_rays / 360.0) - margin)
