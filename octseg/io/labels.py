"""Label file schema, version 1: a compressed ``.npz`` shared by every part of octseg.

Keys
----
``labels``            uint8 ``(F, H, W)``; class indices from :mod:`octseg.core.classes`.
``space``             ``"polar"``: axis 1 = A-lines evenly over 360 degrees, axis 2 = depth;
                      column ``j`` lies at radius ``j * pixel_spacing_mm`` from the catheter
                      centre. A-line ``i`` points at angle ``theta_i = 2*pi*i/H`` and the point
                      at radius ``r`` on it has Cartesian offset
                      ``(dy, dx) = (r*sin(theta), r*cos(theta))`` mm from the catheter centre
                      (row axis pointing down, so angles increase clockwise on screen).
                      ``"cartesian"``: pixel ``(i, j)`` lies at
                      ``((i - cy) * s, (j - cx) * s)`` mm from the catheter centre.
``pixel_spacing_mm``  float, > 0 (square pixels in Cartesian; depth step in polar).
``frame_spacing_mm``  float, > 0.
``catheter_center``   optional, Cartesian only: ``[cy, cx]`` pixels; default
                      ``((H - 1) / 2, (W - 1) / 2)``.
``frame_index``       optional int array of length F: the pullback frame number of each label
                      frame (sparse labels); default ``0..F-1``. Strictly increasing.
``schema_version``    optional int, 1.

Any other key may be added and is preserved in :attr:`LabelFile.extra`.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core import atomic
from octseg.core.classes import NUM_CLASSES
from octseg.core.errors import InputError, SchemaError
from octseg.io import limits
from octseg.io.limits import check_center
from octseg.io.npz import load_npz

SCHEMA_VERSION = 1
SPACES = ("polar", "cartesian")
_REQUIRED = ("labels", "space", "pixel_spacing_mm", "frame_spacing_mm")
_KNOWN = {
    "labels",
    "space",
    "pixel_spacing_mm",
    "frame_spacing_mm",
    "catheter_center",
    "frame_index",
    "schema_version",
}


@dataclass
class LabelFile:
    labels: np.ndarray  # uint8 (F, H, W)
    space: str
    pixel_spacing_mm: float
    frame_spacing_mm: float
    catheter_center: tuple[float, float] | None = None  # (cy, cx) pixels, Cartesian only
    frame_index: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n_frames(self) -> int:
        return int(self.labels.shape[0])

    @property
    def frames(self) -> np.ndarray:
        """Pullback frame number of each label frame."""
        if self.frame_index is None:
            return np.arange(self.n_frames, dtype=np.int64)
        return self.frame_index

    @property
    def center(self) -> tuple[float, float]:
        """Catheter centre (cy, cx) in pixels for Cartesian maps."""
        if self.catheter_center is not None:
            return self.catheter_center
        h, w = self.labels.shape[1:]
        return ((h - 1) / 2.0, (w - 1) / 2.0)

    def validate(self, path: str | Path | None = None) -> None:
        """Check every field (``SchemaError`` naming ``path`` and the problem) and normalise
        them: labels to uint8, spacings to float, the centre checked, frame_index to int64."""
        try:
            self.labels = _checked_labels(self.labels)
            if self.space not in SPACES:
                raise _Invalid(f"'space' must be one of {SPACES}, got {self.space!r}")
            for key in ("pixel_spacing_mm", "frame_spacing_mm"):
                val = getattr(self, key)
                if val is None or not np.isfinite(val) or float(val) <= 0:
                    raise _Invalid(f"'{key}' must be a positive number, got {val!r}")
                setattr(self, key, float(val))
            if self.catheter_center is not None:
                self.catheter_center = _checked_center(path, self)
            if self.frame_index is not None:
                self.frame_index = _checked_frame_index(self.frame_index, self.labels.shape[0])
        except _Invalid as exc:
            raise SchemaError(path, f"label file: {exc}") from None


class _Invalid(Exception):
    """One problem of a label file's fields (:meth:`LabelFile.validate` names the file)."""


def _checked_labels(lab: Any) -> np.ndarray:
    """``lab`` as uint8 (F, H, W) class indices of known classes."""
    if not isinstance(lab, np.ndarray) or lab.ndim != 3:
        shape = getattr(lab, "shape", None)
        raise _Invalid(f"'labels' must be a 3-D array (F, H, W), got shape {shape}")
    if lab.dtype != np.uint8:
        if not np.issubdtype(lab.dtype, np.integer):
            raise _Invalid(f"'labels' must hold integer class indices, got dtype {lab.dtype}")
        if lab.size and (lab.min() < 0 or lab.max() > 255):
            raise _Invalid("'labels' values must lie in 0..255")
        lab = lab.astype(np.uint8)
    if lab.size and lab.max() >= NUM_CLASSES:
        raise _Invalid(
            f"'labels' holds class {int(lab.max())}; known classes are 0..{NUM_CLASSES - 1}"
        )
    return lab


def _checked_center(path: str | Path | None, lf: LabelFile) -> tuple[float, float]:
    """The Cartesian catheter centre (cy, cx) of ``lf``, checked against its frame size."""
    cc = np.asarray(lf.catheter_center, dtype=float).reshape(-1)
    if cc.shape != (2,) or not np.all(np.isfinite(cc)):
        raise _Invalid(f"'catheter_center' must be [cy, cx], got {lf.catheter_center!r}")
    if lf.space == "polar":
        raise _Invalid("'catheter_center' is only meaningful for Cartesian label maps")
    try:
        return check_center(path, cc, *lf.labels.shape[1:])
    except InputError as exc:
        raise _Invalid(exc.problem) from None


def _checked_frame_index(frame_index: Any, n_frames: int) -> np.ndarray:
    """``frame_index`` as strictly increasing int64, one entry per label frame."""
    fi = np.asarray(frame_index).reshape(-1)
    if fi.shape[0] != n_frames:
        raise _Invalid(f"'frame_index' has {fi.shape[0]} entries for {n_frames} label frames")
    if not np.issubdtype(fi.dtype, np.integer):
        raise _Invalid("'frame_index' must hold integers")
    if fi.size > 1 and np.any(np.diff(fi) <= 0):
        raise _Invalid("'frame_index' must be strictly increasing")
    return fi.astype(np.int64)


def load_labels(path: str | Path, *, allow_unusual_spacing: bool = False) -> LabelFile:
    """Read and validate a label file; errors name the file and the problem.

    The declared array sizes are checked (:mod:`octseg.io.limits`) before anything is
    decompressed, and the spacings must lie in the plausible range unless
    ``allow_unusual_spacing``."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(path, "no such file")
    lf = _load(path)
    try:
        for key in ("pixel_spacing_mm", "frame_spacing_mm"):
            limits.check_spacing(path, key, getattr(lf, key), allow=allow_unusual_spacing)
    except InputError as exc:
        raise SchemaError(path, f"label file: {exc.problem}") from None
    return lf


def _check_declared(path: Path) -> None:
    """Sizes from the npy headers alone: the label maps' geometry and the whole file."""
    try:
        members = limits.npz_members(path)
    except InputError as exc:
        raise SchemaError(path, f"not a readable .npz label file ({exc.problem})") from None
    missing = [k for k in _REQUIRED if k not in members]
    if missing:
        raise SchemaError(path, f"label file lacks required key(s): {', '.join(missing)}")
    try:
        if "labels" in members and len(members["labels"][0]) == 3:
            limits.check_frames(path, *members["labels"][0], what="label frames")
        limits.check_npz_total(path, members)
    except InputError as exc:
        raise SchemaError(path, f"label file: {exc.problem}") from None


def _load(path: Path) -> LabelFile:
    _check_declared(path)
    try:
        data = load_npz(path)
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise SchemaError(path, f"not a readable .npz label file ({exc})") from None
    try:
        version = int(data["schema_version"]) if "schema_version" in data else SCHEMA_VERSION
    except (TypeError, ValueError) as exc:
        raise SchemaError(path, f"label file has a malformed 'schema_version' ({exc})") from None
    if version != SCHEMA_VERSION:
        raise SchemaError(path, f"label schema version {version} is not supported (expected 1)")
    try:
        return LabelFile(
            labels=data["labels"],
            space=str(data["space"]),
            pixel_spacing_mm=float(data["pixel_spacing_mm"]),
            frame_spacing_mm=float(data["frame_spacing_mm"]),
            catheter_center=tuple(data["catheter_center"].tolist())
            if "catheter_center" in data
            else None,
            frame_index=data.get("frame_index"),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )
    except SchemaError as exc:
        raise SchemaError(path, exc.problem) from None
    except (TypeError, ValueError) as exc:
        raise SchemaError(path, f"label file has a malformed value ({exc})") from None


def save_labels(
    path: str | Path, lf: LabelFile, *, compress_level: int | None = None, **extra: Any
) -> None:
    """Write ``lf`` atomically as a schema-1 label file. ``compress_level``: zlib level (label
    maps are long runs of a few values: level 1 is ~2.5x faster than the default for files
    ~2x larger)."""
    lf.validate(path)
    arrays: dict[str, Any] = {
        "labels": lf.labels.astype(np.uint8, copy=False),
        "space": np.array(lf.space),
        "pixel_spacing_mm": np.float64(lf.pixel_spacing_mm),
        "frame_spacing_mm": np.float64(lf.frame_spacing_mm),
        "schema_version": np.int64(SCHEMA_VERSION),
    }
    if lf.catheter_center is not None:
        arrays["catheter_center"] = np.asarray(lf.catheter_center, dtype=np.float64)
    if lf.frame_index is not None:
        arrays["frame_index"] = np.asarray(lf.frame_index, dtype=np.int64)
    arrays.update(lf.extra)
    arrays.update(extra)
    atomic.save_npz(path, compress_level=compress_level, **arrays)
