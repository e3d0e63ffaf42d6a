"""Dataset layout: list_pullbacks and verify_dataset (every problem at once), octseg verify."""

from __future__ import annotations

import json

import numpy as np
import pytest

from octseg.cli import main
from octseg.io.dataset import list_pullbacks, verify_dataset
from octseg.io.labels import LabelFile, save_labels
from octseg.io.npzimage import write_npz_image


def _make(folder, *, n=5, h=8, w=6, space="polar", labels=True, frame_index=(0, 2, 4), px=0.01):
    folder.mkdir(parents=True)
    f = np.random.default_rng(0).integers(0, 256, (n, h, w), dtype=np.uint8)
    write_npz_image(folder / "image.npz", f, space=space, pixel_spacing_mm=px, frame_spacing_mm=0.2)
    if labels:
        lab = np.zeros((len(frame_index), h, w), np.uint8)
        lab[:, :, :2] = 1
        save_labels(
            folder / "labels.npz",
            LabelFile(lab, space, 0.01, 0.2, frame_index=np.asarray(frame_index)),
        )


def test_list_pullbacks(tmp_path):
    _make(tmp_path / "p10")
    _make(tmp_path / "p2", labels=False)
    (tmp_path / "p2" / "truth").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "dataset.json").write_text(json.dumps({"name": "x", "description": "y"}))
    entries = list_pullbacks(tmp_path)
    assert [e.id for e in entries] == ["p2", "p10"]  # natural order, folders without image skipped
    assert entries[0].labels_path is None and entries[0].truth_dir == tmp_path / "p2" / "truth"
    assert entries[1].image_path == tmp_path / "p10" / "image.npz"
    assert entries[1].labels_path == tmp_path / "p10" / "labels.npz"


def test_clean_dataset_has_no_problems(tmp_path):
    _make(tmp_path / "a")
    _make(tmp_path / "b", space="cartesian", frame_index=(1,))
    assert verify_dataset(tmp_path) == []
    assert main(["verify", str(tmp_path)]) == 0


def test_every_problem_reported_at_once(tmp_path, capsys):
    _make(tmp_path / "ok")
    _make(tmp_path / "nolabels", labels=False)
    (tmp_path / "noimage").mkdir()
    _make(tmp_path / "beyond", frame_index=(0, 9, 12))
    _make(tmp_path / "shape", h=9)
    (tmp_path / "shape" / "labels.npz").unlink()
    save_labels(
        tmp_path / "shape" / "labels.npz",
        LabelFile(np.zeros((1, 8, 6), np.uint8), "polar", 0.01, 0.2),
    )
    _make(tmp_path / "spacing", px=0.02)
    # label values out of range (written without the validating writer)
    _make(tmp_path / "values")
    np.savez_compressed(
        tmp_path / "values" / "labels.npz",
        labels=np.full((1, 8, 6), 9, np.uint8),
        space=np.array("polar"),
        pixel_spacing_mm=0.01,
        frame_spacing_mm=0.2,
    )
    # image without spacing, and an image with NaN
    _make(tmp_path / "nospacing")
    np.savez_compressed(
        tmp_path / "nospacing" / "image.npz",
        frames=np.zeros((5, 8, 6), np.uint8),
        space=np.array("polar"),
        pixel_spacing_mm=0.01,
    )
    _make(tmp_path / "nan")
    bad = np.zeros((5, 8, 6), np.float32)
    bad[3, 0, 0] = np.nan
    write_npz_image(
        tmp_path / "nan" / "image.npz",
        bad,
        space="polar",
        pixel_spacing_mm=0.01,
        frame_spacing_mm=0.2,
    )
    _make(tmp_path / "unreadable")
    (tmp_path / "unreadable" / "image.npz").write_bytes(b"junk")
    _make(tmp_path / "truth")
    (tmp_path / "truth" / "truth").mkdir()
    (tmp_path / "truth" / "truth" / "frames.csv").write_text("frame\n")
    (tmp_path / "dataset.json").write_text("[1, 2]")

    problems = verify_dataset(tmp_path)
    text = "\n".join(problems)
    expected = {
        "nolabels": "missing label file",
        "noimage": "no image",
        "beyond": "frame_index [9, 12] outside the image's 5 frames",
        "shape": "label frames are 8x6 but image frames are 9x6",
        "spacing": "pixel_spacing_mm 0.01 differs from the image's 0.02",
        "values": "holds class 9",
        "nospacing": "frame_spacing_mm",
        "nan": "NaN",
        "unreadable": "image.npz",
        "truth": "struts.csv: missing truth file",
        "dataset.json": "must be a JSON object",
    }
    for where, what in expected.items():
        assert any(where in p and what in p for p in problems), (where, what, text)
    assert not any("/ok/" in p for p in problems), text
    assert all("\n" not in p for p in problems)

    assert main(["verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "holds class 9" in out and "no image" in out


def test_missing_root(tmp_path):
    assert "does not exist" in verify_dataset(tmp_path / "nope")[0]
    assert "no pullback folders" in verify_dataset(tmp_path)[0]


@pytest.mark.parametrize("name", ["image.dcm", "image.tif", "image"])
def test_other_image_kinds_are_found(tmp_path, name):
    (tmp_path / "p").mkdir()
    target = tmp_path / "p" / name
    if name == "image":
        target.mkdir()
    else:
        target.write_bytes(b"")
    assert list_pullbacks(tmp_path)[0].image_path == target
