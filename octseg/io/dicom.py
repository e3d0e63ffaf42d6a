"""IVOCT DICOM: reader for both SOP classes (the writer is :mod:`octseg.io.dicom_write`).

SOP classes
    Intravascular OCT Image Storage - For Presentation ``1.2.840.10008.5.1.4.1.1.14.1``:
    Cartesian frames, catheter at the image centre unless stated otherwise.
    Intravascular OCT Image Storage - For Processing ``1.2.840.10008.5.1.4.1.1.14.2``: polar
    frames, one A-line per row, depth along the columns from the catheter (column 0).

Pixels
    MONOCHROME2 / MONOCHROME1 (scaled to [0, 1]), RGB and YBR (sepia colour maps, converted to
    grey by :func:`octseg.io.color.display_to_gray`), PALETTE COLOR (the LUT is applied with
    ``pydicom.pixels.apply_color_lut``, then the same conversion). Transfer syntaxes: every one
    pydicom can decode with the pinned plugins - uncompressed (implicit/explicit little endian),
    RLE Lossless (pylibjpeg-rle or pydicom's own decoder) and JPEG Baseline/Extended/Lossless
    (pylibjpeg-libjpeg).

Laziness
    The header is read without the pixel data; frames are decoded on demand with
    ``pydicom.pixels.iter_pixels(path, indices=...)``, which reads only the bytes of the frames
    asked for. A 1 GB pullback is therefore never in memory at once (see
    benchmarks/dicom_memory.py).

Spacing (first found wins; explicit arguments and a ``spacing.json`` sidecar take precedence)
    pixel: Cartesian - Pixel Spacing (0028,0030) in the shared or first per-frame Pixel Measures
    functional group, else top level; polar - A-line Pixel Spacing (0052,0014).
    frame: differences of the per-frame Intravascular Longitudinal Distance (0052,0028), else
    Pullback Rate (0018,3101) / Catheter Rotational Rate (0052,0013).

Privacy
    Only non-identifying header values reach :attr:`Pullback.metadata` (SOP class, transfer
    syntax, photometric interpretation, manufacturer and model, sizes, spacings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)

from octseg.core.errors import InputError
from octseg.io import limits
from octseg.io.base import Pullback, Reader, register_reader
from octseg.io.color import (
    display_lut,
    display_metadata,
    display_sample,
    is_grey_display,
    rgb_frames_to_gray,
)
from octseg.io.spacing import spacing_for

IVOCT_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.14.1")
IVOCT_PROCESSING = UID("1.2.840.10008.5.1.4.1.1.14.2")
IVOCT_SOP_CLASSES = {IVOCT_PRESENTATION: "cartesian", IVOCT_PROCESSING: "polar"}
TRANSFER_SYNTAXES = {
    "explicit_le": ExplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg_baseline": JPEGBaseline8Bit,
}
PHOTOMETRICS = ("MONOCHROME2", "RGB", "PALETTE COLOR")
#: photometric interpretations the reader converts (pydicom hands YBR pixels over as RGB)
READ_PHOTOMETRICS = (
    "MONOCHROME1",
    "MONOCHROME2",
    "PALETTE COLOR",
    "RGB",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_ICT",
    "YBR_RCT",
)
PRIVATE_CREATOR = "octseg"
PRIVATE_GROUP = 0x0009
_CENTER_ELEM = 0x01  # (0009,1001) DS catheter centre [cy, cx] in pixels (Cartesian)
_NON_IDENTIFYING = {
    "Manufacturer": "manufacturer",
    "ManufacturerModelName": "model",
    "SoftwareVersions": "software_versions",
    "Modality": "modality",
}


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _first(ds: Dataset, keyword: str) -> Any:
    """``keyword`` at the top level, in the shared functional groups or in the first frame's."""
    if keyword in ds:
        return ds[keyword].value
    for seq_kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in (ds.get(seq_kw) or [])[:1]:
            for elem in group:
                if elem.VR == "SQ":
                    for item in elem.value[:1]:
                        if keyword in item:
                            return item[keyword].value
    return None


def longitudinal_distances(ds: Dataset) -> np.ndarray | None:
    """Per-frame Intravascular Longitudinal Distance (0052,0028) in mm, in frame order; None
    where a frame lacks it (or the file has no per-frame functional groups)."""
    dist = []
    for item in ds.get("PerFrameFunctionalGroupsSequence") or []:
        value = None
        for seq_kw in ("IntravascularFrameContentSequence", "IntravascularOCTFrameContentSequence"):
            for sub in item.get(seq_kw) or []:
                if "IntravascularLongitudinalDistance" in sub:
                    value = float(sub.IntravascularLongitudinalDistance)
        if value is None:
            return None
        dist.append(value)
    return np.asarray(dist, dtype=np.float64) if dist else None


def longitudinal_spacing(ds: Dataset) -> float | None:
    """Frame spacing (mm): median step of :func:`longitudinal_distances`; None if unknown."""
    dist = longitudinal_distances(ds)
    if dist is None or len(dist) < 2:
        return None
    step = np.abs(np.diff(dist))
    step = step[step > 0]
    return float(np.median(step)) if step.size else None


def _rate_spacing(ds: Dataset) -> float | None:
    rate, rot = _first(ds, "IVUSPullbackRate"), _first(ds, "CatheterRotationalRate")
    try:
        rate, rot = float(rate), float(rot)
    except (TypeError, ValueError):
        return None
    return rate / rot if rate > 0 and rot > 0 else None


@register_reader
class DicomReader(Reader):
    name = "dicom"

    @classmethod
    def can_read(cls, path: Path) -> bool:
        return path.is_file() and (
            path.suffix.lower() in (".dcm", ".dicom") or _is_dicom_file(path)
        )

    @classmethod
    def read(cls, path: Path, **options: Any) -> Pullback:
        path = Path(path)
        ds, pixel_pos = _open(path)
        sop, space = _sop_class(path, ds)
        pix = _pixel_module(path, ds)
        limits.check_frames(
            path, pix.n, pix.h, pix.w,
            samples=int(ds.get("SamplesPerPixel", 1)),
            bytes_per_sample=max(int(ds.get("BitsAllocated", 8)) // 8, 1),
        )  # fmt: skip
        _check_pixel_data(path, ds, pixel_pos, pix.n, pix.h, pix.w, pix.ts)
        orient = _orientation(path, ds, space, pix.n, pix.h, pix.w)
        px, fr, sources = _spacing(path, ds, space, options)
        palette = _palette_of(path, ds, pix)
        meta = {**_metadata(ds, sop, pix, sources), **_display(path, pix, palette)}
        if space == "polar":
            meta["orientation"] = orient.describe()
        _identification(ds, meta)
        return Pullback(
            source=str(path),
            format=cls.name,
            space=space,
            n_frames=pix.n,
            height=pix.h,
            width=pix.w,
            pixel_spacing_mm=px,
            frame_spacing_mm=fr,
            loader=_frame_loader(path, pix, orient, palette, display_lut(meta)),
            catheter_center=_catheter_center(ds) if space == "cartesian" else None,
            metadata=meta,
        )


def _open(path: Path) -> tuple[Dataset, int]:
    """:func:`_read_header`, every failure an :class:`InputError` naming the file."""
    try:
        return _read_header(path)
    except InputError:
        raise
    except InvalidDicomError:
        raise InputError(path, "not a DICOM file (no DICM preamble)") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(path, f"unreadable DICOM header ({type(exc).__name__}: {exc})") from None


def _sop_class(path: Path, ds: Dataset) -> tuple[UID, str]:
    """The SOP class and its space (``"polar"`` / ``"cartesian"``); IVOCT classes only."""
    sop = UID(str(ds.get("SOPClassUID", "")))
    if sop not in IVOCT_SOP_CLASSES:
        name = sop.name if sop else "none"
        raise InputError(
            path,
            f"SOP class {sop or '(missing)'} ({name}) is not Intravascular OCT Image Storage "
            f"({IVOCT_PRESENTATION} or {IVOCT_PROCESSING})",
        )
    return sop, IVOCT_SOP_CLASSES[sop]


@dataclass(frozen=True)
class _PixelModule:
    """What the reader needs of the Image Pixel module and the transfer syntax."""

    n: int
    h: int
    w: int
    photometric: str
    bits_stored: int
    ts: UID


def _pixel_module(path: Path, ds: Dataset) -> _PixelModule:
    try:
        pix = _PixelModule(
            n=_number_of_frames(path, ds),
            h=int(ds.Rows),
            w=int(ds.Columns),
            photometric=str(ds.PhotometricInterpretation).strip(),
            bits_stored=int(ds.get("BitsStored", 8)),
            ts=UID(str(ds.file_meta.TransferSyntaxUID)),
        )
    except (AttributeError, ValueError, TypeError) as exc:
        raise InputError(path, f"incomplete image pixel module ({exc})") from None
    if pix.photometric not in READ_PHOTOMETRICS:
        raise InputError(
            path,
            f"unsupported photometric interpretation {pix.photometric!r} "
            f"(supported: {', '.join(READ_PHOTOMETRICS)})",
        )
    return pix


def _spacing(
    path: Path, ds: Dataset, space: str, options: Mapping[str, Any]
) -> tuple[float, float, dict]:
    """Pixel and frame spacing (mm) and their sources (:func:`octseg.io.spacing.spacing_for`)."""
    if space == "cartesian":
        ps = _first(ds, "PixelSpacing")
        file_px, px_src = None, "file: Pixel Spacing (0028,0030)"
        if ps is not None and len(ps) == 2 and float(ps[0]) > 0 and float(ps[1]) > 0:
            if abs(float(ps[0]) - float(ps[1])) > 1e-3 * float(ps[0]):
                raise InputError(path, f"non-square pixels {list(ps)} are not supported")
            file_px = float(ps[0])
    else:
        val = _first(ds, "ALinePixelSpacing")
        file_px = float(val) if val is not None else None
        px_src = "file: A-line Pixel Spacing (0052,0014)"
    file_fr = longitudinal_spacing(ds)
    fr_src = "file: Intravascular Longitudinal Distance (0052,0028)"
    if file_fr is None:
        file_fr = _rate_spacing(ds)
        fr_src = "file: Pullback Rate (0018,3101) / Catheter Rotational Rate (0052,0013)"
    return spacing_for(
        path, options, file_pixel=file_px, file_frame=file_fr,
        pixel_source=px_src, frame_source=fr_src,
    )  # fmt: skip


def _catheter_center(ds: Dataset) -> tuple[float, float] | None:
    """octseg's private catheter centre (cy, cx) of a Cartesian file; None where absent."""
    try:
        cc = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[_CENTER_ELEM].value
        return (float(cc[0]), float(cc[1]))
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # no (or a malformed) private centre: the image centre is used


def _palette_of(path: Path, ds: Dataset, pix: _PixelModule) -> tuple[np.ndarray, bool] | None:
    """A PALETTE COLOR file's table (:func:`_palette`); None for any other file."""
    if pix.photometric != "PALETTE COLOR":
        return None
    try:
        return _palette(ds, pix.bits_stored)
    except Exception as exc:  # missing or malformed LUT descriptor / data
        raise InputError(
            path, f"unreadable palette colour table ({type(exc).__name__}: {exc})"
        ) from None


def _display(path: Path, pix: _PixelModule, palette: tuple[np.ndarray, bool] | None) -> dict:
    """How a colour file was displayed, from its first, middle and last frames (docs/io.md,
    "Colour"); nothing for grey files, and nothing when they cannot be decoded (reading the
    frames then names the problem)."""
    if pix.photometric.startswith("MONOCHROME"):
        return {}
    try:
        frames = list(pydicom.pixels.iter_pixels(path, indices=display_sample(pix.n)))
    except Exception:
        return {}
    scale = float(2**pix.bits_stored - 1)
    return display_metadata(_as_rgb(arr, palette, scale) for arr in frames)


def _as_rgb(arr: np.ndarray, palette: tuple[np.ndarray, bool] | None, scale: float) -> np.ndarray:
    """One decoded colour frame as uint8 RGB: a PALETTE COLOR frame through its table, a wider
    RGB one scaled by the bits stored (``scale``)."""
    if palette is not None:
        return np.take(palette[0], arr, axis=0, mode="clip")
    if arr.dtype != np.uint8:
        return np.clip(arr.astype(np.float64) / scale * 255, 0, 255).round().astype(np.uint8)
    return arr


def _frame_loader(
    path: Path,
    pix: _PixelModule,
    orient: _Orientation,
    palette: tuple[np.ndarray, bool] | None,
    lut: np.ndarray | None = None,
):
    """``load(start, stop)``: frames as float32 grey in [0, 1], in octseg's orientation (colour
    frames read through the display map ``lut``)."""
    monochrome1 = pix.photometric == "MONOCHROME1"
    scale = float(2**pix.bits_stored - 1)

    def load(start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, pix.h, pix.w), dtype=np.float32)
        try:
            it = pydicom.pixels.iter_pixels(path, indices=range(start, stop))
            for k, arr in enumerate(it):
                grey = _to_gray(arr, pix.photometric, palette, scale, monochrome1, lut)
                out[k] = orient.apply(grey, start + k)
        except InputError as exc:
            if exc.path is None:
                raise InputError(path, exc.problem) from None
            raise
        except Exception as exc:  # decoder errors on truncated/corrupt pixel data
            raise InputError(
                path, f"cannot decode frames {start}:{stop} ({type(exc).__name__}: {exc})"
            ) from None
        return out

    return load


def _metadata(ds: Dataset, sop: UID, pix: _PixelModule, sources: dict) -> dict[str, Any]:
    return {
        "sop_class_uid": str(sop),
        "sop_class": sop.name,
        "transfer_syntax_uid": str(pix.ts),
        "transfer_syntax": pix.ts.name,
        "photometric_interpretation": pix.photometric,
        "samples_per_pixel": int(ds.get("SamplesPerPixel", 1)),
        "bits_stored": pix.bits_stored,
        "spacing_source": sources,
    }


def _identification(ds: Dataset, meta: dict[str, Any]) -> None:
    """Add the non-identifying equipment attributes and A-lines per frame to ``meta``."""
    for kw, key in _NON_IDENTIFYING.items():
        if kw in ds and ds[kw].value not in (None, ""):
            meta[key] = str(ds[kw].value)
    alines = _first(ds, "ALinesPerFrame")
    if alines is not None:
        meta["a_lines_per_frame"] = int(alines)


def _frame_value(ds: Dataset, frame: int, keyword: str) -> Any:
    """``keyword`` in frame ``frame``'s functional groups, else the shared ones, else top level."""
    groups = []
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    if frame < len(per):
        groups.append(per[frame])
    groups += list(ds.get("SharedFunctionalGroupsSequence") or [])[:1]
    for group in groups:
        for elem in group:
            if elem.VR == "SQ":
                for item in elem.value[:1]:
                    if keyword in item and item[keyword].value is not None:
                        return item[keyword].value
    if keyword in ds and ds[keyword].value is not None:
        return ds[keyword].value
    return None


def _shift_depth(frame: np.ndarray, z: int) -> np.ndarray:
    """``frame`` with every A-line moved ``z`` samples deeper (negative: shallower), 0-filled."""
    if not z:
        return frame
    moved = np.zeros_like(frame)
    if z > 0:
        moved[:, z:] = frame[:, :-z]
    else:
        moved[:, :z] = frame[:, -z:]
    return moved


class _Orientation:
    """How stored polar frames map onto octseg's convention (A-line ``i`` at angle
    ``360 * i / H`` degrees, angles increasing clockwise on screen; docs/io.md):

    1. depth: where OCT Z Offset Applied (0052,0026) is ``NO``, A-lines move by OCT Z Offset
       Correction (0052,0030) pixels along the depth axis (positive: away from the catheter),
       the vacated samples are 0;
    2. seam: rows roll so that row Seam Line Index (0052,0036) lands on row
       ``round(H * Seam Line Location (0052,0033) / 360)``; without a Seam Line Location, row 0
       lands on row ``round(H * First A-line Location (0052,0034) / 360)``;
    3. direction: Catheter Direction of Rotation (0052,0031) ``CC`` (counter-clockwise) reverses
       the angular order (row ``i`` -> row ``-i mod H``); ``CW`` or absent leaves it.
    """

    def __init__(self, roll: np.ndarray, reverse: bool, zshift: np.ndarray, direction: str):
        self.roll, self.reverse, self.zshift, self.direction = roll, reverse, zshift, direction

    def apply(self, frame: np.ndarray, index: int) -> np.ndarray:
        z = int(self.zshift[index]) if self.zshift.size else 0
        frame = _shift_depth(frame, z)
        r = int(self.roll[index]) if self.roll.size else 0
        if r:
            frame = np.roll(frame, r, axis=0)
        if self.reverse:
            frame = frame[(-np.arange(frame.shape[0])) % frame.shape[0]]
        return frame

    def undo(self, frame: np.ndarray, index: int) -> np.ndarray:
        """The inverse of :meth:`apply`: a frame in octseg's convention back onto the stored
        pixel grid (samples shifted past the depth are lost, vacated ones are 0)."""
        if self.reverse:
            frame = frame[(-np.arange(frame.shape[0])) % frame.shape[0]]
        r = int(self.roll[index]) if self.roll.size else 0
        if r:
            frame = np.roll(frame, -r, axis=0)
        z = int(self.zshift[index]) if self.zshift.size else 0
        return _shift_depth(frame, -z)

    def describe(self) -> dict[str, Any]:
        def compact(a: np.ndarray) -> Any:
            if not a.size:
                return 0
            return int(a[0]) if np.all(a == a[0]) else "per-frame"

        return {
            "catheter_direction": self.direction,
            "seam_roll_rows": compact(self.roll),
            "z_offset_shift_px": compact(self.zshift),
        }


def _orientation(path: Path, ds: Dataset, space: str, n: int, h: int, w: int) -> _Orientation:
    """Read seam line, rotation direction and z-offset attributes (see :class:`_Orientation`)."""
    zshift = _z_shift(path, ds, space, n, w)
    if space != "polar":
        return _Orientation(np.zeros(0, np.int64), False, zshift, "n/a")
    direction_raw = ds.get("CatheterDirectionOfRotation") or _first(
        ds, "CatheterDirectionOfRotation"
    )
    direction = str(direction_raw).strip().upper() if direction_raw else "CW"
    if direction not in ("CW", "CC"):
        raise InputError(path, f"Catheter Direction of Rotation {direction_raw!r} is not CW or CC")
    return _Orientation(_seam_roll(path, ds, n, h), direction == "CC", zshift, direction)


def _z_shift(path: Path, ds: Dataset, space: str, n: int, w: int) -> np.ndarray:
    """Per-frame depth shift (samples) still to apply: OCT Z Offset Correction where OCT Z Offset
    Applied is NO (polar frames only), else 0."""
    applied = ds.get("OCTZOffsetApplied")
    applied = None if applied in (None, "") else str(applied).strip().upper()
    zcorr = [_frame_value(ds, i, "OCTZOffsetCorrection") for i in range(n)]
    zshift = np.zeros(n, dtype=np.int64)
    if any(v not in (None, 0) for v in zcorr):
        if applied == "YES":
            pass  # already corrected in the stored pixels
        elif applied != "NO":
            raise InputError(
                path,
                "OCT Z Offset Correction (0052,0030) is given but OCT Z Offset Applied "
                "(0052,0026) is missing: cannot tell whether the frames still need it",
            )
        elif space != "polar":
            raise InputError(
                path,
                "z-offset not applied (OCT Z Offset Applied NO with a non-zero OCT Z Offset "
                "Correction) in scan-converted (For Presentation) frames: cannot be corrected "
                "here; export the frames with the z-offset applied",
            )
        else:
            zshift = np.array([int(v or 0) for v in zcorr], dtype=np.int64)
            if np.any(np.abs(zshift) >= w):
                raise InputError(
                    path, f"OCT Z Offset Correction {zshift.tolist()} exceeds the {w} samples"
                )
    return zshift


def _seam_roll(path: Path, ds: Dataset, n: int, h: int) -> np.ndarray:
    """Per-frame row roll (mod ``h``) that puts each frame's seam line where it belongs."""
    roll = np.zeros(n, dtype=np.int64)
    for i in range(n):
        idx = _frame_value(ds, i, "SeamLineIndex")
        loc = _frame_value(ds, i, "SeamLineLocation")
        first = _frame_value(ds, i, "FirstALineLocation")
        try:
            if idx is not None and loc is not None:
                roll[i] = int(round(h * float(loc) / 360.0)) - int(idx)
            elif first is not None:
                roll[i] = int(round(h * float(first) / 360.0))
        except (TypeError, ValueError):
            raise InputError(
                path, f"frame {i}: malformed seam line / first A-line location"
            ) from None
    return roll % h


def read_orientation(path: str | Path) -> _Orientation:
    """How the stored frames of the IVOCT DICOM ``path`` map onto octseg's convention (the
    transform :class:`DicomReader` applies; ``undo`` maps octseg-convention frames back)."""
    path = Path(path)
    ds, _ = _read_header(path)
    space = IVOCT_SOP_CLASSES.get(UID(str(ds.get("SOPClassUID", ""))), "cartesian")
    n = _number_of_frames(path, ds)
    return _orientation(path, ds, space, n, int(ds.Rows), int(ds.Columns))


def _number_of_frames(path: Path, ds: Dataset) -> int:
    """Number of Frames (0028,0008): 1 where absent (single-frame); 0, negative or empty where
    present is refused (never read as 1 frame)."""
    if "NumberOfFrames" not in ds:
        return 1
    raw = ds.NumberOfFrames
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise InputError(path, f"Number of Frames (0028,0008) is {raw!r}, not a count") from None
    if n < 1:
        raise InputError(path, f"Number of Frames (0028,0008) is {n}; at least 1 is needed")
    return n


def _read_header(path: Path) -> tuple[Dataset, int]:
    """The header (no pixel data) and the file offset where the Pixel Data element starts."""
    import warnings

    with warnings.catch_warnings(record=True) as caught, open(path, "rb") as fh:
        warnings.simplefilter("always")
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        pos = fh.tell()
        tag = fh.read(4)
    for w in caught:
        if "end of file" in str(w.message).lower():
            raise InputError(path, "truncated DICOM (the header ends early)")
    if tag != b"\xe0\x7f\x10\x00":
        raise InputError(path, "truncated or corrupt DICOM: no Pixel Data element after the header")
    return ds, pos


def _check_pixel_data(path: Path, ds: Dataset, pos: int, n: int, h: int, w: int, ts: UID) -> None:
    """Catch files cut short, or whose pixel data does not fit the declared frames, without
    decoding anything (native: the element length; encapsulated: the fragment table)."""
    size = path.stat().st_size
    spp = int(ds.get("SamplesPerPixel", 1))
    frame_bytes = h * w * spp * max(int(ds.get("BitsAllocated", 8)) // 8, 1)
    if ts.is_compressed:
        with open(path, "rb") as fh:
            fh.seek(max(size - 8, 0))
            tail = fh.read(8)
        if tail != b"\xfe\xff\xdd\xe0\x00\x00\x00\x00":
            raise InputError(
                path, "truncated DICOM: the encapsulated pixel data lacks its end delimiter"
            )
        _check_fragments(path, pos, n, frame_bytes, ts)
        return
    nbytes = n * frame_bytes
    head = 8 if ts.is_implicit_VR else 12  # tag, (VR, reserved,) length
    if size < pos + head + nbytes:
        raise InputError(
            path,
            f"truncated DICOM: pixel data needs {nbytes} bytes for {n} frames of {h}x{w}x{spp}, "
            f"the file holds {max(size - pos - head, 0)}",
        )
    with open(path, "rb") as fh:
        fh.seek(pos + head - 4)
        length = int.from_bytes(fh.read(4), "little")
    if length != 0xFFFFFFFF and length > nbytes + 1:  # one byte of padding to an even length
        raise InputError(
            path,
            f"pixel data holds {length} bytes, {length / frame_bytes:.4g} frames of {h}x{w}x{spp}, "
            f"but Number of Frames (0028,0008) says {n}",
        )


#: the most a frame can shrink under RLE: PackBits stores a run of 128 bytes in 2
_RLE_MAX_RATIO = 64


def _fragments(path: Path, pos: int, limit: int) -> tuple[int, list[int]]:
    """``(offset table length, fragment lengths)`` of encapsulated pixel data at ``pos``, read
    from the item headers alone; stops after ``limit`` fragments."""
    lengths: list[int] = []
    with open(path, "rb") as fh:
        fh.seek(pos + 12)  # tag, VR, reserved, undefined length
        bot = -1
        while len(lengths) <= limit:
            head = fh.read(8)
            if len(head) < 8 or head[:4] == b"\xfe\xff\xdd\xe0":
                break
            if head[:4] != b"\xfe\xff\x00\xe0":
                raise InputError(path, "corrupt encapsulated pixel data: expected an item tag")
            length = int.from_bytes(head[4:], "little")
            if bot < 0:
                bot = length
            else:
                lengths.append(length)
            fh.seek(length, 1)
    return max(bot, 0), lengths


def _check_fragments(path: Path, pos: int, n: int, frame_bytes: int, ts: UID) -> None:
    """Encapsulated pixel data must hold at least one fragment per declared frame, an offset
    table (where present) with one entry per frame, and - for RLE, one fragment per frame - no
    frame declaring more decoded bytes than its fragment can expand to."""
    bot, frags = _fragments(path, pos, limit=64 * n + 16)
    if len(frags) > 64 * n + 16:
        raise InputError(
            path, f"encapsulated pixel data holds over {64 * n} fragments for {n} frames"
        )
    if len(frags) < n:
        raise InputError(
            path,
            f"encapsulated pixel data holds {len(frags)} fragment(s) for the {n} frames "
            "Number of Frames (0028,0008) declares",
        )
    if bot and bot // 4 != n:
        raise InputError(
            path, f"the pixel data offset table lists {bot // 4} frames; the header declares {n}"
        )
    if ts == RLELossless:
        for i, length in enumerate(frags[:n]):
            if frame_bytes > _RLE_MAX_RATIO * length + 8192:
                raise InputError(
                    path,
                    f"RLE frame {i} declares {frame_bytes} decoded bytes but its fragment holds "
                    f"{length} bytes, which can expand to at most {_RLE_MAX_RATIO * length}",
                )


def _palette(ds: Dataset, bits_stored: int) -> tuple[np.ndarray, bool]:
    """A PALETTE COLOR file's colour table as uint8 RGB for every stored index, and whether it
    is a grey display (decided once for the file from its one table, not per frame; a 16-bit
    table is cut to 8 bits when any entry needs more)."""
    idx = np.arange(2**bits_stored, dtype=np.uint16 if bits_stored > 8 else np.uint8)
    table = pydicom.pixels.apply_color_lut(idx, ds)
    if table.dtype != np.uint8:
        table = (table >> 8).astype(np.uint8) if table.max() > 255 else table.astype(np.uint8)
    return table, is_grey_display(table)


def _to_gray(
    arr: np.ndarray,
    photometric: str,
    palette: tuple[np.ndarray, bool] | None,
    scale: float,
    monochrome1: bool,
    lut: np.ndarray | None = None,
) -> np.ndarray:
    if photometric.startswith("MONOCHROME"):
        grey = arr.astype(np.float32) / scale
        return 1.0 - grey if monochrome1 else grey
    if photometric == "PALETTE COLOR":
        return rgb_frames_to_gray(_as_rgb(arr, palette, scale), palette[1], lut)
    if arr.ndim == 3 and arr.shape[-1] == 3:  # RGB, or YBR converted to RGB by pydicom
        return rgb_frames_to_gray(_as_rgb(arr, None, scale), lut=lut)
    raise InputError(None, f"unsupported photometric interpretation {photometric!r}")
