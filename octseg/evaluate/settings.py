"""Every setting of the evaluation (``python evaluate.py settings.key=...`` / ``octseg evaluate``).

:class:`EvaluationSettings` is the one source of the defaults: ``octseg/configs/evaluate.yaml``
composes them as ``settings.*`` (the config ``evaluate_settings`` that
:func:`octseg.jobs.register_configs` builds from this dataclass).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from octseg.core.errors import InputError
from octseg.evaluate import segmentation


@dataclass
class EvaluationSettings:
    """Every setting of the evaluation, with its default (the Hydra config's too)."""

    strut_tolerance_mm: float = 0.1  # strut pairs within this distance (x/y or arc at lumen radius)
    strut_angle_tolerance_deg: float = 5.0  # fallback when neither x/y nor a lumen radius is known
    frame_tolerance: float = 0.5  # manual positions in mm: nearest frame within this many frames
    lesion_min_overlap_frames: float = 1.0  # lesions pair when they share at least this many frames
    frame_spacing_mm: float | None = None  # overrides the spacing read from the inputs
    auto_source: str = "auto"  # auto | tables | labels | truth (see inputs.load_auto)
    # read frames.csv/summary.json/struts.csv in manual folders; false, or a folder without them:
    # measure its labels.npz (octseg.geometry) instead
    manual_tables: bool = True
    # automated and manual places of a frame's measurement (thickest calcium, thinnest cap)
    # agree when within this many degrees (octseg.evaluate.angles)
    where_within_deg: float = 10.0
    n_bootstrap: int = 2000  # resamples for the per-pair MAE confidence interval (mae_ci)
    seed: int = 0
    classes: tuple[int, ...] = segmentation.DEFAULT_CLASSES  # classes for overlap metrics
    segmentation: bool = True  # overlap metrics when both sides have label maps
    plots: bool = True
    device: str = "cpu"  # for measuring label files on the fly
    geometry: dict[str, Any] | None = None  # GeometrySettings overrides (thresholds)
    progress: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> EvaluationSettings:
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(None, f"evaluation settings: unknown key(s) {', '.join(unknown)}")
        if "classes" in d and d["classes"] is not None:
            d["classes"] = tuple(int(c) for c in d["classes"])
        s = cls(**d)
        s.validate()
        return s

    def validate(self) -> None:
        """Check types and ranges; raise :class:`InputError` naming the setting."""
        from octseg.core.classes import CLASS_NAMES

        for name in (
            "strut_tolerance_mm",
            "strut_angle_tolerance_deg",
            "frame_tolerance",
            "where_within_deg",
        ):
            v = getattr(self, name)
            if not _non_negative(v):
                _fail(f"{name} must be a number >= 0, got {v!r}")
        if self.frame_spacing_mm is not None and not self.frame_spacing_mm > 0:
            _fail(f"frame_spacing_mm must be > 0, got {self.frame_spacing_mm!r}")
        if self.n_bootstrap < 100:
            _fail(f"n_bootstrap must be >= 100, got {self.n_bootstrap}")
        bad = [c for c in self.classes if c not in CLASS_NAMES]
        if bad:
            _fail(f"unknown class index(es) {bad}; known {sorted(CLASS_NAMES)}")

    def geometry_settings(self) -> Any:
        from octseg.geometry.settings import GeometrySettings

        return GeometrySettings.from_dict(self.geometry or {})


def _non_negative(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v >= 0


def _fail(msg: str) -> None:
    raise InputError(None, f"evaluation settings: {msg}")
