"""Clinical geometry from label maps: lumen, calcium and stent metrics, batched in torch.

``measure_labels(label_file, settings=None, device="cpu", chunk_frames=64)`` returns
:class:`Measurements` (per-frame rows, per-strut rows and the pullback summary); definitions in
``docs/metrics.md``, thresholds in :class:`GeometrySettings` (``octseg measure --print-defaults``).

The lumen contour alone, by the same code: ``lumen_contours(labels, space, pixel_spacing_mm)``
(batch, torch) and ``frame_lumen(labels, ps)`` (one frame, NumPy: contour, area, centroid,
``rho(phi)``); see :mod:`octseg.geometry.lumen_contour`.
"""

from __future__ import annotations

from typing import Any

from octseg.geometry.settings import GeometrySettings

__all__ = [
    "GeometrySettings",
    "Measurements",
    "measure_labels",
    "measure_frames",
    "LumenContours",
    "FrameLumen",
    "lumen_contours",
    "frame_lumen",
]

_LUMEN = ("LumenContours", "FrameLumen", "lumen_contours", "frame_lumen")


def __getattr__(name: str) -> Any:  # lazy: importing settings alone stays light
    if name in ("Measurements", "measure_labels", "measure_frames"):
        from octseg.geometry import measure

        return getattr(measure, name)
    if name in _LUMEN:
        from octseg.geometry import lumen_contour

        return getattr(lumen_contour, name)
    raise AttributeError(name)
