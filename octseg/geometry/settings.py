"""Every threshold of the geometry module, as one dataclass.

This dataclass is the one source of the defaults (the values in ``docs/metrics.md``): Hydra's
``geometry`` config group (``octseg/configs/geometry/default.yaml``) extends the node that
:func:`octseg.jobs.register_configs` builds from :meth:`GeometrySettings.to_dict`. Load a YAML file with :meth:`GeometrySettings.from_yaml` or a
mapping (e.g. a Hydra/OmegaConf node converted with ``OmegaConf.to_container``) with
:meth:`GeometrySettings.from_dict`; unknown keys are an error, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError

# Version of the measurement rules (docs/metrics.md): bumped whenever a definition changes the
# numbers of the same labels and settings, so that a resumed inference run re-measures outputs
# written under older rules (it is part of the output fingerprint). 2: the strut-shadow contour
# rule (eleventh session); 3: calcium and lipid arcs bridged across strut shadows (twelfth);
# 4: the wider margin about strut rays, ``strut_margin_deg`` (thirtieth); 5: rays from the lumen
# centroid long enough to reach calcium as far from it as the catheter's reach plus the
# centroid's offset (they could stop short), and ``calcium_max_thickness_angle_deg`` (52nd).
MEASUREMENT_RULES = 5

# Strut + polymer thickness of common drug-eluting stents (mm); see shared/domain.md section 5.
DEFAULT_STENT_MODELS: dict[str, dict[str, float]] = {
    "xience": {"strut_mm": 0.081, "polymer_mm": 0.008},
    "resolute_onyx": {"strut_mm": 0.081, "polymer_mm": 0.0},
    "synergy": {"strut_mm": 0.074, "polymer_mm": 0.0},
    "orsiro": {"strut_mm": 0.060, "polymer_mm": 0.0074},  # diameters <= 3.0 mm
    "orsiro_large": {"strut_mm": 0.080, "polymer_mm": 0.0074},  # diameters >= 3.5 mm
}


class _Invalid(ValueError):
    """One failed check of :meth:`GeometrySettings.validate` (re-raised as InputError)."""


@dataclass
class GeometrySettings:
    # rays / sampling
    n_rays: int = 720  # rays from the lumen centroid (0.5 degree steps)
    contour_samples_per_segment: int = 32  # stent contour samples per strut-to-strut segment
    contour_smoothing_rays: int = 2  # half-width of the moving average over catheter-ray radii
    fill_lumen_holes: bool = True  # enclosed non-lumen specks do not end a contour ray
    catheter_radius_mm: float = 0.45  # rays start as lumen out to here (catheter, sheath)
    # a strut at most this far before a ray's lumen exit masks the ray (its shadow hides the
    # wall; the contour is interpolated there, docs/metrics.md)
    strut_shadow_mm: float = 0.5
    # rays within this angle of a masked (guidewire or strut) ray are interpolated too: a
    # predicted strut is often narrower than its shadow, whose edges a model labels as tissue
    shadow_margin_deg: float = 1.0
    # rays within this angle of a strut-masked ray are interpolated (at least shadow_margin_deg):
    # beside a strut a model bends the lumen border towards it, which reads malapposed struts short
    strut_margin_deg: float = 3.0
    # calcium lesions
    max_gap_frames: int = 2  # label frames without calcium bridged inside a lesion
    score_arc_deg: float = 180.0  # 2 points if max arc > this
    score_thickness_mm: float = 0.5  # 1 point if max thickness > this
    score_length_mm: float = 5.0  # 1 point if length > this
    # a lesion's score is "borderline" on a criterion whose value lies within this of its cut-off
    # (summary.json's score_borderline; 0: never): about 0.4x the lesion-level limits of
    # agreement of octseg-calcium-v2 on hybrid draws (docs/metrics.md, Calcium lesions)
    score_margin_arc_deg: float = 10.0
    score_margin_thickness_mm: float = 0.1
    score_margin_length_mm: float = 0.4
    spotty_max_arc_deg: float = 90.0  # spotty if max arc < this ...
    spotty_max_length_mm: float = 4.0  # ... and length < this
    risk_arc_deg: float = 270.0  # flag arc_gt_270
    risk_thickness_mm: float = 1.0  # flag thickness_gt_1mm
    risk_length_mm: float = 15.0  # flag length_gt_15mm
    # stent
    min_struts: int = 3  # struts needed for a stent contour / a stented frame
    stent_max_gap_frames: int = 2  # label frames with < min_struts bridged inside the stent
    stent_model: str | None = None  # key of stent_models; None -> malapposition_threshold_mm
    malapposition_threshold_mm: float = 0.09  # strut + polymer thickness when no model is given
    stent_models: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_STENT_MODELS.items()}
    )
    reference_window_mm: float = 5.0  # reference lumen: largest area this far outside each edge
    frame0_is_distal: bool = True
    underexpansion_msa_mm2: float = 5.0  # underexpanded if MSA < this ...
    underexpansion_ratio: float = 0.80  # ... or expansion < this
    significant_malapposition_mm: float = 0.4  # clinically significant if max distance > this
    significant_malapposition_length_mm: float = 1.0  # ... or malapposition length > this
    # plaque (docs/metrics.md, plaque): TCFA = minimal cap < tcfa_cap_um over a lipid arc >
    # tcfa_arc_deg (Tearney et al., JACC 2012 consensus; Prati et al., 2010)
    tcfa_cap_um: float = 65.0
    tcfa_arc_deg: float = 90.0
    lipid_max_gap_frames: int = 2  # label frames without lipid bridged inside a lipid lesion

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ derived
    @property
    def strut_threshold_mm(self) -> float:
        """Malapposition threshold: strut + polymer thickness of the chosen stent model."""
        if self.stent_model is None:
            return float(self.malapposition_threshold_mm)
        m = self.stent_models[self.stent_model]
        return float(m.get("strut_mm", 0.0)) + float(m.get("polymer_mm", 0.0))

    # --------------------------------------------------------------- validation
    def validate(self, source: str | Path | None = None) -> None:
        """Check types and ranges (floats are stored as float); raise :class:`InputError`."""
        try:
            self._check_integers()
            self._check_numbers()
            self._check_booleans()
            self._check_stent_models()
            self._check_stent_model()
        except _Invalid as exc:
            raise InputError(source, f"geometry settings: {exc}") from None

    def _check_integers(self) -> None:
        ints = ("n_rays", "contour_samples_per_segment", "max_gap_frames", "min_struts")
        gaps = ("stent_max_gap_frames", "lipid_max_gap_frames")
        for name in (*ints, *gaps, "contour_smoothing_rays"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int):
                raise _Invalid(f"'{name}' must be an integer, got {val!r}")
        if self.n_rays < 8 or self.n_rays % 2:
            raise _Invalid(f"'n_rays' must be an even integer >= 8, got {self.n_rays}")
        if self.contour_samples_per_segment < 1:
            raise _Invalid("'contour_samples_per_segment' must be >= 1")
        if min(self.max_gap_frames, self.stent_max_gap_frames, self.lipid_max_gap_frames) < 0:
            raise _Invalid("gap settings must be >= 0")
        if not 0 <= self.contour_smoothing_rays <= 16:
            raise _Invalid("'contour_smoothing_rays' must lie in 0..16")
        if self.min_struts < 3:
            raise _Invalid(f"'min_struts' must be >= 3 (a closed contour), got {self.min_struts}")

    def _check_numbers(self) -> None:
        for f in dataclasses.fields(self):
            if f.type not in ("float", float):
                continue
            val = getattr(self, f.name)
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise _Invalid(f"'{f.name}' must be a number, got {val!r}")
            if not math.isfinite(val) or val < 0:
                raise _Invalid(f"'{f.name}' must be a finite number >= 0, got {val!r}")
            setattr(self, f.name, float(val))
        for name in ("shadow_margin_deg", "strut_margin_deg"):
            if getattr(self, name) > 10:
                raise _Invalid(f"'{name}' must lie in 0..10, got {getattr(self, name)}")

    def _check_booleans(self) -> None:
        for name in ("frame0_is_distal", "fill_lumen_holes"):
            if not isinstance(getattr(self, name), bool):
                raise _Invalid(f"'{name}' must be true or false, got {getattr(self, name)!r}")

    def _check_stent_models(self) -> None:
        if not isinstance(self.stent_models, Mapping):
            raise _Invalid("'stent_models' must be a mapping name -> {strut_mm, polymer_mm}")
        for name, spec in self.stent_models.items():
            if not isinstance(spec, Mapping) or not set(spec) <= {"strut_mm", "polymer_mm"}:
                raise _Invalid(f"stent model {name!r} must be a mapping with strut_mm / polymer_mm")
            for k, v in spec.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                    raise _Invalid(f"stent model {name!r}: {k} must be a number >= 0, got {v!r}")

    def _check_stent_model(self) -> None:
        if self.stent_model is not None and self.stent_model not in self.stent_models:
            known = ", ".join(sorted(self.stent_models))
            raise _Invalid(f"unknown stent_model {self.stent_model!r} (known: {known})")

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str | Path | None = None):
        data = dict(data or {})
        data.pop("_target_", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(source, f"geometry settings: unknown key(s) {', '.join(unknown)}")
        if "stent_models" in data and data["stent_models"] is not None:
            data["stent_models"] = {str(k): dict(v) for k, v in dict(data["stent_models"]).items()}
        try:
            obj = cls.__new__(cls)
            defaults = cls()
            for f in dataclasses.fields(cls):
                setattr(obj, f.name, data.get(f.name, getattr(defaults, f.name)))
            obj.validate(source)
        except (TypeError, ValueError) as exc:
            raise InputError(source, f"geometry settings: {exc}") from None
        return obj

    @classmethod
    def from_yaml(cls, path: str | Path) -> GeometrySettings:
        import yaml

        path = Path(path)
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except FileNotFoundError:
            raise InputError(path, "no such file") from None
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "parse error"
            raise InputError(path, f"not valid YAML ({first})") from None
        if data is not None and not isinstance(data, Mapping):
            raise InputError(path, "geometry settings must be a YAML mapping")
        return cls.from_dict(data, source=path)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
