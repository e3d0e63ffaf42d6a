"""IVOCT DICOM writer (``octseg synth``, tests and examples): multi-frame IVOCT images of both
SOP classes that pass dciodvfy; read back by :mod:`octseg.io.dicom`."""

from __future__ import annotations

import datetime as _dt
import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from octseg import __version__
from octseg.core import atomic
from octseg.io.color import SEPIA_LUT
from octseg.io.dicom import (
    _CENTER_ELEM,
    IVOCT_PRESENTATION,
    IVOCT_PROCESSING,
    PHOTOMETRICS,
    PRIVATE_CREATOR,
    PRIVATE_GROUP,
    TRANSFER_SYNTAXES,
)

DEFAULT_ROTATION_HZ = 100.0
DEFAULT_ALINES = 504
#: Image Type / Frame Type: original primary volume frames, no derived contrast
IMAGE_TYPE = ["ORIGINAL", "PRIMARY", "NONE", "NONE"]


# --------------------------------------------------------------------------------------- writer
def write_ivoct_dicom(
    path: str | Path,
    frames: np.ndarray,
    *,
    space: str,
    pixel_spacing_mm: float,
    frame_spacing_mm: float,
    catheter_center: tuple[float, float] | None = None,
    transfer_syntax: str = "explicit_le",
    photometric: str = "MONOCHROME2",
    series_description: str = "octseg synthetic pullback",
    patient_name: str | None = None,
    patient_id: str | None = None,
) -> None:
    """Write uint8 frames ``(F, H, W)`` as a multi-frame IVOCT DICOM, atomically.

    ``space="polar"`` writes the For Processing SOP class (rows = A-lines, A-line Pixel Spacing),
    ``"cartesian"`` the For Presentation class (Pixel Spacing; a catheter centre away from the
    image centre is kept in a private tag). ``photometric="RGB"`` stores the grey values through
    :data:`octseg.io.color.SEPIA_LUT`, ``"PALETTE COLOR"`` stores the grey values as indices into
    that map. ``transfer_syntax`` is ``"explicit_le"``, ``"rle"`` or ``"jpeg_baseline"`` (lossy;
    RGB is then stored as YBR_FULL). Patient name/ID are empty unless given.
    """
    frames = np.asarray(frames)
    _check_writer_arguments(
        frames, space, transfer_syntax, photometric, pixel_spacing_mm, frame_spacing_mm
    )
    n, h, w = frames.shape
    ds = _ivoct_header(
        space=space,
        n=n,
        h=h,
        w=w,
        pixel_spacing_mm=float(pixel_spacing_mm),
        frame_spacing_mm=float(frame_spacing_mm),
        catheter_center=catheter_center,
        series_description=series_description,
        patient_name=patient_name,
        patient_id=patient_id,
    )
    pixels = _pixel_description(ds, frames, photometric)
    _store_pixels(ds, pixels, transfer_syntax, photometric)
    with atomic.atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def _check_writer_arguments(
    frames: np.ndarray,
    space: str,
    transfer_syntax: str,
    photometric: str,
    pixel_spacing_mm: float,
    frame_spacing_mm: float,
) -> None:
    """``ValueError`` for arguments :func:`write_ivoct_dicom` cannot write."""
    if frames.ndim != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (F, H, W), got {frames.dtype} {frames.shape}")
    if space not in ("polar", "cartesian"):
        raise ValueError(f"space must be 'polar' or 'cartesian', got {space!r}")
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise ValueError(f"transfer_syntax must be one of {sorted(TRANSFER_SYNTAXES)}")
    if photometric not in PHOTOMETRICS:
        raise ValueError(f"photometric must be one of {PHOTOMETRICS}")
    if photometric == "PALETTE COLOR" and transfer_syntax == "jpeg_baseline":
        raise ValueError("PALETTE COLOR cannot be stored lossily (jpeg_baseline)")
    for name, val in (
        ("pixel_spacing_mm", pixel_spacing_mm),
        ("frame_spacing_mm", frame_spacing_mm),
    ):
        if not (val is not None and np.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be a positive number, got {val!r}")


def _pixel_description(ds: Dataset, frames: np.ndarray, photometric: str) -> np.ndarray:
    """Set the Image Pixel module's description (and the sepia palette for PALETTE COLOR);
    returns the pixels to store: ``frames``, or their sepia RGB for ``"RGB"``."""
    ds.SamplesPerPixel = 1 if photometric != "RGB" else 3
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
        pixels = SEPIA_LUT[frames]  # (F, H, W, 3)
    else:
        pixels = frames
    if photometric == "PALETTE COLOR":
        lut16 = SEPIA_LUT.astype(np.uint16) * 257
        for i, colour in enumerate(("Red", "Green", "Blue")):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
            setattr(ds, f"{colour}PaletteColorLookupTableData", lut16[:, i].astype("<u2").tobytes())
    return pixels


def _store_pixels(ds: Dataset, pixels: np.ndarray, transfer_syntax: str, photometric: str) -> None:
    """Pixel Data in ``transfer_syntax`` (RLE and JPEG encoded here), with the lossy-compression
    attributes."""
    ts = TRANSFER_SYNTAXES[transfer_syntax]
    ds.file_meta.TransferSyntaxUID = ts
    ds.LossyImageCompression = "00"
    if transfer_syntax == "explicit_le":
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        ds["PixelData"].VR = "OB"
    elif transfer_syntax == "rle":
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        ds["PixelData"].VR = "OB"
        # pylibjpeg-rle (Rust) is ~10x faster than pydicom's own encoder; either is used if present
        ds.compress(RLELossless, generate_instance_uid=False)
    else:
        ds.PixelData = pydicom.encaps.encapsulate([_jpeg_frame(f) for f in pixels])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        if photometric == "RGB":
            ds.PhotometricInterpretation = "YBR_FULL"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.LossyImageCompressionRatio = f"{max(pixels.nbytes / max(len(ds.PixelData), 1), 1):.2f}"[
            :16
        ]


def _jpeg_frame(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    mode = "RGB" if frame.ndim == 3 else "L"
    # baseline (not progressive, not optimised), 4:4:4 so that colour edges survive
    Image.fromarray(frame, mode=mode).save(buf, format="JPEG", quality=95, subsampling=0)
    return buf.getvalue()


def _ivoct_header(
    *,
    space: str,
    n: int,
    h: int,
    w: int,
    pixel_spacing_mm: float,
    frame_spacing_mm: float,
    catheter_center: tuple[float, float] | None,
    series_description: str,
    patient_name: str | None,
    patient_id: str | None,
) -> Dataset:
    """The IVOCT header (no pixel description): every Type 1/2 attribute of the IOD (PS3.3
    A.66), so that ``dciodvfy`` finds no errors for MONOCHROME2 files of either SOP class."""
    sop_class = IVOCT_PROCESSING if space == "polar" else IVOCT_PRESENTATION
    now = _dt.datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"OCTSEG_{__version__}"[:16]
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate, ds.InstanceCreationTime = (
        now.strftime("%Y%m%d"),
        now.strftime("%H%M%S"),
    )
    _patient_study_series(ds, now, series_description, patient_name, patient_id)
    _ivoct_image(ds, space, n, h, w, now)
    _acquisition(ds, space, w, pixel_spacing_mm)
    ds.SharedFunctionalGroupsSequence = Sequence(
        [_shared_groups(space, pixel_spacing_mm, frame_spacing_mm)]
    )
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        [_frame_groups(space, i, frame_spacing_mm, now) for i in range(n)]
    )
    _dimensions(ds)
    if space == "cartesian" and catheter_center is not None:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        block.add_new(_CENTER_ELEM, "DS", [f"{float(c):.6g}" for c in catheter_center])
    return ds


def _code(code: Any) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def _patient_study_series(
    ds: Dataset,
    now: _dt.datetime,
    series_description: str,
    patient_name: str | None,
    patient_id: str | None,
) -> None:
    """Patient (type 2: present, empty unless given), study, series, frame of reference,
    equipment, acquisition context and contrast (the flush) modules."""
    from pydicom.sr.codedict import codes

    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.PatientName = patient_name or ""
    ds.PatientID = patient_id or ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = date, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.Modality = "IVOCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = series_description
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "octseg"
    ds.ManufacturerModelName = "octseg synth"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = __version__
    ds.AcquisitionContextSequence = Sequence([])
    agent = _code(codes.RADLEX.NonIonicIodinatedContrastAgent)  # the flush (CID 12)
    agent.ContrastBolusAgentNumber = 1
    agent.ContrastBolusAdministrationRouteSequence = Sequence([_code(codes.SCT.IntracoronaryRoute)])
    agent.ContrastBolusIngredientCodeSequence = Sequence([])
    agent.ContrastBolusVolume = None
    agent.ContrastBolusIngredientConcentration = None
    ds.ContrastBolusAgentSequence = Sequence([agent])


def _ivoct_image(ds: Dataset, space: str, n: int, h: int, w: int, now: _dt.datetime) -> None:
    """Intravascular OCT Image module (pixel description set by the writer)."""
    ds.ImageType = IMAGE_TYPE
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.AcquisitionDuration = n / DEFAULT_ROTATION_HZ
    ds.AcquisitionNumber = 1
    ds.PresentationIntentType = "FOR PROCESSING" if space == "polar" else "FOR PRESENTATION"
    ds.VolumetricProperties = "DISTORTED"  # a pullback, not a uniform volume
    ds.PixelPresentation = "MONOCHROME"
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    if space == "cartesian":
        ds.PresentationLUTShape = "IDENTITY"
        ds.InterpolationType = "BILINEAR"  # of the scan conversion
    ds.Rows, ds.Columns = h, w
    ds.NumberOfFrames = n


def _acquisition(ds: Dataset, space: str, w: int, pixel_spacing_mm: float) -> None:
    """IVOCT Acquisition Parameters, Intravascular Image Acquisition Parameters and (polar)
    IVOCT Processing Parameters."""
    n_alines = ds.Rows if space == "polar" else DEFAULT_ALINES
    ds.OCTFocalDistance = None
    ds.BeamSpotSize = None
    ds.OCTAcquisitionDomain = "FREQUENCY"
    ds.OCTOpticalCenterWavelength = 1300.0
    ds.AxialResolution = 15.0
    ds.RangingDepth = float(w * pixel_spacing_mm)
    ds.ALinesPerFrame = n_alines
    ds.ALineRate = n_alines * DEFAULT_ROTATION_HZ
    # the frames' positions are recorded (Intravascular Longitudinal Distance), not a rate
    ds.IVUSAcquisition = "MEASURED"
    ds.CatheterDirectionOfRotation = "CW"
    ds.CatheterRotationalRate = DEFAULT_ROTATION_HZ
    ds.ModeOfPercutaneousAccessSequence = Sequence([])
    if space == "polar":
        ds.OCTZOffsetApplied = "NO"
        ds.EffectiveRefractiveIndex = 1.0  # pixel spacings are physical (already corrected)
        ds.RefractiveIndexApplied = "YES"
        ds.ALinePixelSpacing = pixel_spacing_mm
        ds.PixelIntensityRelationship = "LIN"
        ds.FirstALineLocation = 0.0


def _shared_groups(space: str, pixel_spacing_mm: float, frame_spacing_mm: float) -> Dataset:
    from pydicom.sr.codedict import codes

    shared = Dataset()
    if space == "cartesian":
        pm = Dataset()
        pm.PixelSpacing = [f"{pixel_spacing_mm:.10g}", f"{pixel_spacing_mm:.10g}"]
        pm.SliceThickness = f"{frame_spacing_mm:.10g}"
        shared.PixelMeasuresSequence = Sequence([pm])
    anatomy = Dataset()
    anatomy.AnatomicRegionSequence = Sequence([_code(codes.SCT.CoronaryArtery)])
    anatomy.FrameLaterality = "U"
    shared.FrameAnatomySequence = Sequence([anatomy])
    frame_type = Dataset()
    frame_type.FrameType = IMAGE_TYPE
    shared.IntravascularOCTFrameTypeSequence = Sequence([frame_type])
    return shared


def _frame_groups(space: str, i: int, frame_spacing_mm: float, start: _dt.datetime) -> Dataset:
    """Per-frame functional groups of frame ``i``: content (time, dimension index), position
    along the pullback and (polar) the OCT frame content."""
    item = Dataset()
    fc = Dataset()
    fc.DimensionIndexValues = [i + 1]
    fc.FrameAcquisitionNumber = i + 1
    when = (start + _dt.timedelta(seconds=i / DEFAULT_ROTATION_HZ)).strftime("%Y%m%d%H%M%S.%f")
    fc.FrameReferenceDateTime = fc.FrameAcquisitionDateTime = when
    fc.FrameAcquisitionDuration = 1000.0 / DEFAULT_ROTATION_HZ  # ms
    item.FrameContentSequence = Sequence([fc])
    ivfc = Dataset()
    ivfc.IntravascularLongitudinalDistance = float(i * frame_spacing_mm)
    if space == "cartesian":
        ivfc.SeamLineLocation = None
    item.IntravascularFrameContentSequence = Sequence([ivfc])
    if space == "polar":
        octfc = Dataset()
        octfc.OCTZOffsetCorrection = 0
        octfc.SeamLineIndex = 0
        octfc.NumberOfPaddedALines = 0
        item.IntravascularOCTFrameContentSequence = Sequence([octfc])
    return item


def _dimensions(ds: Dataset) -> None:
    dim_uid = generate_uid()
    org = Dataset()
    org.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = Sequence([org])
    idx = Dataset()
    idx.DimensionOrganizationUID = dim_uid
    idx.DimensionIndexPointer = 0x00520028
    idx.FunctionalGroupPointer = 0x00520027
    idx.DimensionDescriptionLabel = "Longitudinal distance"
    ds.DimensionIndexSequence = Sequence([idx])


# --------------------------------------------------------------------------------------- reader
