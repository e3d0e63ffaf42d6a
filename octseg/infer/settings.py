"""Every setting of batch inference (``configs/infer.yaml`` / ``python infer.py key=value``).

Types and ranges are checked by :func:`octseg.infer.safety.validate_settings` before the first
pullback.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from octseg.core.errors import InputError


@dataclass
class InferSettings:
    checkpoint: str
    input: Any
    output: str
    device: str = "auto"
    batch_size: int = 8
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False
    resample: str = "labels"
    tta_rolls: int = 1
    tta_flip: bool = False
    pixel_spacing_mm: float | None = None
    frame_spacing_mm: float | None = None
    format: str | None = None
    overlay_frames: Any = "auto"
    overlay_size: int = 512
    report: bool = True
    dicom_seg: bool = True
    writers: int = 2
    readers: Any = "auto"
    render_processes: Any = "auto"
    prefetch: int = 2
    read_chunk: int = 32
    geometry_device: str = "auto"
    geometry: dict[str, Any] = field(default_factory=dict)
    resume: bool = True
    progress: bool = True
    dist_timeout_min: float = 360.0
    anonymize_ids: bool = False
    postprocess: Any = True  # octseg.model.postprocess: true / false or a mapping of its settings

    @classmethod
    def from_cfg(cls, cfg: Any) -> InferSettings:
        """From the Hydra config (configs/infer.yaml) or any mapping with the same keys."""
        try:
            from omegaconf import DictConfig, OmegaConf

            if isinstance(cfg, DictConfig):
                cfg = OmegaConf.to_container(cfg, resolve=True)
        except ImportError:  # pragma: no cover
            pass
        cfg = dict(cfg)
        for key in ("checkpoint", "input", "output"):
            if cfg.get(key) in (None, "", "???"):
                raise InputError(
                    None,
                    f"{key}= is required (python infer.py checkpoint=... input=... output=...)",
                )
        tta = cfg.pop("tta", None) or {}
        overlays = cfg.pop("overlays", None) or {}
        cfg.pop("hydra", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - names)
        if unknown:
            raise InputError(None, f"unknown infer setting(s): {', '.join(unknown)}")
        enabled = tta.get("enabled", False)
        if enabled not in (True, False):
            raise InputError(None, f"tta.enabled={enabled!r} is not allowed: true or false")
        if enabled:  # types and ranges: octseg.infer.safety.validate_settings
            cfg["tta_rolls"] = tta.get("rolls", 4)
            cfg["tta_flip"] = tta.get("flip", True)
        if overlays:
            cfg["overlay_frames"] = overlays.get("frames", "auto")
            cfg["overlay_size"] = overlays.get("size", 512)
        return cls(**cfg)

    def output_affecting(self) -> dict[str, Any]:
        """Settings that change the outputs (part of each pullback's fingerprint)."""
        keys = (
            "resample",
            "tta_rolls",
            "tta_flip",
            "pixel_spacing_mm",
            "frame_spacing_mm",
            "format",
            "overlay_frames",
            "overlay_size",
            "report",
            "dicom_seg",
            "geometry",
            "anonymize_ids",
            "postprocess",
        )
        return {k: getattr(self, k) for k in keys}
