"""Hostile input (issue 15): declared sizes, catheter centres, spacings, frame counts, checkpoints.

Every hostile file here is a few kilobytes: the headers lie, and the tests check that octseg
refuses from the header alone, with one line naming the file, the declared value and the limit.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from octseg.cli import main
from octseg.core.errors import InputError, SchemaError
from octseg.io import limits, read_pullback
from octseg.io.dicom_write import write_ivoct_dicom
from octseg.io.labels import LabelFile, load_labels, save_labels
from octseg.io.npzimage import write_npz_image

PX, FR = 0.01, 0.2


def _frames(n: int = 3, h: int = 16, w: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, h, w), dtype=np.uint8)


def _npy_header_only(shape: tuple[int, ...], dtype: str = "<u1") -> bytes:
    """An npy member that declares ``shape`` but holds no data (a lying header)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def _lying_npz(path: Path, arrays: dict[str, np.ndarray], lies: dict[str, tuple]) -> Path:
    """An npz with the real ``arrays`` plus members whose headers declare ``lies`` shapes."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(buf, "a") as zf:
        for key, shape in lies.items():
            zf.writestr(f"{key}.npy", _npy_header_only(shape))
    path.write_bytes(buf.getvalue())
    return path


def _dicom(path: Path, frames=None, **kw) -> Path:
    kw = {"space": "cartesian", "pixel_spacing_mm": PX, "frame_spacing_mm": FR, **kw}
    write_ivoct_dicom(path, _frames() if frames is None else frames, **kw)
    return path


def _edit(path: Path, **attrs) -> Path:
    ds = pydicom.dcmread(path)
    for key, val in attrs.items():
        setattr(ds, key, val)
    ds.save_as(path)
    return path


def _space_keys(space: str = "cartesian") -> dict[str, np.ndarray]:
    return {
        "space": np.array(space),
        "pixel_spacing_mm": np.float64(PX),
        "frame_spacing_mm": np.float64(FR),
    }


# --- row 3: declared sizes checked before any allocation ---------------------------------------


def test_npz_declaring_a_huge_frame_is_refused_from_the_header(tmp_path):
    p = _lying_npz(tmp_path / "huge.npz", _space_keys(), {"frames": (1, 25000, 25000)})
    assert p.stat().st_size < 2000
    with pytest.raises(InputError) as err:
        read_pullback(p)
    msg = str(err.value)
    assert "huge.npz" in msg and "25000x25000" in msg and "4096" in msg


def test_npz_declaring_a_huge_pullback_is_refused(tmp_path):
    p = _lying_npz(tmp_path / "long.npz", _space_keys(), {"frames": (200_000, 512, 512)})
    with pytest.raises(InputError, match=r"long\.npz.*200000 frames.*GiB.*limit of 16 GiB"):
        read_pullback(p)
    with limits.override(max_pullback_bytes=100 * limits.GIB):  # the cap is configurable
        assert read_pullback(p).n_frames == 200_000  # header only: nothing decoded


def test_npz_huge_side_member_is_refused(tmp_path):
    arrays = {"frames": _frames(), **_space_keys()}
    p = _lying_npz(tmp_path / "side.npz", arrays, {"catheter_center": (30000, 30000)})
    with pytest.raises(InputError, match=r"side\.npz.*'catheter_center' declares shape"):
        read_pullback(p)


def test_frame_side_cap_follows_the_environment(tmp_path, monkeypatch):
    p = tmp_path / "big.npz"
    write_npz_image(p, _frames(1, 16, 40), space="polar", pixel_spacing_mm=PX, frame_spacing_mm=FR)
    monkeypatch.setenv("OCTSEG_MAX_FRAME_SIDE", "32")
    with pytest.raises(InputError, match=r"16x40 frames, above the limit of 32 pixels"):
        read_pullback(p)
    monkeypatch.delenv("OCTSEG_MAX_FRAME_SIDE")
    assert read_pullback(p).shape == (1, 16, 40)


def test_rle_dicom_declaring_huge_frames_is_refused(tmp_path):
    p = _edit(_dicom(tmp_path / "rle.dcm", transfer_syntax="rle"), Rows=20000, Columns=20000)
    assert p.stat().st_size < 20_000
    with pytest.raises(InputError, match=r"rle\.dcm.*20000x20000.*4096"):
        read_pullback(p)


def test_rle_fragment_too_small_for_the_declared_frame_is_refused(tmp_path):
    # within the side cap, but 16 KB-ish fragments cannot decode to 4096x4096 frames
    p = _edit(_dicom(tmp_path / "rle.dcm", transfer_syntax="rle"), Rows=4096, Columns=4096)
    with pytest.raises(InputError, match=r"rle\.dcm: RLE frame 0 declares 16777216 decoded"):
        read_pullback(p)


def test_encapsulated_frames_without_fragments_are_refused(tmp_path):
    p = _edit(_dicom(tmp_path / "j.dcm", transfer_syntax="jpeg_baseline"), NumberOfFrames=30)
    with pytest.raises(InputError, match=r"j\.dcm.*3 fragment\(s\) for the 30 frames"):
        read_pullback(p)


def test_tiff_declaring_a_huge_page_is_refused(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    p = tmp_path / "big.tif"
    tifffile.imwrite(p, np.zeros((5000, 8), np.uint8))  # 40 KB, one 5000x8 page
    with pytest.raises(InputError, match=r"big\.tif.*5000x8 frames, above the limit"):
        read_pullback(p, pixel_spacing_mm=PX, frame_spacing_mm=FR)


def test_png_folder_declaring_a_huge_frame_is_refused_before_decoding(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    buf = io.BytesIO()
    Image.new("L", (5000, 5000)).save(buf, format="PNG")
    (folder / "f0.png").write_bytes(buf.getvalue()[:200])  # the header, then cut short
    with pytest.raises(InputError, match=r"frames: declares 5000x5000 frames, above the limit"):
        read_pullback(folder, pixel_spacing_mm=PX, frame_spacing_mm=FR)


def test_label_file_declaring_huge_maps_is_refused(tmp_path):
    keys = {**_space_keys("polar"), "schema_version": np.int64(1)}
    p = _lying_npz(tmp_path / "labels.npz", keys, {"labels": (100, 30000, 30000)})
    with pytest.raises(SchemaError, match=r"labels\.npz.*30000x30000 label frames.*4096"):
        load_labels(p)


# --- row 4: catheter centre far outside the image ----------------------------------------------


def test_npz_centre_outside_the_frame_is_refused(tmp_path):
    p = tmp_path / "c.npz"
    write_npz_image(
        p, _frames(), space="cartesian", pixel_spacing_mm=PX, frame_spacing_mm=FR,
        catheter_center=(1e9, 8.0),
    )  # fmt: skip
    with pytest.raises(InputError, match=r"c\.npz: catheter centre .* outside the 16x16 frame"):
        read_pullback(p)


def test_dicom_private_centre_outside_the_frame_is_refused(tmp_path):
    p = _dicom(tmp_path / "c.dcm", catheter_center=(8.0, -5e6))
    with pytest.raises(InputError, match=r"c\.dcm: catheter centre .* must lie within the frame"):
        read_pullback(p)
    inside = _dicom(tmp_path / "ok.dcm", catheter_center=(3.0, 12.5))
    assert read_pullback(inside).catheter_center == pytest.approx((3.0, 12.5), abs=1e-6)


def _cart_labels(center=None, spacing=PX, hw=(32, 32)) -> LabelFile:
    lab = np.zeros((2, *hw), np.uint8)
    lab[:, 8:24, 8:24] = 1
    return LabelFile(lab, "cartesian", spacing, FR, catheter_center=center)


def test_label_file_centre_outside_the_frame_is_refused(tmp_path):
    good = _cart_labels()
    p = tmp_path / "labels.npz"
    save_labels(p, good, catheter_center=np.array([16.0, 300.0]))  # key written raw
    with pytest.raises(SchemaError, match=r"labels\.npz.*outside the 32x32 frame"):
        load_labels(p)
    with pytest.raises(SchemaError, match="must lie within the frame"):
        _cart_labels(center=(-40.0, 16.0))


def test_measure_refuses_an_outside_centre_in_one_line(tmp_path, capsys):
    p = tmp_path / "labels.npz"
    save_labels(p, _cart_labels(), catheter_center=np.array([16.0, 80.0]))
    assert main(["measure", str(p), "--out", str(tmp_path / "m"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "labels.npz" in err and "must lie within the frame" in err
    assert not (tmp_path / "m").exists()


# --- row 6: implausible spacing from a header ---------------------------------------------------


@pytest.mark.parametrize(
    "px, fr, bad", [(1e30, FR, "pixel_spacing_mm 1e+30"), (1e-30, FR, "pixel_spacing_mm 1e-30"),
                    (PX, 1e6, "frame_spacing_mm 1e+06")],
)  # fmt: skip
def test_npz_implausible_spacing_is_refused_with_the_range(tmp_path, px, fr, bad):
    p = tmp_path / "s.npz"
    write_npz_image(p, _frames(), space="polar", pixel_spacing_mm=px, frame_spacing_mm=fr)
    with pytest.raises(InputError) as err:
        read_pullback(p)
    msg = str(err.value)
    assert "s.npz" in msg and bad in msg and "plausible range" in msg
    assert ("0.001..0.2 mm" if bad.startswith("pixel") else "0.01..2 mm") in msg
    # the overrides: allow it, or state the value explicitly
    assert read_pullback(p, allow_unusual_spacing=True).pixel_spacing_mm == px
    explicit = read_pullback(p, pixel_spacing_mm=0.02, frame_spacing_mm=0.3)
    assert (explicit.pixel_spacing_mm, explicit.frame_spacing_mm) == (0.02, 0.3)


def test_dicom_implausible_spacing_is_refused(tmp_path, monkeypatch):
    p = _dicom(tmp_path / "px.dcm", pixel_spacing_mm=5.0)  # 5 mm pixels in Pixel Measures
    with pytest.raises(InputError, match=r"px\.dcm: pixel_spacing_mm 5 mm \(file: Pixel Spacing"):
        read_pullback(p)
    q = _dicom(tmp_path / "fr.dcm", frame_spacing_mm=40.0)  # 40 mm between frames
    with pytest.raises(InputError, match=r"fr\.dcm: frame_spacing_mm 40 mm .*0\.01\.\.2 mm"):
        read_pullback(q)
    monkeypatch.setenv("OCTSEG_ALLOW_UNUSUAL_SPACING", "1")
    assert read_pullback(q).frame_spacing_mm == pytest.approx(40.0)


def test_label_file_implausible_spacing_is_refused_and_measure_can_allow_it(tmp_path, capsys):
    p = tmp_path / "labels.npz"
    save_labels(p, _cart_labels(spacing=1e30))
    with pytest.raises(SchemaError, match=r"labels\.npz.*pixel_spacing_mm 1e\+30 mm"):
        load_labels(p)
    assert main(["measure", str(p), "--out", str(tmp_path / "m"), "--quiet"]) == 1
    assert "plausible range" in capsys.readouterr().err
    q = tmp_path / "coarse.npz"
    save_labels(q, _cart_labels(spacing=0.5))  # an unusual but deliberate device
    args = ["measure", str(q), "--out", str(tmp_path / "m2"), "--quiet"]
    assert main([*args, "--allow-unusual-spacing"]) == 0


# --- row 10: Number of Frames 0 or inconsistent with the pixel data ----------------------------


def test_dicom_zero_frames_is_refused_not_read_as_one(tmp_path):
    p = _edit(_dicom(tmp_path / "z.dcm", _frames(24, 8, 8)), NumberOfFrames=0)
    with pytest.raises(InputError, match=r"z\.dcm: Number of Frames \(0028,0008\) is 0"):
        read_pullback(p)


def test_dicom_frame_count_below_the_pixel_data_is_refused(tmp_path):
    p = _edit(_dicom(tmp_path / "few.dcm", _frames(24, 8, 8)), NumberOfFrames=5)
    with pytest.raises(InputError, match=r"few\.dcm: pixel data holds 1536 bytes, 24 frames"):
        read_pullback(p)


# --- row 11: degenerate frame sizes -------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, problem", [((2, 1, 1), "1x1 frames; each side must be at least 4"),
                       ((1, 2, 20000), "2x20000 frames")],
)  # fmt: skip
def test_degenerate_frames_are_refused(tmp_path, shape, problem):
    p = tmp_path / "d.npz"
    write_npz_image(
        p, np.zeros(shape, np.uint8), space="polar", pixel_spacing_mm=PX, frame_spacing_mm=FR
    )
    with pytest.raises(InputError, match=r"d\.npz") as err:
        read_pullback(p)
    assert problem in str(err.value)


def test_degenerate_aspect_and_size_in_dicom_and_labels(tmp_path):
    p = _dicom(tmp_path / "thin.dcm", np.zeros((1, 4, 400), np.uint8))
    with pytest.raises(InputError, match=r"thin\.dcm.*aspect ratio 100 above 32"):
        read_pullback(p)
    q = tmp_path / "labels.npz"
    save_labels(q, LabelFile(np.zeros((3, 1, 1), np.uint8), "polar", PX, FR))
    with pytest.raises(SchemaError, match=r"labels\.npz.*1x1 label frames"):
        load_labels(q)


# --- rows 5, 16, 17: checkpoints ----------------------------------------------------------------


def _ckpt(tmp_path: Path, edit=None, name: str = "model.pt") -> Path:
    """A tiny real checkpoint, its dict changed by ``edit`` and saved again."""
    import torch
    from model_helpers import TINY_MODEL

    from octseg.model.predictor import save_untrained_checkpoint

    p = save_untrained_checkpoint(
        tmp_path / name, model_cfg=TINY_MODEL, context_frames=1,
        net_grid={"n_alines": 32, "n_samples": 16, "spacing_mm": 0.05},
    )  # fmt: skip
    if edit is not None:
        obj = torch.load(p, weights_only=True)
        edit(obj)
        torch.save(obj, p)
    return p


def _first_weight(obj):
    return next(v for k, v in obj["state_dict"].items() if k.endswith("weight"))


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda o: _first_weight(o).view(-1).__setitem__(0, float("nan")), "1 NaN/infinite"),
        (lambda o: _first_weight(o).fill_(float("inf")), "NaN/infinite value(s)"),
        (lambda o: o["meta"].update(normalization={"kind": "zscore", "mean": float("nan"),
                                                   "std": 0.2}), "mean nan"),
        (lambda o: o["meta"].update(normalization={"kind": "zscore", "mean": 0.3, "std": 0.0}),
         "std 0.0 is unusable"),
    ],
)  # fmt: skip
def test_checkpoint_with_non_finite_values_is_refused_at_load(tmp_path, edit, problem):
    from octseg.model.predictor import Predictor

    p = _ckpt(tmp_path, edit)
    with pytest.raises(InputError, match=r"model\.pt: checkpoint") as err:
        Predictor.from_checkpoint(p, device="cpu")
    assert problem in str(err.value)


class _NanWhereBright:
    """A network that is fine on the zero probe input but gives NaN logits on bright pixels."""

    def __new__(cls):
        import torch

        class Net(torch.nn.Module):
            def forward(self, x):
                logits = torch.zeros(x.shape[0], 5, *x.shape[2:])
                return torch.where(x[:, :1] > 0.5, float("nan"), logits)

        return Net()


def test_non_finite_network_outputs_fail_the_pullback_clearly(tmp_path):
    from octseg.model.predictor import PredictOptions, Predictor

    frames = np.zeros((4, 32, 32), np.uint8)
    frames[2:] = 255  # the last two frames make the network give NaN
    p = tmp_path / "pb.npz"
    write_npz_image(p, frames, space="polar", pixel_spacing_mm=PX, frame_spacing_mm=FR)
    pb = read_pullback(p)
    meta = {
        "classes": [0, 1, 2, 3, 4], "context_frames": 1, "normalization": {"kind": "none"},
        "net_grid": {"n_alines": 32, "n_samples": 32, "spacing_mm": PX},
    }  # fmt: skip
    pred = Predictor(_NanWhereBright(), meta, PredictOptions(device="cpu", batch_size=2))
    with pytest.raises(InputError, match=r"pb\.npz: the network gave NaN/infinite outputs "
                                         r"for frames 2:4"):  # fmt: skip
        pred.segment(pred.to_grid(pb), pb)
    first = read_pullback(p)
    first.n_frames = 2  # the finite part alone segments fine
    assert pred.segment(pred.to_grid(first), first).shape == (2, 32, 32)


def test_malicious_checkpoint_refusal_is_complete_and_ours(tmp_path):
    import os

    import torch

    from octseg.model.predictor import Predictor

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"format": "octseg-checkpoint", "payload": Evil()}, p)
    with pytest.raises(InputError) as err:
        Predictor.from_checkpoint(p, device="cpu")
    msg = str(err.value)
    assert msg.startswith(f"{p}: refused: the checkpoint holds Python objects (posix.system")
    assert msg.endswith("never runs code from them") and "\n" not in msg
    assert "weights_only" not in msg and "trusted" not in msg


def test_non_zip_and_pickled_label_files_are_refused_in_our_words(tmp_path):
    import pickle

    p = tmp_path / "labels.npz"
    p.write_bytes(pickle.dumps({"labels": [1, 2, 3]}))
    with pytest.raises(SchemaError) as err:
        load_labels(p)
    msg = str(err.value)
    assert "labels.npz" in msg and "not a zip archive" in msg
    assert "allow_pickle" not in msg and "trust" not in msg
    q = tmp_path / "obj.npz"
    keys = {**_space_keys("polar"), "labels": np.zeros((1, 8, 8), np.uint8)}
    np.savez(q, **keys, extra=np.array([{"a": 1}], dtype=object))
    with pytest.raises(SchemaError) as err:
        load_labels(q)
    msg = str(err.value)
    assert "'extra' holds Python objects" in msg and "never unpickles" in msg
    assert "allow_pickle" not in msg and "trust" not in msg
    img = tmp_path / "img.npz"
    np.savez(img, frames=np.zeros((1, 8, 8), np.uint8), **_space_keys(),
             extra=np.array([{"a": 1}], dtype=object))  # fmt: skip
    with pytest.raises(InputError, match=r"img\.npz: member 'extra' .* never unpickles"):
        read_pullback(img)


def test_checkpoint_declaring_a_huge_network_is_refused_before_building(tmp_path):
    big = [4096, 8192, 16384, 32768]

    def huge(o):
        o["meta"]["model"].update(channels=big, strides=[2, 2, 2])

    from octseg.model.predictor import Predictor

    p = _ckpt(tmp_path, huge)
    assert p.stat().st_size < 200_000
    with pytest.raises(InputError, match=r"model\.pt: checkpoint declares a network of "
                                         r"\d+(,\d{3}){3} parameters; the limit is"):  # fmt: skip
        Predictor.from_checkpoint(p, device="cpu")
    q = _ckpt(tmp_path, lambda o: o["meta"]["model"].update(channels=[8, 16]), "other.pt")
    with pytest.raises(InputError, match=r"weights do not fit the network: the config declares"):
        Predictor.from_checkpoint(q, device="cpu")
    r = _ckpt(tmp_path, lambda o: o["meta"]["net_grid"].update(n_alines=100_000), "grid.pt")
    with pytest.raises(InputError, match=r"100000x16 network grid; the limit is 4096"):
        Predictor.from_checkpoint(r, device="cpu")


# --- row 18: the DICOM-SEG of a pullback is written chunk by chunk -----------------------------


def _seg_frames(ds) -> list[tuple]:
    out = []
    for it in ds.PerFrameFunctionalGroupsSequence:
        src = it.DerivationImageSequence[0].SourceImageSequence[0]
        out.append((
            int(it.SegmentIdentificationSequence[0].ReferencedSegmentNumber),
            int(src.ReferencedFrameNumber),
            [int(v) for v in it.FrameContentSequence[0].DimensionIndexValues],
            [round(float(v), 6) for v in it.PlanePositionSequence[0].ImagePositionPatient],
        ))  # fmt: skip
    return out


@pytest.mark.parametrize("descending", [False, True])
def test_streamed_dicom_seg_equals_highdicom_in_memory(tmp_path, monkeypatch, descending):
    """Same frames, order, references, positions, dimension indices and pixel bits as the SEG
    highdicom builds in memory; chunk boundaries and bit carries exercised (3 frames per chunk,
    13x11 frames: 143 bits each), sparse segments, irregular positions."""
    from octseg.io import segstream
    from octseg.io.dicomseg import read_dicom_seg, write_dicom_seg

    monkeypatch.setattr(segstream, "CHUNK_FRAMES", 3)
    n = 11
    src = _dicom(tmp_path / "src.dcm", _frames(n, 13, 11), space="polar")
    dist = [(30.0 - 0.3 * i) if descending else (0.25 * i + 0.05 * (i % 3)) for i in range(n)]
    ds = pydicom.dcmread(src)
    for d, item in zip(dist, ds.PerFrameFunctionalGroupsSequence):
        item.IntravascularFrameContentSequence[0].IntravascularLongitudinalDistance = d
    ds.save_as(src)
    rng = np.random.default_rng(3)
    lab = np.zeros((n, 13, 11), np.uint8)
    lab[:, 2:6, 1:5] = 1
    lab[rng.random((n, 13, 11)) < 0.05] = 2
    lab[[2, 7], 8:10, 3:6] = 4  # class 3 nowhere, class 4 in two frames only
    lab[5] = 0  # an empty frame
    write_dicom_seg(tmp_path / "ref.dcm", lab, src, streamed=False)
    write_dicom_seg(tmp_path / "new.dcm", lab, src)
    ref, new = pydicom.dcmread(tmp_path / "ref.dcm"), pydicom.dcmread(tmp_path / "new.dcm")
    assert new.NumberOfFrames == ref.NumberOfFrames
    assert _seg_frames(new) == _seg_frames(ref)
    nbytes = (int(ref.NumberOfFrames) * 13 * 11 + 7) // 8
    assert new.PixelData[:nbytes] == ref.PixelData[:nbytes]
    assert new.SharedFunctionalGroupsSequence == ref.SharedFunctionalGroupsSequence
    back, _ = read_dicom_seg(tmp_path / "new.dcm", n)
    np.testing.assert_array_equal(back, lab)
