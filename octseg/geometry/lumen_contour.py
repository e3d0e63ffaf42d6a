"""The product's lumen contour as an API: contour, area, centroid and ``rho_L(phi)`` of label
frames, computed by exactly the code ``measure_labels`` uses for ``frames.csv``
(:func:`octseg.geometry.lumen.catheter_contour`; definitions in docs/metrics.md).

For code outside the measurement job (real-data evaluation, hybrid data) that needs the lumen
of a frame: ``lumen_contours(labels, space, pixel_spacing_mm)`` for a batch (torch tensors),
``lumen_contours(...).frame(i)`` or :func:`frame_lumen` for one frame as NumPy
(:class:`FrameLumen`: ``edge_mm``, ``contour``, ``centroid``, ``area_mm2``, ``rho(phi)``,
``point(phi, rho)``, ``columns()``). Coordinates are ``(y, x)`` mm from the catheter centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from octseg.geometry import lumen as lu
from octseg.geometry.settings import GeometrySettings

N_PROFILE = 3600  # rho_L of a FrameLumen sampled every 0.1 degree


@dataclass
class FrameLumen:
    """The lumen of one frame (mm, ``(y, x)`` from the catheter centre)."""

    ps: float
    edge_mm: np.ndarray  # (N,) contour radius on each catheter ray
    theta: np.ndarray  # (N,) catheter-ray angles (rad)
    contour: np.ndarray  # (N, 2) contour vertices (y, x)
    centroid: np.ndarray  # (2,) (y, x)
    area_mm2: float
    profile: np.ndarray = field(repr=False)  # rho_L on N_PROFILE directions about the centroid

    def rho(self, phi: np.ndarray | float) -> np.ndarray:
        """Distance from the centroid to the contour along direction(s) ``phi`` (radians),
        linear between the 0.1-degree samples of the profile."""
        phi = np.asarray(phi, dtype=np.float64) % lu.TWO_PI
        pos = phi / lu.TWO_PI * N_PROFILE
        i0 = np.floor(pos).astype(np.int64) % N_PROFILE
        w = pos - np.floor(pos)
        return self.profile[i0] * (1 - w) + self.profile[(i0 + 1) % N_PROFILE] * w

    def point(self, phi: float, rho: float) -> np.ndarray:
        """(y, x) mm of the point at distance ``rho`` from the centroid along ``phi``."""
        return self.centroid + rho * np.array([math.sin(phi), math.cos(phi)])

    def columns(self) -> dict[str, float]:
        """The lumen columns of ``frames.csv`` (0.5-degree chords through the centroid)."""
        return lumen_columns(self.rho, self.area_mm2, self.centroid)


def lumen_columns(rho, area_mm2: float, centroid) -> dict[str, float]:
    """The lumen columns of ``frames.csv`` from a contour's distance ``rho(phi)`` (mm, vectorised
    over angles) from its centroid ``(y, x)`` mm: diameters are the 360 chords through the
    centroid every 0.5 degrees. Shared by the geometry API and the synthetic ground truth."""
    psi = np.arange(360) * (math.pi / 360)
    chords = rho(psi) + rho(psi + math.pi)
    dmax, dmin = float(chords.max()), float(chords.min())
    return {
        "lumen_area_mm2": area_mm2,
        "lumen_mean_diameter_mm": float(chords.mean()),
        "lumen_min_diameter_mm": dmin,
        "lumen_max_diameter_mm": dmax,
        "lumen_eccentricity": (dmax - dmin) / dmax if dmax > 0 else 0.0,
        "lumen_centroid_x_mm": float(centroid[1]),
        "lumen_centroid_y_mm": float(centroid[0]),
    }


@dataclass
class LumenContours:
    """Lumen contours of a batch of frames (torch). Frames without lumen have ``has_lumen``
    false, area 0 and a centroid of NaN."""

    ps: float
    theta: torch.Tensor  # (N,) catheter-ray angles
    radii_mm: torch.Tensor  # (B, N) contour radius on each catheter ray
    area_mm2: torch.Tensor  # (B,)
    centroid: torch.Tensor  # (B, 2) (y, x) mm

    @property
    def has_lumen(self) -> torch.Tensor:
        return self.area_mm2 > 0

    def rho(self, phi: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``rho_L`` at angles ``phi`` (radians, (Q,)) about each frame's centroid: (B, Q)."""
        q = torch.as_tensor(phi, dtype=torch.float32, device=self.radii_mm.device)
        q = torch.remainder(q, lu.TWO_PI)
        c = torch.nan_to_num(self.centroid)
        out = lu.centroid_profile(self.radii_mm, self.theta, c[:, 0], c[:, 1], q)
        return torch.where(self.has_lumen[:, None], out, torch.full_like(out, float("nan")))

    def contour_yx(self) -> torch.Tensor:
        """Contour vertices (B, N, 2) (y, x) mm."""
        r = self.radii_mm
        return torch.stack([r * torch.sin(self.theta), r * torch.cos(self.theta)], -1)

    def frame(self, i: int) -> FrameLumen:
        """Frame ``i`` as NumPy, with ``rho_L`` sampled every 0.1 degree."""
        one = LumenContours(  # this frame alone: every quantity below is per frame
            self.ps,
            self.theta,
            *(t[i : i + 1] for t in (self.radii_mm, self.area_mm2, self.centroid)),
        )
        phis = torch.arange(N_PROFILE, dtype=torch.float64) * (lu.TWO_PI / N_PROFILE)
        prof = one.rho(phis)[0].double().cpu().numpy()
        return FrameLumen(
            ps=self.ps,
            edge_mm=self.radii_mm[i].double().cpu().numpy(),
            theta=self.theta.double().cpu().numpy(),
            contour=one.contour_yx()[0].double().cpu().numpy(),
            centroid=self.centroid[i].double().cpu().numpy(),
            area_mm2=float(self.area_mm2[i]),
            profile=prof,
        )


@torch.no_grad()
def lumen_contours(
    labels: np.ndarray | torch.Tensor,
    space: str,
    pixel_spacing_mm: float,
    catheter_center: tuple[float, float] | None = None,
    settings: GeometrySettings | None = None,
    device: str | torch.device = "cpu",
) -> LumenContours:
    """Lumen contours of label frames ``(B, H, W)`` (or one ``(H, W)``), polar or Cartesian
    (``catheter_center`` (cy, cx) pixels; default the image centre)."""
    s = settings if settings is not None else GeometrySettings()
    lab = torch.as_tensor(np.asarray(labels, dtype=np.uint8)).to(device)
    if lab.ndim == 2:
        lab = lab[None]
    h, w = lab.shape[1:]
    center = None
    if space == "cartesian":
        center = catheter_center if catheter_center is not None else ((h - 1) / 2, (w - 1) / 2)
    radii, theta, _ = lu.catheter_contour(lab, space, pixel_spacing_mm, center, s)
    area, cy, cx = lu.polygon_area_centroid(radii, theta)
    has = area > 0
    nan = torch.full_like(cy, float("nan"))
    cen = torch.stack([torch.where(has, cy, nan), torch.where(has, cx, nan)], 1)
    return LumenContours(float(pixel_spacing_mm), theta, radii, area, cen)


def frame_lumen(labels: np.ndarray, ps: float, space: str = "polar", **kw) -> FrameLumen:
    """:class:`FrameLumen` of one label frame ``(H, W)`` (default: polar, as in the hybrid
    data); raises ``ValueError`` when the frame has no lumen."""
    out = lumen_contours(labels, space, ps, **kw)
    if not bool(out.has_lumen[0]):
        raise ValueError("frame_lumen: the frame has no lumen")
    return out.frame(0)
