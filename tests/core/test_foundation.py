"""Shared contracts: label schema, atomic writes, measurement tables, CLI dispatch."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from octseg.cli import main
from octseg.core import atomic
from octseg.core.errors import SchemaError
from octseg.geometry.tables import FRAME_COLUMNS, read_csv, read_summary, write_measurements
from octseg.io.labels import LabelFile, load_labels, save_labels


def _labels(space="cartesian", **kw):
    lab = np.zeros((3, 8, 10), np.uint8)
    lab[:, 2:6, 2:6] = 1
    return LabelFile(labels=lab, space=space, pixel_spacing_mm=0.01, frame_spacing_mm=0.2, **kw)


def test_label_roundtrip(tmp_path):
    lf = _labels(catheter_center=(3.0, 4.5), frame_index=np.array([0, 5, 10]))
    save_labels(tmp_path / "l.npz", lf, note=np.array("hello"))
    back = load_labels(tmp_path / "l.npz")
    assert back.labels.dtype == np.uint8 and back.labels.shape == (3, 8, 10)
    np.testing.assert_array_equal(back.labels, lf.labels)
    assert back.space == "cartesian" and back.pixel_spacing_mm == 0.01
    assert back.center == (3.0, 4.5)
    np.testing.assert_array_equal(back.frames, [0, 5, 10])
    assert str(back.extra["note"]) == "hello"
    assert not list(tmp_path.glob(".tmp-*"))


def test_label_defaults():
    lf = _labels()
    assert lf.center == (3.5, 4.5)
    np.testing.assert_array_equal(lf.frames, [0, 1, 2])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"space": "spherical"}, "'space'"),
        ({"pixel_spacing_mm": 0.0}, "pixel_spacing_mm"),
        ({"frame_spacing_mm": float("nan")}, "frame_spacing_mm"),
        ({"frame_index": np.array([0, 2, 1])}, "strictly increasing"),
        ({"frame_index": np.array([0, 1])}, "2 entries for 3"),
        ({"labels": np.full((1, 2, 2), 7, np.uint8)}, "class 7"),
        ({"labels": np.zeros((2, 2), np.uint8)}, "3-D"),
    ],
)
def test_label_schema_errors(change, message):
    kw = dict(
        labels=np.zeros((3, 4, 4), np.uint8),
        space="polar",
        pixel_spacing_mm=0.01,
        frame_spacing_mm=0.2,
    )
    kw.update(change)
    with pytest.raises(SchemaError, match=message):
        LabelFile(**kw)


def test_load_labels_names_file_and_missing_keys(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez_compressed(p, labels=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(SchemaError, match=r"bad\.npz.*space"):
        load_labels(p)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(SchemaError, match=r"junk\.npz"):
        load_labels(junk)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError), atomic.atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_measurement_tables_roundtrip(tmp_path):
    frames = [
        {"frame": 0, "position_mm": 0.0, "lumen_area_mm2": 7.0685, "calcium_arc_deg": None},
        {"frame": 1, "position_mm": 0.2, "lumen_area_mm2": float("nan"), "n_struts": 3},
    ]
    struts = [
        {
            "frame": 1,
            "angle_deg": 10.0,
            "x_mm": 1,
            "y_mm": 0,
            "distance_mm": 0.3,
            "malapposed": True,
        }
    ]
    summary = {
        "lumen": {"mla_mm2": np.float32(7.0685), "mla_frame": np.int64(0)},
        "calcium_lesions": [],
        "stent": None,
    }
    paths = write_measurements(tmp_path, frames, struts, summary)
    rows = read_csv(paths["frames"], required=FRAME_COLUMNS)
    assert rows[0]["lumen_area_mm2"] == pytest.approx(7.0685) and rows[0]["calcium_arc_deg"] is None
    assert rows[1]["lumen_area_mm2"] is None and rows[1]["n_struts"] == 3
    assert read_csv(paths["struts"])[0]["malapposed"] == 1
    assert read_summary(paths["summary"])["lumen"]["mla_frame"] == 0
    json.loads(paths["summary"].read_text())  # strict JSON, no NaN
    with pytest.raises(ValueError, match="unknown column"):
        write_measurements(tmp_path, [{"frame": 0, "bogus": 1}], [], {})


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: octseg" in capsys.readouterr().out


def test_save_npz_is_byte_reproducible(tmp_path):
    arrays = {"labels": np.arange(24, dtype=np.uint8).reshape(2, 3, 4), "space": np.array("polar")}
    atomic.save_npz(tmp_path / "a.npz", **arrays)
    atomic.save_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as z:
        np.testing.assert_array_equal(z["labels"], arrays["labels"])


def test_atomic_files_get_the_usual_mode(tmp_path):
    atomic.write_text(tmp_path / "r.txt", "x")
    mode = (tmp_path / "r.txt").stat().st_mode & 0o777
    assert mode == 0o666 & ~atomic._UMASK


def test_read_csv_text_ids_semicolons_and_encoding(tmp_path):
    from octseg.evaluate import inputs

    p = tmp_path / "m.csv"
    p.write_text("pullback_id;frame;lumen_area_mm2\n001;3;5.5\n\n007;4;\n", encoding="utf-8")
    rows = read_csv(p, required=["pullback_id", "frame"])
    assert rows == [
        {"pullback_id": "001", "frame": 3, "lumen_area_mm2": 5.5},
        {"pullback_id": "007", "frame": 4, "lumen_area_mm2": None},
    ]
    # the evaluation's reader is the same reader, with line numbers
    assert inputs.read_csv(p) == [{**r, "_line": n} for r, n in zip(rows, (2, 4))]
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("pullback_id,comment\n1,Gef\xe4\xdf\n".encode("latin-1"))
    for reader in (read_csv, inputs.read_csv):
        with pytest.raises(SchemaError, match=r"latin1\.csv: not a UTF-8"):
            reader(bad)


def test_save_npz_streamed_roundtrip_and_short_stream(tmp_path):
    big = np.arange(5 * 3 * 4, dtype=np.uint8).reshape(5, 3, 4)
    p = tmp_path / "s.npz"
    atomic.save_npz_streamed(
        p, {"space": np.array("polar")}, "frames", big.shape, (big[:2], big[2:])
    )
    with np.load(p) as z:
        np.testing.assert_array_equal(z["frames"], big)
        assert str(z["space"]) == "polar"
    first = p.read_bytes()
    atomic.save_npz_streamed(p, {"space": np.array("polar")}, "frames", big.shape, iter([big]))
    assert p.read_bytes() == first  # bytes depend only on the data
    q = tmp_path / "short.npz"
    with pytest.raises(RuntimeError, match="streamed 2 rows, expected 5"):
        atomic.save_npz_streamed(q, {}, "frames", big.shape, [big[:2]])
    assert not q.exists() and not list(tmp_path.glob(".tmp-*"))


def test_npz_and_torch_writes_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    import torch

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    for write in (
        lambda: atomic.save_npz(tmp_path / "a.npz", x=np.zeros(3)),
        lambda: atomic.save_npz_streamed(tmp_path / "b.npz", {}, "f", (1, 2), [np.zeros((1, 2))]),
        lambda: atomic.torch_save({"w": torch.zeros(2)}, tmp_path / "c.pt"),
    ):
        events.clear()
        write()
        assert events == ["fsync", "replace"]
