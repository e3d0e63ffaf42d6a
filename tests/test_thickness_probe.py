"""benchmarks/thickness_probe.py: a frame's thickness error split into the border at the
truth's thickest point and a thicker reading elsewhere, on label maps worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import thickness_probe as tp
from octseg.core.classes import CALCIUM, LUMEN
from octseg.core.errors import InputError
from octseg.geometry import measure_frames
from octseg.io.labels import LabelFile, save_labels

PS = 0.01  # mm per sample; 360 A-lines, so one A-line per degree


def _frames(calcium: list[list[tuple[int, int, int, int]]]) -> np.ndarray:
    """Polar label maps: a lumen of radius 1 mm about the catheter (its centroid there, so the
    product's rays run along the A-lines), plus calcium boxes (a0, a1, r0, r1) per frame."""
    lab = np.zeros((len(calcium), 360, 200), np.uint8)
    lab[:, :, :100] = LUMEN
    for f, boxes in enumerate(calcium):
        for a0, a1, r0, r1 in boxes:
            lab[f, a0:a1, r0:r1] = CALCIUM
    return lab


def _write(folder, lab) -> None:
    folder.mkdir(parents=True)
    save_labels(folder / "labels.npz", LabelFile(lab, "polar", PS, 0.2))
    measure_frames(lab, space="polar", pixel_spacing_mm=PS, frame_spacing_mm=0.2).write(folder)


def test_the_error_splits_into_the_thickest_point_and_a_thicker_reading_elsewhere(tmp_path):
    even = (0, 60, 110, 150)  # 0.40 mm over 60°: every one of its rays is the thickest
    manual = _frames([[even], [even], [even], [even]])
    spike, inside = (100, 105, 110, 160), (20, 25, 110, 160)  # 0.50 mm, 40° away / on the lesion
    auto = _frames([
        [(0, 60, 110, 145), spike],  # 0.05 mm short, and thicker 40° away
        [even],  # exact
        [],  # no calcium: not a pair
        [(0, 60, 110, 145), spike, inside],  # the same 0.50 mm on the lesion too
    ])  # fmt: skip
    _write(tmp_path / "manual" / "p1", manual)
    _write(tmp_path / "auto" / "p1", auto)
    df = tp.probe(tmp_path / "auto", tmp_path / "manual")
    assert list(df.frame) == [0, 1, 3]
    short, exact, tied = df.iloc[0], df.iloc[1], df.iloc[2]
    tol = 0.011  # one sample of the product's nearest-neighbour rays
    assert short.truth == pytest.approx(0.40, abs=tol)
    assert short.site == pytest.approx(-0.05, abs=tol)
    assert short.selection == pytest.approx(0.15, abs=tol)
    assert 40 <= short.offset_deg <= 60  # the spike (100-105°) from the lesion's top rays
    # two automated maxima: the nearest pair counts, and the site reads the thicker spike
    assert tied.offset_deg <= 2 and tied.selection == pytest.approx(0.0)
    assert tied.site == pytest.approx(0.10, abs=tol)
    assert short["product"] == pytest.approx(0.10, abs=2 * tol)  # frames.csv: 0.50 - 0.40
    # frames.csv measured from these same label maps: the raster truth is the truth
    assert short.raster == pytest.approx(0.0, abs=tol)
    assert exact.site == pytest.approx(0.0, abs=tol) and exact.selection == pytest.approx(0.0)
    s = tp.summary(df)
    thin = s["bands"][0]
    assert thin["n"] == 3 and thin["selection"] == pytest.approx(0.05, abs=tol)
    assert s["bands"][2] == {"band_mm": [0.9, None], "n": 0}
    table = tp.markdown(s)
    assert "| 0.0-0.5 | 3 |" in table and "| > 0.9 | 0 | | | | | |" in table
    assert "| at the truth's thickest point |" in table
    # the truth reaches 1.49 mm from the catheter (samples 110-149) on every frame, one lesion
    assert df.reach_mm.to_list() == pytest.approx([1.49] * 3)
    assert df.lesions.to_list() == [1, 1, 1]
    assert s["by_reach_one_lesion"] == s["by_reach"]
    near = [r for r in s["by_reach"] if r["band"] == "0.0-0.5" and r["reach"] == "0.0-2.0"]
    assert near[0]["n"] == 3 and near[0]["product"] == pytest.approx(df["product"].mean())
    assert "| 0.0-0.5 | " + f"{df['product'].mean():+.3f} (3) | – | – | – |" in table


def test_calcium_reach_from_the_catheter_in_both_spaces():
    polar = np.zeros((2, 8, 50), np.uint8)
    polar[0, 2, 10:31] = CALCIUM  # samples 10-30: reaches 30 samples
    polar[0, 5, 40:42] = CALCIUM  # a second lesion
    lf = LabelFile(polar, "polar", 0.1, 0.2)
    reach, lesions = tp.calcium_reach(polar, lf)
    assert reach[0] == pytest.approx(4.1) and np.isnan(reach[1])
    assert lesions.tolist() == [2, 0]
    cart = np.zeros((1, 41, 41), np.uint8)
    cart[0, 20, 5:10] = CALCIUM  # 11-15 px left of the catheter at (20, 20)
    cf = LabelFile(cart, "cartesian", 0.05, 0.2, catheter_center=(20.0, 20.0))
    assert tp.calcium_reach(cart, cf)[0][0] == pytest.approx(15 * 0.05)


def test_probe_names_label_maps_on_another_grid(tmp_path):
    lab = _frames([[(0, 60, 110, 150)]])
    _write(tmp_path / "manual" / "p1", lab)
    _write(tmp_path / "auto" / "p1", lab[:, :, :150])
    with pytest.raises(InputError, match="not on the grid"):
        tp.probe(tmp_path / "auto", tmp_path / "manual")
    save_labels(tmp_path / "auto" / "p1" / "labels.npz", LabelFile(lab, "polar", PS, 0.2))
    (tmp_path / "manual" / "p2").mkdir()
    save_labels(tmp_path / "manual" / "p2" / "labels.npz", LabelFile(lab, "polar", PS, 0.2))
    with pytest.raises(InputError, match="no automated labels.npz"):
        tp.probe(tmp_path / "auto", tmp_path / "manual")
