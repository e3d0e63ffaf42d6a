"""Clinical geometry from label maps: lumen, calcium and stent metrics, batched in torch.

``measure_labels(label_file, settings=None, device="cpu", chunk_frames=64)`` returns
:class:`Measurements` (per-frame rows, per-strut rows and the pullback summary); definitions in
``docs/metrics.md``, thresholds in :class:`GeometrySettings` (``configs/geometry/default.yaml``).
"""

from __future__ import annotations

from typing import Any

from octseg.geometry.settings import GeometrySettings

__all__ = ["GeometrySettings", "Measurements", "measure_labels", "measure_frames"]


def __getattr__(name: str) -> Any:  # lazy: importing settings alone stays light
    if name in ("Measurements", "measure_labels", "measure_frames"):
        from octseg.geometry import measure

        return getattr(measure, name)
    raise AttributeError(name)
