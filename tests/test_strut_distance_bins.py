"""benchmarks/strut_distance_bins.py: error by true-distance band and the missed malapposed
struts, from evaluate.py's struts_matched.csv columns."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmarks import strut_distance_bins as sb


def _pairs():
    return pd.DataFrame(
        {
            "pullback_id": ["a", "a", "b", "b", "b"],
            "frame": [1, 2, 3, 4, 5],
            "manual_distance_mm": [-0.01, 0.01, 0.10, 0.12, 0.40],
            "auto_distance_mm": [0.00, 0.03, 0.08, 0.10, 0.41],
            "manual_malapposed": [0, 0, 1, 1, 1],
            "auto_malapposed": [0, 0, 0, 1, 1],
        }
    )


def test_bands_give_the_bias_per_true_distance():
    out = sb.bands(_pairs(), (-1.0, 0.0, 0.09, 0.3, 5.0))
    assert out["n"].tolist() == [1, 1, 2, 1]
    assert out["bias_mm"].tolist() == pytest.approx([0.01, 0.02, -0.02, 0.01], abs=1e-9)


def test_missed_lists_malapposed_struts_read_apposed():
    gone = sb.missed(_pairs())
    assert gone["frame"].tolist() == [3]


def _frames():
    """Manual lumen centroids per frame: off the catheter centre in frame 3, across the ray."""
    return pd.DataFrame(
        {
            "pullback_id": ["a", "a", "b", "b", "b"],
            "frame": [1, 2, 3, 4, 5],
            "match": ["matched"] * 5,
            "manual_lumen_centroid_x_mm": [0.0, 0.0, 0.0, 0.0, 0.0],
            "manual_lumen_centroid_y_mm": [0.0, 0.0, 0.5, 0.0, 0.0],
        }
    )


def _struts():
    return _pairs().assign(
        manual_x_mm=[1.0, 1.0, 1.0, 0.0, 2.0],
        manual_y_mm=[0.0, 0.0, 0.0, 1.2, 0.0],
        # frames 2 and 3: the automated strut point 0.02 mm farther along x (frame 3: about a
        # centroid off that line, so less than 0.02 mm farther from it); frame 4: 0.03 mm along
        # the tangent (about 0 radially)
        auto_x_mm=[1.0, 1.02, 1.02, 0.03, 2.0],
        auto_y_mm=[0.0, 0.0, 0.0, 1.2, 0.0],
    )


def test_split_bias_tells_the_strut_part_from_the_lumen_part():
    out = sb.split_bias(_struts(), _frames())
    err = out["auto_distance_mm"] - out["manual_distance_mm"]
    frame3 = math.hypot(1.02, 0.5) - math.hypot(1.0, 0.5)  # 0.01797 mm, not 0.02
    assert out["strut_mm"].tolist() == pytest.approx([0.0, 0.02, frame3, 0.000375, 0.0], abs=1e-5)
    # bias = lumen part - strut part
    assert (out["lumen_mm"] - out["strut_mm"]).tolist() == pytest.approx(err.tolist(), abs=1e-9)
    table = sb.split_bands(out, (-1.0, 0.09, 5.0))
    assert table["strut_mm"].tolist() == pytest.approx([0.01, (frame3 + 0.000375) / 3], abs=1e-5)
    assert table["n"].tolist() == [2, 3]
    assert table["n_split"].tolist() == [2, 3]


def test_frames_without_one_manual_centroid_are_left_out_of_the_split():
    frames = _frames()
    # frame 1 listed twice as matched (ambiguous); frame 2 also as a manual-only row (ignored);
    # frame 4 automated only (no manual centroid); frame 5 absent
    twice = frames.iloc[[0]].assign(manual_lumen_centroid_x_mm=0.3)
    manual_only = frames.iloc[[1]].assign(match="manual_only", manual_lumen_centroid_x_mm=0.3)
    frames.loc[3, ["match", "manual_lumen_centroid_x_mm", "manual_lumen_centroid_y_mm"]] = [
        "auto_only",
        math.nan,
        math.nan,
    ]
    frames = pd.concat([frames.iloc[:4], twice, manual_only])
    out = sb.split_bias(_struts(), frames)
    assert out["strut_mm"].isna().tolist() == [True, False, False, True, True]
    assert out["strut_mm"][1] == pytest.approx(0.02, abs=1e-9)  # the matched row's centroid
    table = sb.split_bands(out, (-1.0, 0.09, 5.0))
    assert table["n"].tolist() == [2, 3]
    assert table["n_split"].tolist() == [1, 1]


def test_main_splits_the_bias_when_frames_matched_lies_beside(tmp_path, capsys):
    pairs = _pairs().assign(manual_x_mm=1.0, manual_y_mm=0.0, auto_x_mm=1.0, auto_y_mm=0.0)
    pairs.to_csv(tmp_path / "struts_matched.csv", index=False)
    sb.main([str(tmp_path / "struts_matched.csv")])
    assert "lumen_mm" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        sb.main([str(tmp_path / "struts_matched.csv"), "--frames", str(tmp_path / "none.csv")])
    _frames().to_csv(tmp_path / "frames_matched.csv", index=False)
    sb.main([str(tmp_path / "struts_matched.csv")])
    assert "lumen_mm" in capsys.readouterr().out
