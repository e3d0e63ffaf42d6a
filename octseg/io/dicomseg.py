"""Predictions as DICOM Segmentation objects (highdicom), referencing their IVOCT source image.

IVOCT images have no patient coordinate system (no Plane Position/Orientation), and highdicom
needs one to build a multi-frame SEG. :func:`write_dicom_seg` therefore gives highdicom a
reduced *in-memory copy* of the source header with a pullback-axis frame geometry - orientation
``[1, 0, 0, 0, 1, 0]``, the pixel spacing, and each frame at ``z`` = its Intravascular
Longitudinal Distance (or ``frame * frame_spacing``). The source file is not modified. Every SEG
frame references its source frame (Derivation Image Sequence > Source Image Sequence >
Referenced Frame Number), which is what viewers use to overlay it. Label maps are given in
octseg's orientation (as :class:`~octseg.io.dicom.DicomReader` returns the frames); for polar
sources the seam roll, rotation direction and z offset the reader applied are undone, so that the
SEG pixels lie on the stored source pixels. Cartesian (For Presentation)
and polar (For Processing) sources are handled alike: the SEG has the source's rows and columns.

Spacing: the frame geometry needs the pixel and frame spacing. They come from the arguments
``pixel_spacing_mm``/``frame_spacing_mm`` (inference passes the pullback's), else from the source
file (or its ``spacing.json`` sidecar); where none gives them :class:`MissingSpacingError` is
raised - a spacing is never made up.

Privacy: highdicom copies the patient, study and equipment information of the source image it is
given. That image is therefore built from an *allowlist* (:data:`_SOURCE_ALLOWLIST`): the UIDs
that keep the SEG referring to its source (study, series, SOP instance, frame of reference), the
image size and pixel description and the frame geometry - nothing else. Patient and study
attributes of type 2 are present but empty; equipment, institution, station, requesting service
and dates of the source never reach highdicom. The Contributing Equipment Sequence of the SEG is
rebuilt with octseg's values only. ``keep_patient=True`` additionally copies the patient and study
modules (:data:`_PATIENT_TYPE2`, :data:`_PATIENT_REMOVE`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from octseg import __version__
from octseg.core import atomic
from octseg.core.classes import CLASS_NAMES, FIBROUS_CAP
from octseg.core.errors import InputError
from octseg.io import segstream

# highdicom narrates every module it copies at INFO ("copy attributes of module ..."), which
# Hydra's INFO root logger printed into every infer.py run: its warnings and errors still show.
logging.getLogger("highdicom").setLevel(logging.WARNING)

# class name -> (category (code, meaning), type (code, meaning)), SNOMED CT
_SCT_CODES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "lumen": (("91723000", "Anatomical Structure"), ("113342003", "Lumen")),
    "calcium": (
        ("49755003", "Morphologically Altered Structure"),
        ("29483008", "Calcified atheromatous plaque"),
    ),
    "strut": (("260787004", "Physical object"), ("65818007", "Stent")),
    "guidewire": (("260787004", "Physical object"), ("272224001", "Guide Wire")),
    # plaque (classes 5/6): the DICOM code list (PS3.16) has no "fibrous cap" concept; the
    # closest listed structure is used, the segment label says "fibrous_cap"
    "fibrous_cap": (
        ("49755003", "Morphologically Altered Structure"),
        ("20717008", "Atherosclerotic fibrous plaque"),
    ),
    "lipid": (("91720002", "Body Substance"), ("70106000", "Lipid")),
}
_DEFAULT_CODE = (("91723000", "Anatomical Structure"), ("85756007", "Body tissue structure"))

# emptied (type 2) where present, else removed
_PATIENT_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "StudyDate",
    "StudyTime",
)
_PATIENT_REMOVE = (
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientBirthTime",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "PatientComments",
    "EthnicGroup",
    "MedicalRecordLocator",
    "StudyDescription",
    "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy",
    "AdmittingDiagnosesDescription",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "OperatorsName",
    "PerformingPhysicianName",
    "RequestingPhysician",
    "ClinicalTrialSponsorName",
    "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "RequestAttributesSequence",
)


# copied from the source when building the image handed to highdicom (see module docstring)
_SOURCE_ALLOWLIST = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)
# left out by the allowlist but removed from the SEG too, should a later highdicom add them
_SITE_REMOVE = (
    "StationName",
    "RequestingService",
    "RequestingServiceCodeSequence",
    "InstitutionCodeSequence",
    "InstitutionalDepartmentTypeCodeSequence",
)


def _class_table(class_names: Mapping[int, str] | Sequence[str]) -> dict[int, str]:
    table = dict(class_names) if isinstance(class_names, Mapping) else dict(enumerate(class_names))
    table = {int(k): str(v) for k, v in table.items() if int(k) != 0}  # 0 = background
    if not table:
        raise ValueError("class_names must name at least one non-background class")
    return dict(sorted(table.items()))


def _source_for_highdicom(src, pixel_spacing: float, frame_spacing: float, keep_patient: bool):
    """The source image as highdicom sees it: allowlisted attributes of ``src`` (plus the patient
    and study modules with ``keep_patient``) and a pullback-axis plane geometry (see the module
    docstring). ``src`` is not modified."""
    from pydicom.sequence import Sequence as DicomSequence

    ds = _allowlisted(src, keep_patient)
    shared = _shared_geometry(src, pixel_spacing, frame_spacing)
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(_frame_positions(src, frame_spacing))
    return ds


def _allowlisted(src, keep_patient: bool):
    """A new dataset with the allowlisted file meta and attributes of ``src``, the type-2
    patient and study attributes empty (copied from ``src`` with ``keep_patient``)."""
    import copy

    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    meta = FileMetaDataset()
    for kw in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"):
        if kw in src.file_meta:
            setattr(meta, kw, src.file_meta[kw].value)
    ds.file_meta = meta
    for kw in _SOURCE_ALLOWLIST:
        if kw in src:
            ds[kw] = copy.deepcopy(src[kw])
    for kw in _PATIENT_TYPE2:
        setattr(ds, kw, "")
    if keep_patient:
        for kw in _PATIENT_TYPE2 + _PATIENT_REMOVE:
            if kw in src:
                ds[kw] = copy.deepcopy(src[kw])
    return ds


def _shared_geometry(src, pixel_spacing: float, frame_spacing: float):
    """Shared plane orientation and pixel measures: the source's own where it has both, else
    orientation ``[1, 0, 0, 0, 1, 0]`` and the given spacing."""
    import copy

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    src_shared = (src.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    shared = Dataset()
    if "PlaneOrientationSequence" in src_shared and "PixelMeasuresSequence" in src_shared:
        shared.PlaneOrientationSequence = copy.deepcopy(src_shared.PlaneOrientationSequence)
        shared.PixelMeasuresSequence = copy.deepcopy(src_shared.PixelMeasuresSequence)
        return shared
    po = Dataset()
    po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = DicomSequence([po])
    pm = Dataset()
    pm.PixelSpacing = [f"{pixel_spacing:.10g}", f"{pixel_spacing:.10g}"]
    pm.SliceThickness = f"{frame_spacing:.10g}"
    shared.PixelMeasuresSequence = DicomSequence([pm])
    return shared


def _frame_positions(src, frame_spacing: float) -> list:
    """One per-frame group per source frame with its plane position: the source's own, else
    ``z`` = its Intravascular Longitudinal Distance (or ``frame * frame_spacing``)."""
    import copy

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    from octseg.io.dicom import longitudinal_distances

    n = int(src.get("NumberOfFrames", 1) or 1)
    src_per = list(src.get("PerFrameFunctionalGroupsSequence") or [])
    z = longitudinal_distances(src)
    per = []
    for i in range(n):
        item = Dataset()
        if i < len(src_per) and "PlanePositionSequence" in src_per[i]:
            item.PlanePositionSequence = copy.deepcopy(src_per[i].PlanePositionSequence)
        else:
            pp = Dataset()
            zi = float(z[i]) if z is not None and i < len(z) else i * frame_spacing
            pp.ImagePositionPatient = [0.0, 0.0, zi]
            item.PlanePositionSequence = DicomSequence([pp])
        per.append(item)
    return per


def _values(labels: np.ndarray, chunk: int = 32) -> set[int]:
    """The label values present, frame chunk by chunk (``np.unique`` of a whole pullback
    would sort a copy of it)."""
    found: set[int] = set()
    for a in range(0, labels.shape[0], chunk):
        found |= set(np.unique(labels[a : a + chunk]).tolist())
    return found


def _segment_map(labels: np.ndarray, lut: np.ndarray, present: set, orient, idx) -> np.ndarray:
    """Segment numbers on the stored pixel grid. ``labels`` itself where neither the class ->
    segment numbering nor the polar orientation changes anything (no copy of a pullback's
    labels); else one new array filled frame by frame."""
    identity = all(int(lut[c]) == c for c in present)
    moved = orient is not None and (
        orient.reverse or np.any(orient.roll[np.asarray(idx)] if orient.roll.size else 0)
        or np.any(orient.zshift[np.asarray(idx)] if orient.zshift.size else 0)
    )  # fmt: skip
    if identity and not moved:
        return labels if labels.dtype == np.uint8 else labels.astype(np.uint8)
    out = np.empty(labels.shape, np.uint8)
    for k, i in enumerate(idx):
        frame = lut[labels[k]]
        out[k] = orient.undo(frame, int(i)) if moved else frame
    return out


def _octseg_equipment():
    """The SEG's Contributing Equipment Sequence: octseg (and the highdicom it used) only."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return [
        hd.ContributingEquipment(
            manufacturer="octseg",
            purpose_of_reference=codes.DCM.ProcessingEquipment,
            manufacturer_model_name="octseg",
            software_versions=[__version__, f"highdicom {hd.__version__}"],
            contribution_description="Automatic segmentation by octseg",
        )
    ]


def anonymise(ds) -> None:
    """Empty/remove patient-identifying attributes in place (see module docstring)."""
    for kw in _PATIENT_TYPE2:
        if kw in ds:
            setattr(ds, kw, "")
    for kw in _PATIENT_REMOVE + _SITE_REMOVE:
        if kw in ds:
            delattr(ds, kw)


def write_dicom_seg(
    path: str | Path,
    labels: np.ndarray,
    source_dicom_path: str | Path,
    class_names: Mapping[int, str] | Sequence[str] | None = None,
    *,
    frame_index: Sequence[int] | None = None,
    pixel_spacing_mm: float | None = None,
    frame_spacing_mm: float | None = None,
    keep_patient: bool = False,
    series_description: str = "octseg segmentation",
    series_number: int = 900,
    streamed: bool = True,
) -> None:
    """Write label maps ``(F, H, W)`` uint8 as a binary DICOM SEG referencing the source, atomically.

    ``class_names``: ``{class index: name}`` or a sequence indexed by class (index 0 is
    background and gets no segment). Each named class becomes one segment, numbered 1..k in class
    order; default: classes 1-4 of :mod:`octseg.core.classes` plus the plaque classes (5, 6) that
    occur in ``labels``. ``frame_index``: the source frame of each label map (sparse labels); default
    ``0..F-1``. Label values without a name raise ``ValueError``. ``pixel_spacing_mm`` /
    ``frame_spacing_mm`` override the source's spacing (needed where the source records none:
    :class:`~octseg.core.errors.MissingSpacingError` otherwise). ``streamed`` (default): frames
    written chunk by chunk (:mod:`octseg.io.segstream`, bounded memory); ``False``: the whole SEG
    built by highdicom in memory (~2.2x the label maps on top of them), the reference the
    streamed file is tested against.
    """
    from octseg.io import read_pullback

    source_dicom_path = Path(source_dicom_path)
    pb = read_pullback(  # MissingSpacingError (naming the file) where no spacing is known
        source_dicom_path,
        format="dicom",
        pixel_spacing_mm=pixel_spacing_mm,
        frame_spacing_mm=frame_spacing_mm,
    )
    labels, idx = _checked_labels(labels, frame_index, pb, source_dicom_path)
    found = _values(labels)
    if class_names is None:  # the original five classes, plus the plaque classes present
        class_names = {c: n for c, n in CLASS_NAMES.items() if c < FIBROUS_CAP or c in found}
    table, lut = _segment_numbers(class_names, found, labels)
    orient = None
    if pb.space == "polar":  # back onto the stored A-line order (seam, rotation, z offset)
        from octseg.io.dicom import read_orientation

        orient = read_orientation(source_dicom_path)
    seg_map = _segment_map(labels, lut, found - {0}, orient, idx)
    descriptions = _segment_descriptions(table)
    try:
        positions = _plane_positions(source_dicom_path, pb, keep_patient, idx)
        tmpl = segstream.template_frames(len(idx)) if streamed else list(range(len(idx)))
        seg = _segmentation(
            positions.geo,
            seg_map[tmpl] if streamed else seg_map,
            descriptions,
            [positions.items[k] for k in tmpl],
            series_number=series_number,
            series_description=series_description,
            omit_empty_frames=not streamed,
        )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InputError(
            source_dicom_path, f"cannot build a DICOM SEG ({type(exc).__name__}: {exc})"
        ) from None
    if not keep_patient:
        anonymise(seg)
    with atomic.atomic_path(path) as tmp:
        if streamed:
            segstream.write_streamed(Path(tmp), seg, seg_map, idx, positions.items, tmpl)
        else:
            seg.save_as(tmp)


def _checked_labels(
    labels: np.ndarray, frame_index: Sequence[int] | None, pb, source: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Label maps as integer ``(F, H, W)`` of the source's frame size and the source frame of
    each (``frame_index``, default ``0..F-1``); ``ValueError`` / ``InputError`` otherwise."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer (F, H, W), got {labels.dtype} {labels.shape}")
    if labels.shape[1:] != (pb.height, pb.width):
        raise InputError(
            source,
            f"label maps are {labels.shape[1]}x{labels.shape[2]} but the source frames are "
            f"{pb.height}x{pb.width}",
        )
    idx = np.arange(labels.shape[0]) if frame_index is None else np.asarray(frame_index, int)
    if idx.shape != (labels.shape[0],) or np.any(idx < 0) or np.any(idx >= pb.n_frames):
        raise InputError(
            source, f"frame_index must give one source frame (0..{pb.n_frames - 1}) per label map"
        )
    return labels, idx


def _segment_numbers(
    class_names: Mapping[int, str] | Sequence[str], found: set[int], labels: np.ndarray
) -> tuple[dict[int, str], np.ndarray]:
    """``{class: name}`` of the segments (numbered 1..k in class order) and the class -> segment
    number lookup table; ``ValueError`` for label values without a name."""
    table = _class_table(class_names)
    unnamed = sorted((found - {0}) - set(table))
    if unnamed:
        raise ValueError(f"label values {unnamed} have no entry in class_names")
    lut = np.zeros(max(max(table), int(labels.max())) + 1, np.uint8)
    for seg_no, cls in enumerate(table, start=1):
        lut[cls] = seg_no
    return table, lut


def _segment_descriptions(table: Mapping[int, str]) -> list:
    """One highdicom segment description per named class (SNOMED codes of :data:`_SCT_CODES`)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algo = hd.AlgorithmIdentificationSequence(
        name="octseg", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = []
    for seg_no, (cls, name) in enumerate(table.items(), start=1):
        (cat_code, cat_meaning), (typ_code, typ_meaning) = _SCT_CODES.get(name, _DEFAULT_CODE)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=seg_no,
                segment_label=name,
                segmented_property_category=hd.sr.CodedConcept(cat_code, "SCT", cat_meaning),
                segmented_property_type=hd.sr.CodedConcept(typ_code, "SCT", typ_meaning),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algo,
                tracking_id=f"class {cls}",
                tracking_uid=hd.UID(),
            )
        )
    return descriptions


class _Positions(NamedTuple):
    geo: Any  # the source image as highdicom sees it (:func:`_source_for_highdicom`)
    items: list  # highdicom plane positions of the labelled frames, in label order


def _plane_positions(source: Path, pb, keep_patient: bool, idx: np.ndarray) -> _Positions:
    """The source header given to highdicom and the plane position of each labelled frame."""
    import highdicom as hd
    import pydicom

    src = pydicom.dcmread(source, stop_before_pixels=True)
    geo = _source_for_highdicom(src, pb.pixel_spacing_mm, pb.frame_spacing_mm, keep_patient)
    items = [
        hd.PlanePositionSequence(
            hd.CoordinateSystemNames.PATIENT,
            geo.PerFrameFunctionalGroupsSequence[int(i)]
            .PlanePositionSequence[0]
            .ImagePositionPatient,
        )
        for i in idx
    ]
    return _Positions(geo, items)


def _segmentation(
    geo, pixel_array: np.ndarray, descriptions: list, plane_positions: list, **kwargs: Any
):
    """The highdicom binary Segmentation (octseg as manufacturer and contributing equipment)."""
    import highdicom as hd

    seg = hd.seg.Segmentation(
        source_images=[geo],
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="octseg",
        manufacturer_model_name="octseg",
        software_versions=__version__,
        device_serial_number="0",
        plane_positions=plane_positions,
        **kwargs,
    )
    seg.ContributingEquipmentSequence = _octseg_equipment()
    return seg


def read_dicom_seg(path: str | Path, n_source_frames: int) -> tuple[np.ndarray, dict[int, str]]:
    """Read a SEG written by :func:`write_dicom_seg` back into a label map per source frame.

    Returns ``(labels (n_source_frames, H, W) uint8, {segment number: segment label})`` with the
    segment numbers as label values (frames without a SEG frame are 0).
    """
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise InputError(path, f"not a readable DICOM SEG ({type(exc).__name__}: {exc})") from None
    names = {int(d.SegmentNumber): str(d.SegmentLabel) for d in seg.SegmentSequence}
    first = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
    source_uid = first.SourceImageSequence[0].ReferencedSOPInstanceUID
    px = seg.get_pixels_by_source_frame(
        source_sop_instance_uid=source_uid,
        source_frame_numbers=list(range(1, n_source_frames + 1)),
        combine_segments=True,
        assert_missing_frames_are_empty=True,
    )
    return px.astype(np.uint8), names
