"""IVOCT DICOM writer and reader: SOP classes, photometrics, transfer syntaxes, spacing, errors."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from octseg.cli import main
from octseg.core.errors import InputError, MissingSpacingError
from octseg.io import read_pullback
from octseg.io.dicom import IVOCT_PRESENTATION, IVOCT_PROCESSING
from octseg.io.dicom_write import write_ivoct_dicom


def _smooth(n=3, h=24, w=32):
    """Smooth frames (JPEG-friendly) with distinct content per frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    f = [(40 + 150 * (0.5 + 0.5 * np.sin(xx / 5.0 + k) * np.cos(yy / 7.0))) for k in range(n)]
    return np.stack(f).round().astype(np.uint8)


@pytest.mark.parametrize("space", ["polar", "cartesian"])
@pytest.mark.parametrize("ts", ["explicit_le", "rle", "jpeg_baseline"])
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "RGB", "PALETTE COLOR"])
def test_write_read_roundtrip(tmp_path, space, ts, photometric):
    if photometric == "PALETTE COLOR" and ts == "jpeg_baseline":
        with pytest.raises(ValueError, match="lossily"):
            write_ivoct_dicom(
                tmp_path / "x.dcm", _smooth(), space=space, pixel_spacing_mm=0.01,
                frame_spacing_mm=0.2, transfer_syntax=ts, photometric=photometric,
            )  # fmt: skip
        return
    f = _smooth()
    p = tmp_path / "pullback.dcm"
    write_ivoct_dicom(
        p, f, space=space, pixel_spacing_mm=0.0125, frame_spacing_mm=0.2,
        transfer_syntax=ts, photometric=photometric,
    )  # fmt: skip
    ds = pydicom.dcmread(p)
    assert ds.SOPClassUID == (IVOCT_PROCESSING if space == "polar" else IVOCT_PRESENTATION)
    assert ds.Modality == "IVOCT" and ds.NumberOfFrames == 3
    pb = read_pullback(p)
    assert (pb.format, pb.space, pb.shape) == ("dicom", space, (3, 24, 32))
    assert pb.pixel_spacing_mm == pytest.approx(0.0125)
    assert pb.frame_spacing_mm == pytest.approx(0.2)
    err = np.abs(pb.read() * 255.0 - f)
    if ts == "jpeg_baseline":
        assert err.mean() < 2.0 and err.max() < 16  # lossy, quality 95
    elif photometric == "MONOCHROME2":
        assert err.max() < 1e-3  # exact
    else:
        assert err.max() <= 1.0  # through the sepia map and back: rounding only
    assert pb.metadata["transfer_syntax_uid"] == str(ds.file_meta.TransferSyntaxUID)
    # frame-by-frame access agrees with the whole read
    np.testing.assert_array_equal(pb.read(2, 3)[0], pb.read()[2])


def test_catheter_center_private_tag(tmp_path):
    p = tmp_path / "c.dcm"
    write_ivoct_dicom(
        p, _smooth(2), space="cartesian", pixel_spacing_mm=0.01, frame_spacing_mm=0.1,
        catheter_center=(10.5, 12.0),
    )  # fmt: skip
    assert read_pullback(p).catheter_center == (10.5, 12.0)
    write_ivoct_dicom(p, _smooth(2), space="cartesian", pixel_spacing_mm=0.01, frame_spacing_mm=0.1)
    assert read_pullback(p).catheter_center == (11.5, 15.5)


def _strip_spacing(p, *, keep_rate=False, keep_pixel=True):
    ds = pydicom.dcmread(p)
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.IntravascularFrameContentSequence
    if not keep_rate and "IVUSPullbackRate" in ds:
        del ds.IVUSPullbackRate
    if not keep_pixel:
        if "ALinePixelSpacing" in ds:
            del ds.ALinePixelSpacing
        ds.SharedFunctionalGroupsSequence = pydicom.Sequence([Dataset()])
    ds.save_as(p)


def test_frame_spacing_from_rates(tmp_path):
    p = tmp_path / "r.dcm"
    write_ivoct_dicom(p, _smooth(2), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.18)
    _strip_spacing(p, keep_rate=True)
    ds = pydicom.dcmread(p)
    ds.IVUSPullbackRate = "36"  # mm/s
    ds.CatheterRotationalRate = 180.0  # Hz -> 0.2 mm per frame
    ds.save_as(p)
    pb = read_pullback(p)
    assert pb.frame_spacing_mm == pytest.approx(0.2)
    assert "Pullback Rate" in pb.metadata["spacing_source"]["frame_spacing_mm"]


def test_frame_spacing_from_nonuniform_longitudinal_distance(tmp_path):
    p = tmp_path / "d.dcm"
    write_ivoct_dicom(p, _smooth(4), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.1)
    ds = pydicom.dcmread(p)
    for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):  # decreasing distances
        item.IntravascularFrameContentSequence[0].IntravascularLongitudinalDistance = (
            50.0 - 0.25 * i
        )
    ds.save_as(p)
    assert read_pullback(p).frame_spacing_mm == pytest.approx(0.25)


def test_missing_spacing_error_and_remedies(tmp_path):
    p = tmp_path / "m.dcm"
    write_ivoct_dicom(p, _smooth(2), space="cartesian", pixel_spacing_mm=0.01, frame_spacing_mm=0.1)
    _strip_spacing(p, keep_pixel=False)
    with pytest.raises(MissingSpacingError) as err:
        read_pullback(p)
    assert str(p) in str(err.value) and "spacing.json" in str(err.value)
    assert read_pullback(p, pixel_spacing_mm=0.02, frame_spacing_mm=0.3).pixel_spacing_mm == 0.02
    (tmp_path / "spacing.json").write_text(
        json.dumps({"pixel_spacing_mm": 0.015, "frame_spacing_mm": 0.25})
    )
    pb = read_pullback(p)
    assert (pb.pixel_spacing_mm, pb.frame_spacing_mm) == (0.015, 0.25)


@pytest.mark.parametrize("ts", ["explicit_le", "rle"])
@pytest.mark.parametrize("keep", [0.35, 0.9, 0.999])
def test_truncated_dicom_one_line_error(tmp_path, ts, keep):
    p = tmp_path / "t.dcm"
    write_ivoct_dicom(
        p, _smooth(3), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.1,
        transfer_syntax=ts,
    )  # fmt: skip
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError) as err:
        read_pullback(p).read()
    msg = str(err.value)
    assert msg.startswith(str(p)) and "\n" not in msg


def test_random_bytes_with_dcm_suffix(tmp_path):
    p = tmp_path / "noise.dcm"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError, match="not a DICOM file"):
        read_pullback(p)


def _ct_file(path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.zeros((4, 4), np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_other_sop_class_rejected(tmp_path):
    p = tmp_path / "ct.dcm"
    _ct_file(p)
    with pytest.raises(
        InputError, match=r"ct\.dcm: SOP class .*CT Image Storage.* not Intravascular"
    ):
        read_pullback(p)
    assert main(["inspect", str(p)]) == 1


def test_inspect_json_without_patient_identifiers(tmp_path, capsys):
    p = tmp_path / "named.dcm"
    write_ivoct_dicom(
        p, _smooth(2), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2,
        patient_name="Doe^Jane", patient_id="PID-987654",
    )  # fmt: skip
    ds = pydicom.dcmread(p)
    ds.PatientBirthDate, ds.AccessionNumber = "19600101", "ACC-55555"
    ds.InstitutionName = "St Example Hospital"
    ds.save_as(p)
    assert str(pydicom.dcmread(p).PatientName) == "Doe^Jane"
    assert main(["inspect", str(p), "--json"]) == 0
    out = capsys.readouterr().out
    info = json.loads(out)
    for key in ("format", "sop_class_uid", "space", "frames", "height", "width"):
        assert key in info
    assert info["sop_class_uid"] == IVOCT_PROCESSING and info["space"] == "polar"
    assert (info["frames"], info["height"], info["width"]) == (2, 24, 32)
    assert info["pixel_spacing_mm"] == 0.01 and info["frame_spacing_mm"] == pytest.approx(0.2)
    for secret in ("Doe", "Jane", "PID-987654", "19600101", "ACC-55555", "Example Hospital"):
        assert secret not in out
    assert main(["inspect", str(p)]) == 0
    text = capsys.readouterr().out
    assert "polar" in text and "Doe" not in text and "PID-987654" not in text


def test_lazy_reading_reads_only_requested_frames(tmp_path, monkeypatch):
    p = tmp_path / "lazy.dcm"
    write_ivoct_dicom(p, _smooth(6), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.1)
    pb = read_pullback(p)
    seen = []
    real = pydicom.pixels.iter_pixels

    def spy(src, **kw):
        seen.append(list(kw.get("indices")))
        return real(src, **kw)

    monkeypatch.setattr(pydicom.pixels, "iter_pixels", spy)
    assert pb.read(4, 6).shape == (2, 24, 32)
    assert seen == [[4, 5]]
