"""Every setting of batch inference (``python infer.py key=value`` / ``octseg infer key=value``).

:class:`InferSettings` is the one source of the defaults: :meth:`InferSettings.hydra_defaults`
gives them in the shape of the Hydra config (``tta.*``, ``overlays.*``, ``postprocess.*``), which
``octseg/configs/infer.yaml`` extends (registered by :func:`octseg.jobs.register_configs`). Types
and ranges are checked by :func:`octseg.infer.safety.validate_settings` before the first pullback.

Without ``checkpoint=`` (None) the run uses the model that ships with octseg: the pipeline's
``start_run`` resolves it (:func:`octseg.model.shipped.default_checkpoint`: the file in the
package, its SHA-256 checked), for the job and the Python API alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from octseg.core.errors import InputError
from octseg.model.recommended import POSTPROCESS_KEYS as RECOMMENDED_POST

# checkpoint= is optional: absent (null), the job uses the shipped model (octseg.model.shipped)
REQUIRED = ("input", "output")
# test-time augmentation as configured (``tta.*``); the rolls/flip apply when enabled; enabled
# null: as the checkpoint recommends (octseg.model.recommended), off without a recommendation
TTA_DEFAULTS: dict[str, Any] = {"enabled": None, "rolls": 4, "flip": True}
# the keys of octseg.model.postprocess.PostprocessSettings that the Hydra config exposes
POSTPROCESS_KEYS = (
    "enabled",
    "calcium_max_depth_mm",
    "calcium_min_area_mm2",
    "calcium_min_length_mm",
    "calcium_extend_prob",
    "calcium_track_frames",
    "calcium_frame_vote",
    "calcium_outer_median",
    "lumen_contour",
    "strut_inner_mm",
    "strut_outer_mm",
    "guidewire_frames",
    "guidewire_margin_deg",
)
# flat fields that the Hydra config groups (tta.*, overlays.*) or composes (geometry)
_GROUPED = ("tta_enabled", "tta_rolls", "tta_flip", "overlay_frames", "overlay_size", "geometry")


@dataclass
class InferSettings:
    # a checkpoint written by train.py, a shipped model's name (octseg.model.shipped.names()) or
    # a shipped ensemble's (shipped.ENSEMBLES: its members' list), or a list of them (an
    # ensemble: their class probabilities averaged, octseg.model.ensemble);
    # None / null: the shipped default model
    checkpoint: str | list[str] | None
    input: Any  # a pullback file/folder, a folder of pullbacks, or a .txt list of paths
    output: str  # one sub-folder per pullback + manifest.json + summary.csv
    # auto (cuda:LOCAL_RANK if available, else cpu) | cpu | cuda | cuda:1 (a bare cuda under
    # torchrun is cuda:LOCAL_RANK)
    device: str = "auto"
    batch_size: int = 8  # whole frames per forward pass
    amp: str = "auto"  # auto (fp16 on CUDA, off on CPU) | off | fp16 | bf16
    channels_last: bool = (
        False  # helps BatchNorm networks on GPU; measure (benchmarks/inference.py)
    )
    compile: bool = False  # torch.compile the network (slow start; measure)
    # back to the input grid: labels (argmax on the net grid, nearest; fast) | probs (class
    # probabilities interpolated, then argmax; smoother, slower)
    resample: str = "labels"
    # test-time augmentation (Hydra: tta.enabled/rolls/flip, see TTA_DEFAULTS): rolls along the
    # A-line axis x flip, averaged; enabled None: as the checkpoint recommends (off without)
    tta_enabled: bool | None = None
    tta_rolls: int = 4
    tta_flip: bool = True
    pixel_spacing_mm: float | None = None  # override / complete the spacing the files give
    frame_spacing_mm: float | None = None
    format: str | None = None  # force a reader by name (dicom, npz, ...); None: detect
    # Hydra: overlays.frames / overlays.size. auto (MLA, max calcium arc, MSA, max
    # malapposition) or a list of frames; display size (pixels) of scan-converted polar inputs
    overlay_frames: Any = "auto"
    overlay_size: int = 512
    report: bool = True  # one-page HTML report per pullback
    dicom_seg: bool = True  # a DICOM Segmentation object beside the labels when the input is DICOM
    writers: int = 2  # writer threads (measure + write outputs) overlapping the model
    readers: Any = "auto"  # reader threads (decode + resample); auto: 1 on CPU, up to 4 with a GPU
    # processes drawing overlays + reports (matplotlib holds the GIL); auto: 0 on CPU (drawn in
    # the writer threads), up to 4 with a GPU
    render_processes: Any = "auto"
    prefetch: int = 2  # pullbacks opened ahead of the one the model works on
    read_chunk: int = 32  # frames decoded per read; the model starts once the first chunk is in
    geometry_device: str = (
        "auto"  # where the geometry runs: auto (the model's device) | cpu | cuda:0
    )
    geometry: dict[str, Any] = field(default_factory=dict)  # GeometrySettings overrides
    resume: bool = True  # skip pullbacks whose outputs are complete (done.json) from the same model
    progress: bool = True
    dist_timeout_min: float = 360.0  # torchrun: how long ranks wait for each other at the end
    # true: ids pullback-0001... (file stems often name the patient); the id -> source mapping
    # goes only to OUT/ids_private.csv
    anonymize_ids: bool = False
    # anatomical post-processing (octseg.model.postprocess): true / false or a mapping of its
    # settings; the Hydra config gives the mapping of POSTPROCESS_KEYS (enabled: true;
    # calcium_min_area_mm2 / calcium_min_length_mm / calcium_extend_prob null: as the checkpoint
    # recommends, 0 without a recommendation)
    postprocess: Any = True
    # an ensemble's member weights per class (octseg.model.ensemble.class_weight_matrix): class
    # name -> one weight per checkpoint, e.g. {calcium: [1, 0]} (calcium from the first member
    # only); classes not named: the plain mean. None: the plain mean of every class
    ensemble_weights: Any = None
    # the A-lines of the net grid the network runs on (None: the checkpoint's, as trained);
    # more show calcium far from the catheter wider (octseg.model.predictor.PredictOptions)
    net_alines: int | None = None

    def __post_init__(self) -> None:
        self.checkpoint = _checkpoint(self.checkpoint)

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
        for key in REQUIRED:
            if cfg.get(key) in (None, "", "???"):
                raise InputError(
                    None,
                    f"{key}= is required (python infer.py input=... output=... [checkpoint=...]; "
                    "octseg infer INPUT... --out DIR)",
                )
        cfg.setdefault("checkpoint", None)
        tta = cfg.pop("tta", None) or {}
        overlays = cfg.pop("overlays", None) or {}
        cfg.pop("hydra", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - names)
        if unknown:
            raise InputError(None, f"unknown infer setting(s): {', '.join(unknown)}")
        cfg.update(_flatten(tta, overlays))
        return cls(**cfg)

    @classmethod
    def hydra_defaults(cls) -> dict[str, Any]:
        """The defaults in the shape of the Hydra config (without ``geometry``, a config group):
        required keys ``???``, ``checkpoint`` null (the shipped model), ``tta`` / ``overlays`` /
        ``postprocess`` as mappings."""
        from octseg.model.postprocess import PostprocessSettings

        node: dict[str, Any] = {"checkpoint": None, **{key: "???" for key in REQUIRED}}
        for f in dataclasses.fields(cls):
            if f.name not in node and f.name not in _GROUPED:
                node[f.name] = _default(f.name)
        node["tta"] = dict(TTA_DEFAULTS)
        node["overlays"] = {"frames": _default("overlay_frames"), "size": _default("overlay_size")}
        post = PostprocessSettings()
        node["postprocess"] = {key: getattr(post, key) for key in POSTPROCESS_KEYS}
        for key in RECOMMENDED_POST:
            node["postprocess"][key] = None  # the checkpoint's recommendation
        return node

    def tta_options(self) -> dict[str, Any]:
        """``tta_rolls`` / ``tta_flip`` as the predictor runs them (1 / False when TTA is off or
        still unresolved)."""
        if not self.tta_enabled:
            return {"tta_rolls": 1, "tta_flip": False}
        return {"tta_rolls": self.tta_rolls, "tta_flip": self.tta_flip}

    def with_recommended(self, rec: dict[str, Any]) -> tuple[InferSettings, dict[str, Any]]:
        """These settings with the unset ones (``tta_enabled`` None; ``calcium_min_area_mm2`` /
        ``calcium_extend_prob`` None in a postprocess mapping, or ``postprocess=True``, the
        API's defaults) taken from the checkpoint's recommendations ``rec``
        (:func:`octseg.model.recommended.recommended`), else off; and what was applied."""
        applied: dict[str, Any] = {}
        tta = self.tta_enabled
        if tta is None:
            tta = bool(rec.get("tta", False))
            if "tta" in rec:
                applied["tta"] = tta
        post, taken = _post_recommended(self.postprocess, rec)
        applied |= taken
        return dataclasses.replace(self, tta_enabled=tta, postprocess=post), applied

    def extend_options(self) -> dict[str, Any]:
        """The calcium arc extension as the predictor runs it (:mod:`octseg.model.extend`): its
        probability (0: off, also with the post-processing off or unresolved) and the minimum
        area of the calcium that seeds it (the post-processing's ``calcium_min_area_mm2``)."""
        post = self.postprocess
        if not isinstance(post, Mapping) or not post.get("enabled", True):
            return {"calcium_extend_prob": 0.0, "calcium_seed_min_mm2": 0.0}
        return {
            "calcium_extend_prob": float(post.get("calcium_extend_prob") or 0.0),
            "calcium_seed_min_mm2": float(post.get("calcium_min_area_mm2") or 0.0),
        }

    def output_affecting(self) -> dict[str, Any]:
        """Settings that change the outputs (part of each pullback's fingerprint)."""
        keys = (
            "resample",
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
        from octseg.geometry.settings import MEASUREMENT_RULES

        out = {k: getattr(self, k) for k in keys} | self.tta_options()
        out["geometry"] = geometry_fingerprinted(self.geometry)
        for key in ("ensemble_weights", "net_alines"):  # absent when unset: earlier outputs
            if getattr(self, key):  # keep their fingerprint
                out[key] = getattr(self, key)
        return out | {"measurement_rules": MEASUREMENT_RULES}


def _default(name: str) -> Any:
    """The dataclass default of one :class:`InferSettings` field."""
    f = InferSettings.__dataclass_fields__[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _checkpoint(value: Any) -> str | list[str] | None:
    """The ``checkpoint=`` setting: None (empty or ``???``: the shipped model, resolved and
    checked by start_run), one path, or a list of two or more (a one-item list is its path)."""
    if isinstance(value, (list, tuple)):
        paths = [str(v) for v in value]
        if not paths or any(p in ("", "???") for p in paths):
            raise InputError(None, f"checkpoint={list(value)!r}: every listed path must be given")
        return paths[0] if len(paths) == 1 else paths
    return None if value in (None, "", "???") else str(value)


def _post_recommended(post: Any, rec: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The postprocess setting with its recommendable keys (:data:`RECOMMENDED_POST`) resolved:
    an unset one (absent or None) takes the checkpoint's recommendation in ``rec``, else the
    default; a given number becomes a float (``0`` and ``0.0`` fingerprint alike). Also the
    recommendations that were applied."""
    from octseg.model.postprocess import PostprocessSettings

    if post is True and any(key in rec for key in RECOMMENDED_POST):
        post = {"enabled": True}
    if not isinstance(post, Mapping):
        return post, {}
    post = dict(post)
    applied: dict[str, Any] = {}
    for key in RECOMMENDED_POST:
        value = post.get(key)
        if value is None:
            value = rec.get(key, getattr(PostprocessSettings, key))
            if key in rec and post.get("enabled", True):
                applied[key] = rec[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            post[key] = float(value)
    return with_extension(post, post.get("calcium_extend_prob")), applied


# postprocess settings added after outputs were first fingerprinted: left out of the mapping
# while off (their PostprocessSettings default), so outputs written before they existed keep
# their fingerprint
_OMITTED_WHEN_OFF = (
    "calcium_min_length_mm",
    "calcium_extend_prob",
    "calcium_track_frames",
    "calcium_frame_vote",
    "calcium_outer_median",
)


def with_extension(post: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """The postprocess mapping with ``calcium_extend_prob`` = ``value``, without the settings of
    :data:`_OMITTED_WHEN_OFF` that are off (at their default)."""
    from octseg.model.postprocess import PostprocessSettings

    out = {**post, "calcium_extend_prob": value}
    return _without_defaults(out, _OMITTED_WHEN_OFF, PostprocessSettings)


# geometry settings added after outputs were first fingerprinted that change no measured number
# (they add a field): left out of the mapping at their default, so earlier outputs keep their
# fingerprint and a resumed run keeps them (evaluate.py derives score_borderline for them)
_GEOMETRY_OMITTED_AT_DEFAULT = (
    "score_margin_arc_deg",
    "score_margin_thickness_mm",
    "score_margin_length_mm",
)


def geometry_fingerprinted(geometry: Any) -> Any:
    """The ``geometry`` setting without the keys of :data:`_GEOMETRY_OMITTED_AT_DEFAULT` that
    are at their :class:`GeometrySettings` default."""
    from octseg.geometry.settings import GeometrySettings

    if not isinstance(geometry, Mapping):
        return geometry
    return _without_defaults(geometry, _GEOMETRY_OMITTED_AT_DEFAULT, GeometrySettings)


def _without_defaults(values: Mapping[str, Any], names: Sequence[str], cls: type) -> dict:
    """``values`` without the keys among ``names`` whose value is ``cls``'s default for them
    (settings added after outputs were first fingerprinted leave those fingerprints alone)."""
    default = {k: getattr(cls, k) for k in names}
    return {k: v for k, v in values.items() if not (k in default and v == default[k])}


def _flatten(tta: dict[str, Any], overlays: dict[str, Any]) -> dict[str, Any]:
    """The flat fields that the Hydra config's ``tta.*`` and ``overlays.*`` set."""
    enabled = tta.get("enabled", TTA_DEFAULTS["enabled"])
    if enabled not in (True, False, None):
        raise InputError(
            None, f"tta.enabled={enabled!r} is not allowed: true, false or null (the model's)"
        )
    flat: dict[str, Any] = {"tta_enabled": enabled}  # types, ranges: safety.validate_settings
    flat["tta_rolls"] = tta.get("rolls", TTA_DEFAULTS["rolls"])
    flat["tta_flip"] = tta.get("flip", TTA_DEFAULTS["flip"])
    if overlays:
        flat["overlay_frames"] = overlays.get("frames", _default("overlay_frames"))
        flat["overlay_size"] = overlays.get("size", _default("overlay_size"))
    return flat
