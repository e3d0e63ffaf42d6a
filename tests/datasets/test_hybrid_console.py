"""Hybrid pullbacks exported as consoles do (Cartesian PNG, sepia / grey, 500-1024 px)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from octseg.core.classes import CALCIUM, LIPID
from octseg.datasets.hybrid import cohort, draw
from octseg.datasets.hybrid.console import export_console, export_folder
from octseg.io.labels import load_labels
from tests.datasets.test_hybrid import PS, R, stand_in


@pytest.fixture(scope="module")
def hybrid_dir(tmp_path_factory):
    img, lab = stand_in(n=4, seed=1, shadow=(40, 62))
    lesions = [draw.CalciumLesion(0, 2, 220.0, 100.0, 0.1, 0.4)]
    lipids = [draw.LipidLesion(2, 4, 150.0, 120.0, 60.0, 160.0, 0.5)]
    out = tmp_path_factory.mktemp("hyb") / "hyb-x-v0"
    im, lb, rows, struts = cohort.make_hybrid(
        img, lab, PS, lesions, None, np.random.default_rng(0), frame_spacing_mm=0.2, lipids=lipids
    )
    cohort.write_pullback(out, im, lb, PS, 0.2, rows, struts, {"x": 1})
    return out


@pytest.mark.parametrize(("size", "colour"), [(500, "grey"), (1024, "sepia")])
def test_console_export_reads_back_and_measures_the_truth(tmp_path, hybrid_dir, size, colour):
    from octseg.geometry import measure_labels
    from octseg.io import read_pullback

    inputs = export_console(hybrid_dir, tmp_path, "p", size=size, colour=colour)
    pngs = sorted(inputs.glob("*.png"))
    assert len(pngs) == 4
    from PIL import Image

    with Image.open(pngs[0]) as im:
        assert im.size == (size, size)
        assert im.mode == ("L" if colour == "grey" else "RGB")
    spacing = json.loads((inputs / "spacing.json").read_text())
    assert spacing["pixel_spacing_mm"] == pytest.approx(2 * R * PS / size, rel=1e-9)
    pb = read_pullback(inputs)  # as infer.py reads a console export
    assert pb.n_frames == 4 and pb.pixel_spacing_mm == pytest.approx(2 * R * PS / size)
    frame = pb.read(0, 1)[0]
    assert frame.shape == (size, size)
    q = size // 4  # black outside the field (the corners), image inside
    assert frame[:20, :20].max() < 0.02 and frame[q:-q, q:-q].mean() > 0.02
    man = tmp_path / "manual" / "p"
    lf = load_labels(man / "labels.npz")
    assert lf.space == "cartesian" and lf.labels.shape == (4, size, size)
    assert (lf.labels[0] == CALCIUM).any() and (lf.labels[3] == LIPID).any()
    with open(man / "frames.csv") as fh:
        truth = list(csv.DictReader(fh))
    got = measure_labels(lf).frames
    for t, g in zip(truth, got, strict=True):
        # nearest-neighbour resampling of the polar labels: 3% area, 3 degrees of arc
        assert g["lumen_area_mm2"] == pytest.approx(float(t["lumen_area_mm2"]), rel=0.03)
        if t["calcium_arc_deg"]:
            assert g["calcium_arc_deg"] == pytest.approx(float(t["calcium_arc_deg"]), abs=3.0)
        if t["lipid_arc_deg"]:
            assert g["lipid_arc_deg"] == pytest.approx(float(t["lipid_arc_deg"]), abs=3.0)


def test_export_folder_alternates_colours_and_draws_sizes(tmp_path, hybrid_dir):
    made = export_folder(hybrid_dir.parent, tmp_path, sizes=(500, 1024), seed=3)
    assert [m["colour"] for m in made] == ["sepia"]
    assert 500 <= made[0]["size"] <= 1024
    assert (tmp_path / "inputs" / "hyb-x-v0" / "spacing.json").exists()


def test_export_folder_errors_name_the_folder(tmp_path, hybrid_dir):
    from octseg.core.errors import InputError

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no hybrid pullback") as err:
        export_folder(empty, tmp_path / "out")  # e.g. OUT instead of OUT/val: not silent
    assert str(empty) in str(err.value)
    with pytest.raises(InputError, match="not a folder of hybrid pullbacks"):
        export_folder(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(InputError, match=r"64 <= MIN <= MAX <= 4096"):
        export_folder(hybrid_dir.parent, tmp_path / "out", sizes=(900, 600))
    assert not (tmp_path / "out").exists()
