"""DICOM Segmentation writer (highdicom): references its source, round-trips, no patient data."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicom_helpers import _labels, _source

from octseg.core.errors import InputError
from octseg.io.dicomseg import read_dicom_seg, write_dicom_seg


@pytest.mark.parametrize("space", ["polar", "cartesian"])
def test_seg_roundtrip_and_references(tmp_path, space):
    src = _source(tmp_path, space)
    out = tmp_path / "seg.dcm"
    lab = _labels()
    write_dicom_seg(out, lab, src)
    back, names = read_dicom_seg(out, 4)
    np.testing.assert_array_equal(back, lab)
    assert names == {1: "lumen", 2: "calcium", 3: "strut", 4: "guidewire"}
    seg = pydicom.dcmread(out)
    source = pydicom.dcmread(src, stop_before_pixels=True)
    assert seg.Modality == "SEG" and (seg.Rows, seg.Columns) == (16, 20)
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    refs = {
        (
            item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID,
            int(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber),
        )
        for item in seg.PerFrameFunctionalGroupsSequence
    }
    assert {uid for uid, _ in refs} == {source.SOPInstanceUID}
    assert {n for _, n in refs} == {1, 2, 3}  # frame 4 is empty, omitted
    # the source file is not modified
    assert "PlanePositionSequence" not in pydicom.dcmread(src).PerFrameFunctionalGroupsSequence[0]


def test_no_patient_identifiers_by_default(tmp_path):
    src = _source(tmp_path, "polar")
    ds = pydicom.dcmread(src)
    ds.PatientBirthDate, ds.AccessionNumber, ds.OtherPatientIDs = "19500101", "ACC-1", "OTHER-7"
    ds.save_as(src)
    out = tmp_path / "seg.dcm"
    write_dicom_seg(out, _labels(), src)
    raw = out.read_bytes()
    for secret in (b"Doe", b"PID-424242", b"19500101", b"ACC-1", b"OTHER-7"):
        assert secret not in raw
    kept = tmp_path / "kept.dcm"
    write_dicom_seg(kept, _labels(), src, keep_patient=True)
    seg = pydicom.dcmread(kept)
    assert str(seg.PatientName) == "Doe^Jane" and seg.PatientID == "PID-424242"


def test_sparse_frames_and_class_subset(tmp_path):
    src = _source(tmp_path, "cartesian")
    lab = _labels()[[1, 2]]
    lab[lab > 2] = 0
    out = tmp_path / "seg.dcm"
    write_dicom_seg(out, lab, src, {1: "lumen", 2: "calcium"}, frame_index=[1, 2])
    back, names = read_dicom_seg(out, 4)
    assert names == {1: "lumen", 2: "calcium"}
    np.testing.assert_array_equal(back[1:3], lab)
    assert back[0].max() == 0 and back[3].max() == 0


def test_seg_bad_input(tmp_path):
    src = _source(tmp_path, "polar")
    with pytest.raises(InputError, match="16x20"):
        write_dicom_seg(tmp_path / "s.dcm", np.zeros((4, 8, 8), np.uint8), src)
    with pytest.raises(ValueError, match=r"\[3, 4\]"):
        write_dicom_seg(tmp_path / "s.dcm", _labels(), src, ["background", "lumen", "calcium"])
    with pytest.raises(InputError, match="frame_index"):
        write_dicom_seg(tmp_path / "s.dcm", _labels(), src, frame_index=[0, 1, 2, 9])
    assert not (tmp_path / "s.dcm").exists()


def test_writing_a_seg_does_not_narrate_at_info(tmp_path, caplog):
    """highdicom's per-module INFO lines ("copy attributes of module ...") stay out of a run's
    console, where Hydra's root logger shows INFO; its warnings would still show."""
    import logging

    src = _source(tmp_path, "polar")
    with caplog.at_level(logging.INFO):
        write_dicom_seg(tmp_path / "seg.dcm", _labels(), src)
    assert not [r for r in caplog.records if r.name.startswith("highdicom")]
    assert logging.getLogger("highdicom").isEnabledFor(logging.WARNING)
