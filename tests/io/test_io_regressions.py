"""Regression tests for reviewed defects in octseg.io.labels, octseg.core.atomic and octseg.io."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from octseg.core.errors import InputError, SchemaError
from octseg.io import read_pullback
from octseg.io.dataset import verify_dataset
from octseg.io.labels import LabelFile, load_labels, save_labels
from octseg.io.npzimage import write_npz_image


def _corrupt_deflate(path: Path, member: str) -> None:
    """Make the deflate stream of ``member`` invalid (reserved block type) without touching the
    zip directory, so that decoding raises ``zlib.error``."""
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo(member).header_offset
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[offset + 26 : offset + 30])
    start = offset + 30 + name_len + extra_len
    data[start] = 0xFF  # BFINAL=1, BTYPE=11: "invalid block type"
    path.write_bytes(bytes(data))


def _make(folder: Path, n: int = 4, h: int = 8, w: int = 6) -> None:
    folder.mkdir(parents=True)
    f = np.random.default_rng(0).integers(0, 256, (n, h, w), dtype=np.uint8)
    write_npz_image(
        folder / "image.npz", f, space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2
    )
    lab = np.zeros((n, h, w), np.uint8)
    lab[:, :, :2] = 1
    save_labels(folder / "labels.npz", LabelFile(lab, "polar", 0.01, 0.2))


# --- defect 3: corrupt deflate streams ---------------------------------------------------------


def test_corrupt_deflate_label_file_is_a_schema_error(tmp_path):
    _make(tmp_path / "p")
    p = tmp_path / "p" / "labels.npz"
    _corrupt_deflate(p, "labels.npy")
    with pytest.raises(SchemaError, match=r"labels\.npz.*not a readable"):
        load_labels(p)


def test_corrupt_deflate_image_is_an_input_error(tmp_path):
    _make(tmp_path / "p")
    p = tmp_path / "p" / "image.npz"
    _corrupt_deflate(p, "frames.npy")
    with pytest.raises(InputError, match=r"image\.npz.*not a readable"):
        read_pullback(p)


def test_verify_reports_corrupt_files_and_keeps_going(tmp_path, monkeypatch, capsys):
    from octseg.cli import main

    _make(tmp_path / "a_badlabels")
    _corrupt_deflate(tmp_path / "a_badlabels" / "labels.npz", "labels.npy")
    _make(tmp_path / "b_badimage")
    _corrupt_deflate(tmp_path / "b_badimage" / "image.npz", "frames.npy")
    _make(tmp_path / "c_decoder")
    _make(tmp_path / "d_ok")
    _make(tmp_path / "e_ok")
    (tmp_path / "e_ok" / "labels.npz").unlink()  # a later problem must still be found

    import octseg.io

    real = octseg.io.read_pullback

    def flaky(path, **kw):  # a third-party decoder failing with its own exception type
        if "c_decoder" in str(path):
            raise RuntimeError("decoder exploded")
        return real(path, **kw)

    monkeypatch.setattr(octseg.io, "read_pullback", flaky)
    problems = verify_dataset(tmp_path)
    text = "\n".join(problems)
    assert any("a_badlabels/labels.npz" in p and "not a readable" in p for p in problems), text
    assert any("b_badimage/image.npz" in p and "not a readable" in p for p in problems), text
    assert f"{tmp_path / 'c_decoder' / 'image.npz'}: RuntimeError: decoder exploded" in problems
    assert any("e_ok/labels.npz" in p and "missing label file" in p for p in problems), text
    assert not any("d_ok" in p for p in problems), text
    assert main(["verify", str(tmp_path)]) == 1
    assert "e_ok" in capsys.readouterr().out


# --- defect 9: malformed schema_version ----------------------------------------------------------


@pytest.mark.parametrize("version", [np.array("one"), np.array([1, 2])])
def test_malformed_schema_version_is_a_schema_error(tmp_path, version):
    p = tmp_path / "labels.npz"
    np.savez_compressed(
        p,
        labels=np.zeros((1, 4, 4), np.uint8),
        space=np.array("polar"),
        pixel_spacing_mm=0.01,
        frame_spacing_mm=0.2,
        schema_version=version,
    )
    with pytest.raises(SchemaError, match=r"labels\.npz.*schema_version"):
        load_labels(p)


# --- defect 8: multi-page TIFF read through one open file ---------------------------------------


def test_multipage_tiff_opens_the_file_once_per_chunk(tmp_path, monkeypatch):
    import tifffile

    frames = np.random.default_rng(1).integers(0, 65535, (40, 6, 5), dtype=np.uint16)
    p = tmp_path / "stack.tif"
    tifffile.imwrite(p, frames, photometric="minisblack")
    pb = read_pullback(p, pixel_spacing_mm=0.01, frame_spacing_mm=0.1)
    opened = []
    real = tifffile.TiffFile

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **kw):
            opened.append(a[0])
            super().__init__(*a, **kw)

    monkeypatch.setattr(tifffile, "TiffFile", Counting)
    got = pb.read(0, 40)
    np.testing.assert_allclose(got, frames / 65535.0, rtol=1e-6)
    assert len(opened) == 1
    np.testing.assert_allclose(pb.read(17, 23), frames[17:23] / 65535.0, rtol=1e-6)
    assert len(opened) == 2


def test_multipage_tiff_pillow_fallback(tmp_path, monkeypatch):
    """Without imagecodecs tifffile cannot decode LZW; the reader falls back to Pillow."""
    import tifffile
    from PIL import Image

    frames = np.random.default_rng(2).integers(0, 255, (5, 6, 5), dtype=np.uint8)
    p = tmp_path / "lzw.tif"
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(p, save_all=True, append_images=ims[1:], compression="tiff_lzw")

    def no_codecs(self, *a, **kw):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_codecs)
    pb = read_pullback(p, pixel_spacing_mm=0.01, frame_spacing_mm=0.1)
    np.testing.assert_allclose(pb.read(1, 4), frames[1:4] / 255.0, rtol=1e-6)


# --- duplication (c): the stack reader's layout comes from spacing.py ----------------------------


def test_stack_layout_uses_the_shared_sidecar_reader(tmp_path, monkeypatch):
    import tifffile

    import octseg.io.spacing as spacing

    p = tmp_path / "stack.tif"
    tifffile.imwrite(p, np.zeros((2, 6, 5), np.uint8), photometric="minisblack")
    (tmp_path / "spacing.json").write_text(
        json.dumps({"pixel_spacing_mm": 0.01, "frame_spacing_mm": 0.2, "catheter_center": [2, 3]})
    )
    calls = []
    real = spacing._sidecar_json
    monkeypatch.setattr(spacing, "_sidecar_json", lambda s: calls.append(s) or real(s))
    pb = read_pullback(p)
    assert pb.catheter_center == (2.0, 3.0) and pb.space == "cartesian"
    assert len(calls) == 2  # spacing and layout, both through spacing.py
    (tmp_path / "spacing.json").write_text(
        json.dumps({"pixel_spacing_mm": 0.01, "frame_spacing_mm": 0.2, "catheter_center": "x"})
    )
    with pytest.raises(InputError, match=r"spacing\.json.*catheter_center"):
        read_pullback(p)


# --- DICOM helpers -------------------------------------------------------------------------------


def _dicom(tmp_path: Path, frames: np.ndarray, space: str = "polar", name: str = "src.dcm") -> Path:
    from octseg.io.dicom_write import write_ivoct_dicom

    p = tmp_path / name
    write_ivoct_dicom(p, frames, space=space, pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    return p


def _edit(path: Path, fn) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    fn(ds)
    ds.save_as(path)


# --- defect 7: photometric error names the file --------------------------------------------------


def test_unsupported_photometric_names_the_file(tmp_path):
    p = _dicom(tmp_path, np.zeros((2, 8, 6), np.uint8))
    _edit(p, lambda ds: setattr(ds, "PhotometricInterpretation", "HSV"))
    with pytest.raises(InputError, match=r"src\.dcm: unsupported photometric.*HSV"):
        read_pullback(p).read(0, 1)


# --- defect 10: seam line, direction of rotation, z offset ---------------------------------------


def _set_frame_content(ds, **values) -> None:
    for item in ds.PerFrameFunctionalGroupsSequence:
        for kw, v in values.items():
            setattr(item.IntravascularOCTFrameContentSequence[0], kw, v)


def test_polar_seam_line_and_counter_clockwise_rotation(tmp_path):
    h, w = 16, 6
    stored = np.zeros((2, h, w), np.uint8)
    stored[:, 5, :] = 200  # a bright A-line at stored row 5
    p = _dicom(tmp_path, stored)

    # seam line (stored row 2) belongs at 90 degrees = row 4; rows roll by +2: A-line 5 -> 7;
    # counter-clockwise acquisition: clockwise angle of row 7 is row -7 mod 16 = 9 (202.5 deg)
    def edit(ds):
        ds.CatheterDirectionOfRotation = "CC"
        _set_frame_content(ds, SeamLineIndex=2, SeamLineLocation=90.0)

    _edit(p, edit)
    pb = read_pullback(p)
    got = pb.read(0, 2)
    assert [int(np.argmax(f[:, 0])) for f in got] == [9, 9]
    assert pb.metadata["orientation"] == {
        "catheter_direction": "CC",
        "seam_roll_rows": 2,
        "z_offset_shift_px": 0,
    }

    # clockwise, no seam location: row 0 lies at First A-line Location (45 deg = row 2)
    p2 = _dicom(tmp_path, stored, name="cw.dcm")

    def edit2(ds):
        ds.CatheterDirectionOfRotation = "CW"
        _set_frame_content(ds, SeamLineIndex=0, FirstALineLocation=45.0)

    _edit(p2, edit2)
    assert int(np.argmax(read_pullback(p2).read(0, 1)[0, :, 0])) == 7


def test_polar_z_offset_applied_or_refused(tmp_path):
    h, w = 8, 10
    stored = np.zeros((2, h, w), np.uint8)
    stored[:, :, 4] = 255  # a bright ring at depth sample 4
    p = _dicom(tmp_path, stored)

    def edit(ds):
        ds.OCTZOffsetApplied = "NO"
        ds.PerFrameFunctionalGroupsSequence[0].IntravascularOCTFrameContentSequence[
            0
        ].OCTZOffsetCorrection = 3
        ds.PerFrameFunctionalGroupsSequence[1].IntravascularOCTFrameContentSequence[
            0
        ].OCTZOffsetCorrection = -2

    _edit(p, edit)
    got = read_pullback(p).read(0, 2)
    assert int(np.argmax(got[0, 0])) == 7 and int(np.argmax(got[1, 0])) == 2
    assert got[0, :, :3].max() == 0  # vacated samples are empty

    _edit(p, lambda ds: setattr(ds, "OCTZOffsetApplied", "YES"))  # already applied: untouched
    assert int(np.argmax(read_pullback(p).read(0, 1)[0, 0])) == 4

    _edit(p, lambda ds: delattr(ds, "OCTZOffsetApplied"))
    with pytest.raises(InputError, match=r"src\.dcm.*OCT Z Offset Applied.*missing"):
        read_pullback(p)

    c = _dicom(tmp_path, np.zeros((2, 8, 8), np.uint8), space="cartesian", name="cart.dcm")

    def edit_c(ds):
        ds.OCTZOffsetApplied = "NO"
        ds.OCTZOffsetCorrection = 5

    _edit(c, edit_c)
    with pytest.raises(InputError, match=r"cart\.dcm.*z-offset not applied"):
        read_pullback(c)


# --- defects 4, 5 and duplication (d): DICOM SEG ------------------------------------------------


def test_seg_leaks_no_site_or_acquisition_identifiers(tmp_path):
    import pydicom
    from pydicom.dataset import Dataset

    from octseg.io.dicomseg import read_dicom_seg, write_dicom_seg

    lab = np.zeros((3, 8, 6), np.uint8)
    lab[:, 2:5, 1:4] = 1
    p = _dicom(tmp_path, np.zeros((3, 8, 6), np.uint8))

    def edit(ds):
        ds.InstitutionName = "St Secret Hospital"
        ds.InstitutionAddress = "1 Hidden Road"
        ds.InstitutionalDepartmentName = "Cath Lab Nine"
        ds.StationName = "CATHLAB-STN-7"
        ds.DeviceSerialNumber = "SN-998877"
        ds.Manufacturer = "AcmeOCT"
        ds.RequestingService = "Cardiology-Req-Svc"
        ds.OperatorsName = "Operator^Olga"
        ds.AcquisitionDateTime = "20190304050607"
        ds.StudyDescription = "Study of Doe"
        eq = Dataset()
        eq.Manufacturer = "AcmeOCT"
        eq.InstitutionName = "St Secret Hospital"
        eq.InstitutionAddress = "1 Hidden Road"
        eq.StationName = "CATHLAB-STN-7"
        eq.DeviceSerialNumber = "SN-998877"
        eq.ContributionDateTime = "20190304050607"
        ds.ContributingEquipmentSequence = [eq]

    _edit(p, edit)
    out = tmp_path / "seg.dcm"
    write_dicom_seg(out, lab, p)
    raw = out.read_bytes()
    for secret in (
        b"Secret",
        b"Hidden Road",
        b"Cath Lab Nine",
        b"CATHLAB-STN-7",
        b"SN-998877",
        b"AcmeOCT",
        b"Cardiology-Req-Svc",
        b"Olga",
        b"20190304",
        b"Study of Doe",
    ):
        assert secret not in raw, secret
    seg = pydicom.dcmread(out)
    assert [e.Manufacturer for e in seg.ContributingEquipmentSequence] == ["octseg"]
    back, _ = read_dicom_seg(out, 3)
    np.testing.assert_array_equal(back, lab)


def _seg_z(seg) -> list[float]:
    """z of each SEG frame, in source frame order."""
    by_frame = {}
    for item in seg.PerFrameFunctionalGroupsSequence:
        src = item.DerivationImageSequence[0].SourceImageSequence[0]
        z = float(item.PlanePositionSequence[0].ImagePositionPatient[2])
        by_frame[int(src.ReferencedFrameNumber)] = z
    return [by_frame[k] for k in sorted(by_frame)]


def test_seg_spacing_from_arguments_never_made_up(tmp_path):
    import pydicom

    from octseg.core.errors import MissingSpacingError
    from octseg.io.dicomseg import write_dicom_seg

    lab = np.zeros((3, 8, 6), np.uint8)
    lab[:, 2:5, 1:4] = 1
    p = _dicom(tmp_path, np.zeros((3, 8, 6), np.uint8))

    def strip(ds):
        del ds.ALinePixelSpacing
        if "IVUSPullbackRate" in ds:
            del ds.IVUSPullbackRate
        for item in ds.PerFrameFunctionalGroupsSequence:
            del item.IntravascularFrameContentSequence

    _edit(p, strip)
    with pytest.raises(MissingSpacingError, match=r"src\.dcm"):
        write_dicom_seg(tmp_path / "seg.dcm", lab, p)
    assert not (tmp_path / "seg.dcm").exists()
    write_dicom_seg(tmp_path / "seg.dcm", lab, p, pixel_spacing_mm=0.025, frame_spacing_mm=0.4)
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    pm = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in pm.PixelSpacing] == [0.025, 0.025]
    z = _seg_z(seg)
    assert z == pytest.approx([0.0, 0.4, 0.8])


def test_seg_frame_positions_use_the_shared_longitudinal_distances(tmp_path):
    import pydicom

    from octseg.io.dicom import longitudinal_distances, longitudinal_spacing
    from octseg.io.dicomseg import write_dicom_seg

    lab = np.zeros((3, 8, 6), np.uint8)
    lab[:, 2:5, 1:4] = 1
    p = _dicom(tmp_path, np.zeros((3, 8, 6), np.uint8))
    dist = [1.0, 1.25, 1.5]

    def move(ds):  # distances only in the OCT frame content sequence
        for item, d in zip(ds.PerFrameFunctionalGroupsSequence, dist):
            del item.IntravascularFrameContentSequence
            item.IntravascularOCTFrameContentSequence[0].IntravascularLongitudinalDistance = d

    _edit(p, move)
    ds = pydicom.dcmread(p, stop_before_pixels=True)
    assert longitudinal_distances(ds).tolist() == dist
    assert longitudinal_spacing(ds) == pytest.approx(0.25)
    write_dicom_seg(tmp_path / "seg.dcm", lab, p)
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    z = _seg_z(seg)
    assert z == pytest.approx(dist)


def test_seg_of_a_reoriented_polar_source_lies_on_the_stored_pixels(tmp_path):
    from octseg.io.dicomseg import read_dicom_seg, write_dicom_seg

    stored = np.zeros((2, 16, 6), np.uint8)
    stored[:, 5, :] = 200
    p = _dicom(tmp_path, stored)

    def edit(ds):
        ds.CatheterDirectionOfRotation = "CC"
        ds.OCTZOffsetApplied = "NO"
        _set_frame_content(ds, SeamLineIndex=2, SeamLineLocation=90.0, OCTZOffsetCorrection=1)

    _edit(p, edit)
    frames = read_pullback(p).read(0, 2)  # octseg orientation: the bright A-line at row 9
    labels = (frames > 0.5).astype(np.uint8)
    assert labels[:, 9, 1:].all() and labels.sum() == 2 * 5
    write_dicom_seg(tmp_path / "seg.dcm", labels, p)
    back, _ = read_dicom_seg(tmp_path / "seg.dcm", 2)
    expected = np.zeros_like(back)
    expected[:, 5, :5] = 1  # stored row 5; the deepest sample was shifted out by the z offset
    np.testing.assert_array_equal(back, expected)
