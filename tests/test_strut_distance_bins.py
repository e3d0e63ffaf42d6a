"""benchmarks/strut_distance_bins.py: error by true-distance band and the missed malapposed
struts, from evaluate.py's struts_matched.csv columns."""

from __future__ import annotations

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
