"""Lipid arc, lipid depth and minimal fibrous-cap thickness per frame, batched in torch.

Same rays as :mod:`octseg.geometry.calcium`: cast from each frame's lumen centroid, sampled by
nearest-neighbour lookup every pixel (Cartesian) or depth step (polar). Definitions in
``docs/metrics.md`` (plaque): the cap thickness on a ray over the lipid core is the radial
extent of the fibrous-cap class lying directly in front of the core's first sample and starting at the
lumen contour (the tissue between the lumen and the core's inner border, as in the consensus definition of Tearney et al.,
JACC 2012); the frame's minimal cap thickness is the thinnest such cap.
"""

from __future__ import annotations

import math

import torch

from octseg.core.classes import FIBROUS_CAP, LIPID
from octseg.geometry.calcium import bridge_shadow, shadow_rays
from octseg.geometry.kernels import eq_u8, first_one


def cap_run(vals: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Samples of fibrous cap directly in front of sample ``first`` on each ray: the length of
    the run of class :data:`FIBROUS_CAP` ending at ``first - 1`` (0 where there is none)."""
    s = vals.shape[-1]
    idx = torch.arange(s, device=vals.device, dtype=torch.int32)
    before = idx < first[..., None].to(torch.int32)
    not_cap = (vals != FIBROUS_CAP) & before
    last = torch.where(not_cap, idx, torch.full_like(idx, -1)).amax(-1)
    return (first.to(torch.int32) - 1 - last).clamp(min=0)


CAP_WINDOW_DEG = 2.0
"""Half-width of the window of rays over which the per-ray cap thickness is averaged before
taking the minimum: one ray's sample count is quantised to a pixel, and the minimum of many
such counts is biased about one pixel low (10 um at 0.01 mm/pixel); averaging over +-2 degrees
leaves a bias of a few um on analytic rings (tests/test_geometry_plaque.py)."""


CAP_LUMEN_GAP_SAMPLES = 2
"""A cap run counts only where it starts at the lumen contour (within this many samples): the
cap is the tissue *between* the lumen and the core. A ray that grazes the lateral edge of a
plaque meets wall tissue, then a corner of the cap and the core; that is no cap measurement."""


def smoothed_min(per_ray: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum over rays of the circular moving average over ``2k+1`` rays of ``per_ray``
    ``(B, n)`` (``inf`` = not measured on that ray; a window touching one is not counted) and
    the ray of the minimum. Where no full window exists, the plain per-ray minimum."""
    padded = torch.cat([per_ray[:, -k:], per_ray, per_ray[:, :k]], 1)
    avg = padded.unfold(1, 2 * k + 1, 1).mean(-1)
    m_avg, r_avg = avg.min(1)
    m_raw, r_raw = per_ray.min(1)
    ok = torch.isfinite(m_avg)
    return torch.where(ok, m_avg, m_raw), torch.where(ok, r_avg, r_raw)


def plaque_metrics(
    vals: torch.Tensor, step: float, rho_l: torch.Tensor, shadow: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Per-frame lipid arc (deg), lipid minimum depth (mm), minimal cap thickness (um) and the
    angle (deg, about the lumen centroid) of the ray where it lies, from centroid-ray samples
    ``(B, n, S)`` and the lumen profile ``rho_l`` (B, n) on the same rays (NaN: no lumen).
    ``shadow``: the rays' :func:`~octseg.geometry.calcium.shadow_rays` when the caller has them."""
    n = vals.shape[1]
    if shadow is None:
        shadow = shadow_rays(vals)
    hit, first = first_one(eq_u8(vals, LIPID))
    arc = (hit | bridge_shadow(hit, shadow)).sum(1).float() * (360.0 / n)
    lead = ((first.float() - 0.5) * step).clamp(min=0)
    inf = torch.full_like(lead, math.inf)
    depth = torch.where(hit, (lead - rho_l).clamp(min=0), inf).amin(1)
    run = cap_run(vals, first)
    start = (first - run).float() * step - 0.5 * step  # inner border of the cap run
    on_lumen = (start - rho_l) <= CAP_LUMEN_GAP_SAMPLES * step  # NaN (no lumen) -> False
    cap = torch.where(hit & (run > 0) & on_lumen, run.float() * (step * 1000.0), inf)
    cap_min, ray = smoothed_min(cap, max(1, round(CAP_WINDOW_DEG * n / 360.0)))
    any_lip = hit.any(1)
    nan = torch.full_like(arc, float("nan"))
    has_cap = torch.isfinite(cap_min)
    return {
        "lipid_arc_deg": torch.where(any_lip, arc, nan),
        "lipid_min_depth_mm": torch.where(any_lip & torch.isfinite(depth), depth, nan),
        "cap_min_thickness_um": torch.where(has_cap, cap_min, nan),
        "cap_min_angle_deg": torch.where(has_cap, ray.float() * (360.0 / n), nan),
    }


def tcfa(
    cap_um: torch.Tensor, arc_deg: torch.Tensor, cap_threshold_um: float, arc_threshold_deg: float
) -> torch.Tensor:
    """Thin-cap fibroatheroma per frame: minimal cap < threshold over a lipid arc > threshold
    (NaN inputs -> False)."""
    return (cap_um < cap_threshold_um) & (arc_deg > arc_threshold_deg)


PLAQUE_KEYS = ("lipid_arc_deg", "lipid_min_depth_mm", "cap_min_thickness_um", "cap_min_angle_deg")
