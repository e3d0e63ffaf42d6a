"""Predictions as DICOM Segmentation objects (highdicom), referencing their IVOCT source image.

IVOCT images have no patient coordinate system (no Plane Position/Orientation), and highdicom
needs one to build a multi-frame SEG. :func:`write_dicom_seg` therefore gives highdicom an
*in-memory copy* of the source header with a pullback-axis frame geometry added - orientation
``[1, 0, 0, 0, 1, 0]``, the pixel spacing, and each frame at ``z`` = its Intravascular
Longitudinal Distance (or ``frame * frame_spacing``). The source file is not modified. Every SEG
frame references its source frame (Derivation Image Sequence > Source Image Sequence >
Referenced Frame Number), which is what viewers use to overlay it. Cartesian (For Presentation)
and polar (For Processing) sources are handled alike: the SEG has the source's rows and columns.

Privacy: highdicom copies the patient and study modules from the source. Unless
``keep_patient=True`` the identifying attributes are emptied (type 2) or removed (type 3) before
writing; the study/series/frame-of-reference UIDs stay so that the SEG still refers to its source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from octseg import __version__, atomic
from octseg.classes import CLASS_NAMES
from octseg.errors import InputError, MissingSpacingError

# class name -> (category (code, meaning), type (code, meaning)), SNOMED CT
_SCT_CODES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "lumen": (("91723000", "Anatomical Structure"), ("113342003", "Lumen")),
    "calcium": (
        ("49755003", "Morphologically Altered Structure"),
        ("29483008", "Calcified atheromatous plaque"),
    ),
    "strut": (("260787004", "Physical object"), ("65818007", "Stent")),
    "guidewire": (("260787004", "Physical object"), ("272224001", "Guide Wire")),
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


def _class_table(class_names: Mapping[int, str] | Sequence[str]) -> dict[int, str]:
    table = dict(class_names) if isinstance(class_names, Mapping) else dict(enumerate(class_names))
    table = {int(k): str(v) for k, v in table.items() if int(k) != 0}  # 0 = background
    if not table:
        raise ValueError("class_names must name at least one non-background class")
    return dict(sorted(table.items()))


def _with_frame_geometry(src, pixel_spacing: float, frame_spacing: float):
    """Copy of the source header with a pullback-axis plane geometry (see module docstring)."""
    import copy

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    ds = copy.deepcopy(src)
    shared_seq = ds.get("SharedFunctionalGroupsSequence") or DicomSequence([Dataset()])
    shared = shared_seq[0]
    if "PlaneOrientationSequence" in shared and "PixelMeasuresSequence" in shared:
        return ds  # already has a coordinate system
    po = Dataset()
    po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = DicomSequence([po])
    pm = Dataset()
    pm.PixelSpacing = [f"{pixel_spacing:.10g}", f"{pixel_spacing:.10g}"]
    pm.SliceThickness = f"{frame_spacing:.10g}"
    shared.PixelMeasuresSequence = DicomSequence([pm])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    n = int(ds.get("NumberOfFrames", 1) or 1)
    per = ds.get("PerFrameFunctionalGroupsSequence") or DicomSequence([Dataset() for _ in range(n)])
    for i, item in enumerate(per):
        z = None
        for sub in item.get("IntravascularFrameContentSequence") or []:
            if "IntravascularLongitudinalDistance" in sub:
                z = float(sub.IntravascularLongitudinalDistance)
        pp = Dataset()
        pp.ImagePositionPatient = [0.0, 0.0, float(i * frame_spacing if z is None else z)]
        item.PlanePositionSequence = DicomSequence([pp])
    ds.PerFrameFunctionalGroupsSequence = per
    return ds


def anonymise(ds) -> None:
    """Empty/remove patient-identifying attributes in place (see module docstring)."""
    for kw in _PATIENT_TYPE2:
        if kw in ds:
            setattr(ds, kw, "")
    for kw in _PATIENT_REMOVE:
        if kw in ds:
            delattr(ds, kw)


def write_dicom_seg(
    path: str | Path,
    labels: np.ndarray,
    source_dicom_path: str | Path,
    class_names: Mapping[int, str] | Sequence[str] = CLASS_NAMES,
    *,
    frame_index: Sequence[int] | None = None,
    keep_patient: bool = False,
    series_description: str = "octseg segmentation",
    series_number: int = 900,
) -> None:
    """Write label maps ``(F, H, W)`` uint8 as a binary DICOM SEG referencing the source, atomically.

    ``class_names``: ``{class index: name}`` or a sequence indexed by class (index 0 is
    background and gets no segment). Each named class becomes one segment, numbered 1..k in class
    order. ``frame_index``: the source frame of each label map (sparse labels); default
    ``0..F-1``. Label values without a name raise ``ValueError``.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from octseg.io import read_pullback

    source_dicom_path = Path(source_dicom_path)
    try:
        pb = read_pullback(source_dicom_path, format="dicom")
        pixel_spacing, frame_spacing = pb.pixel_spacing_mm, pb.frame_spacing_mm
    except MissingSpacingError:
        pb, pixel_spacing, frame_spacing = None, 1.0, 1.0
    if pb is None:  # validate anyway with nominal spacing
        pb = read_pullback(
            source_dicom_path, format="dicom", pixel_spacing_mm=1.0, frame_spacing_mm=1.0
        )
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer (F, H, W), got {labels.dtype} {labels.shape}")
    if labels.shape[1:] != (pb.height, pb.width):
        raise InputError(
            source_dicom_path,
            f"label maps are {labels.shape[1]}x{labels.shape[2]} but the source frames are "
            f"{pb.height}x{pb.width}",
        )
    idx = np.arange(labels.shape[0]) if frame_index is None else np.asarray(frame_index, int)
    if idx.shape != (labels.shape[0],) or np.any(idx < 0) or np.any(idx >= pb.n_frames):
        raise InputError(
            source_dicom_path,
            f"frame_index must give one source frame (0..{pb.n_frames - 1}) per label map",
        )
    table = _class_table(class_names)
    present = set(np.unique(labels).tolist()) - {0}
    unnamed = sorted(present - set(table))
    if unnamed:
        raise ValueError(f"label values {unnamed} have no entry in class_names")
    lut = np.zeros(max(max(table), int(labels.max())) + 1, np.uint8)
    for seg_no, cls in enumerate(table, start=1):
        lut[cls] = seg_no
    seg_map = lut[labels]

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
    try:
        src = pydicom.dcmread(source_dicom_path, stop_before_pixels=True)
        geo = _with_frame_geometry(src, pixel_spacing, frame_spacing)
        positions = [
            hd.PlanePositionSequence(
                hd.CoordinateSystemNames.PATIENT,
                geo.PerFrameFunctionalGroupsSequence[int(i)]
                .PlanePositionSequence[0]
                .ImagePositionPatient,
            )
            for i in idx
        ]
        seg = hd.seg.Segmentation(
            source_images=[geo],
            pixel_array=seg_map,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="octseg",
            manufacturer_model_name="octseg",
            software_versions=__version__,
            device_serial_number="0",
            plane_positions=positions,
            series_description=series_description,
        )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InputError(
            source_dicom_path, f"cannot build a DICOM SEG ({type(exc).__name__}: {exc})"
        ) from None
    if not keep_patient:
        anonymise(seg)
    with atomic.atomic_path(path) as tmp:
        seg.save_as(tmp)


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
